// Hostile inputs for the fault tests, built in the test instead of stored.
import { crc32, createDeflate } from 'node:zlib';

/** Compressed zeros, streamed so that 100 MB of input never sits in memory. */
async function deflateZeros(bytes: number): Promise<Buffer> {
  const deflate = createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  deflate.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve) => deflate.on('end', resolve));
  const block = Buffer.alloc(1 << 20);
  for (let left = bytes; left > 0; left -= block.length) {
    if (!deflate.write(block.subarray(0, Math.min(left, block.length)))) await new Promise((resolve) => deflate.once('drain', resolve));
  }
  deflate.end();
  await done;
  return Buffer.concat(chunks);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

/**
 * A valid 8-bit RGB PNG of width × height black pixels. Zeros compress about 1,000:1, so 1 × 25,000,000
 * is a 97 KB file that took 7–9 s to decode here (issue 12).
 */
export async function blackPng(width: number, height: number): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', await deflateZeros((width * 3 + 1) * height)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** p-th quantile (0–1) of a list of numbers, nearest rank. */
export function quantile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/** A JPEG marker segment: 0xFF, the marker, the big-endian length (which counts itself), the data. */
function jpegSegment(marker: number, data: number[]): Buffer {
  return Buffer.from([0xff, marker, (data.length + 2) >> 8, (data.length + 2) & 0xff, ...data]);
}

/**
 * The scan bomb of issue 21: a valid progressive greyscale JPEG of width × height whose one AC scan
 * is repeated `repeats` times (13 bytes each). Decode time grows with the scans: 1400 × 1400 with
 * 50,000 repeats is 654 KB and took 35 s to decode.
 */
export function scanBombJpeg(width: number, height: number, repeats: number): Buffer {
  // One Huffman table of one 1-bit code: DC difference 0 (every block grey), or AC end-of-band run.
  const huffmanTable = (tableClass: number, symbol: number) => [tableClass, 1, ...Array<number>(15).fill(0), symbol];
  // The DC scan: one 0 bit per 8 × 8 block, padded with 1 bits to a whole byte.
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const dcScan = [...Array<number>(Math.floor(blocks / 8)).fill(0), ...(blocks % 8 ? [0xff >> (blocks % 8)] : [])];
  const head = Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    jpegSegment(0xdb, [0, ...Array<number>(64).fill(1)]),
    jpegSegment(0xc2, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]),
    jpegSegment(0xc4, huffmanTable(0x00, 0)),
    jpegSegment(0xc4, huffmanTable(0x10, 0xe0)),
    jpegSegment(0xda, [1, 1, 0, 0, 0, 0]),
    Buffer.from(dcScan),
  ]);
  const scan = Buffer.concat([jpegSegment(0xda, [1, 1, 0, 1, 0x3f, 0]), Buffer.from([0x7f, 0xff, 0])]);
  return Buffer.concat([head, ...Array<Buffer>(repeats).fill(scan), Buffer.from([0xff, 0xd9])]);
}

/**
 * A GIF of a width × height screen and `frames` frames of one pixel each (15 bytes a frame): what a
 * header read that walks every frame costs, at up to 700,000 frames in a 10 MB upload.
 */
export function manyFrameGif(width: number, height: number, frames: number): Buffer {
  const screen = Buffer.from([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, width & 0xff, width >> 8, height & 0xff, height >> 8, 0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
  // Image descriptor at (0, 0), 1 × 1, no local table; LZW minimum code size 2; one sub-block of the
  // 3-bit codes clear (4), 0, end (5), packed from the low bit: 0x44 0x01; the block terminator.
  const frame = Buffer.from([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00]);
  return Buffer.concat([screen, ...Array<Buffer>(frames).fill(frame), Buffer.from([0x3b])]);
}
