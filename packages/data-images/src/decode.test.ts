import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { PosterError, decodePoster, probePoster, sniffFormat } from './decode.js';
import { findDatasetDir } from '@filmgenre/core';
import { tempDir } from './test-helpers.js';

const datasetDir = findDatasetDir();
const tmp = tempDir('decode-test');
afterAll(tmp.cleanup);

function pixelAt(px: Uint8Array, size: number, y: number, x: number): number[] {
  const o = (y * size + x) * 3;
  return [px[o]!, px[o + 1]!, px[o + 2]!];
}

function channelMeans(px: Uint8Array | Buffer, width: number, y0: number, y1: number, x0: number, x1: number): number[] {
  const sums = [0, 0, 0];
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) for (let c = 0; c < 3; c++) sums[c]! += px[(y * width + x) * 3 + c]!;
  return sums.map((s) => s / ((y1 - y0) * (x1 - x0)));
}

/** A ~70-byte PNG declaring width × height with one empty IDAT chunk: the shape of a decompression bomb. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body) >>> 0, 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

describe.skipIf(!datasetDir)('decodePoster on a real poster', () => {
  const poster = join(datasetDir ?? '', 'Images', 'tt0084058.jpg');

  it('matches recorded pixels and the independently decoded full-resolution image', async () => {
    const px = await decodePoster(poster);
    expect(px).toBeInstanceOf(Uint8Array);
    expect(px.length).toBe(64 * 64 * 3);
    // Recorded with sharp 0.35.5 / libvips 8.18.7; a libvips upgrade may move these by a level or two.
    expect(pixelAt(px, 64, 0, 0)).toEqual([166, 168, 167]);
    expect(pixelAt(px, 64, 10, 20)).toEqual([252, 253, 255]);
    expect(pixelAt(px, 64, 32, 32)).toEqual([172, 141, 116]);
    expect(pixelAt(px, 64, 63, 63)).toEqual([217, 204, 194]);

    // Independent check: sharp's plain full-size decode (150×300) averaged over the same regions.
    const { data, info } = await sharp(poster).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([150, 300, 3]);
    const whole = channelMeans(px, 64, 0, 64, 0, 64);
    const wholeFull = channelMeans(data, 150, 0, 300, 0, 150);
    whole.forEach((m, c) => expect(Math.abs(m - wholeFull[c]!)).toBeLessThan(0.5));
    expect(whole[0]).toBeCloseTo(197.702, 2);
    // Quadrants: output 32×32 blocks ↔ source 75×150 blocks (the stretch maps the whole poster).
    for (const [qy, qx] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) {
      const out = channelMeans(px, 64, qy * 32, qy * 32 + 32, qx * 32, qx * 32 + 32);
      const src = channelMeans(data, 150, qy * 150, qy * 150 + 150, qx * 75, qx * 75 + 75);
      out.forEach((m, c) => expect(Math.abs(m - src[c]!)).toBeLessThan(3));
    }
  });

  it('gives the same pixels from a path and from a buffer, and honours size', async () => {
    const fromPath = await decodePoster(poster, { size: 32 });
    const fromBuffer = await decodePoster(await readFile(poster), { size: 32 });
    expect(fromPath.length).toBe(32 * 32 * 3);
    expect(Buffer.compare(fromPath, fromBuffer)).toBe(0);
  });

  it('reports a truncated poster as corrupt, naming the file', async () => {
    const bytes = await readFile(poster);
    const truncated = join(tmp.dir, 'truncated.jpg');
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const error = await decodePoster(truncated).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PosterError);
    expect((error as PosterError).kind).toBe('corrupt');
    expect((error as PosterError).message).toContain(truncated);
    expect((error as PosterError).file).toBe(truncated);
  });

  it('probes the header only', async () => {
    expect(await probePoster(await readFile(poster))).toEqual({ format: 'jpeg', width: 150, height: 300, channels: 3, hasAlpha: false, pixels: 45_000 });
  });
});

describe('decodePoster on synthetic inputs', () => {
  const rgb = (r: number, g: number, b: number, width = 40, height = 80) =>
    sharp({ create: { width, height, channels: 3, background: { r, g, b } } });

  async function decodeFile(name: string, bytes: Buffer, size = 8): Promise<Uint8Array> {
    const path = join(tmp.dir, name);
    await writeFile(path, bytes);
    const px = await decodePoster(path, { size });
    expect(px.length).toBe(size * size * 3);
    return px;
  }

  it('expands a one-channel grayscale PNG to three equal channels', async () => {
    const bytes = await rgb(100, 100, 100).toColourspace('b-w').png().toBuffer();
    expect((await sharp(bytes).metadata()).channels).toBe(1);
    const px = await decodeFile('grey.png', bytes);
    expect(pixelAt(px, 8, 3, 3)).toEqual([100, 100, 100]);
  });

  it('converts a CMYK JPEG to sRGB', async () => {
    const bytes = await rgb(200, 30, 30).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    const meta = await sharp(bytes).metadata();
    expect([meta.space, meta.channels]).toEqual(['cmyk', 4]);
    const [r, g, b] = pixelAt(await decodeFile('cmyk.jpg', bytes), 8, 4, 4);
    // Through the CMYK profile and back the colour shifts somewhat, but stays a strong red.
    expect(r!).toBeGreaterThan(150);
    expect(g!).toBeLessThan(80);
    expect(b!).toBeLessThan(80);
  });

  it('flattens alpha onto white', async () => {
    const transparent = await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    expect(pixelAt(await decodeFile('transparent.png', transparent), 8, 2, 2)).toEqual([255, 255, 255]);
    const halfBlack = await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
    const [r, g, b] = pixelAt(await decodeFile('half.png', halfBlack), 8, 2, 2);
    for (const v of [r!, g!, b!]) expect(Math.abs(v - 127.5)).toBeLessThanOrEqual(1.5);
  });

  it('decodes lossless WebP, 16-bit PNG and palette GIF to 8-bit RGB', async () => {
    expect(pixelAt(await decodeFile('blue.webp', await rgb(0, 0, 255).webp({ lossless: true }).toBuffer()), 8, 1, 1)).toEqual([0, 0, 255]);
    const png16 = await rgb(10, 200, 60).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    // 16 → 8 bits may round down by one level.
    pixelAt(await decodeFile('deep.png', png16), 8, 5, 5).forEach((v, c) => expect(Math.abs(v - [10, 200, 60][c]!)).toBeLessThanOrEqual(1));
    expect(pixelAt(await decodeFile('green.gif', await rgb(0, 255, 0).gif().toBuffer()), 8, 0, 0)).toEqual([0, 255, 0]);
  });

  it('stretches rather than crops (fit: fill)', async () => {
    // Top half red, bottom half blue, 40×80: after a square stretch the halves stay halves.
    const top = await rgb(255, 0, 0, 40, 40).png().toBuffer();
    const bytes = await rgb(0, 0, 255, 40, 80).composite([{ input: top, top: 0, left: 0 }]).png().toBuffer();
    const px = await decodeFile('halves.png', bytes, 16);
    expect(pixelAt(px, 16, 1, 8)).toEqual([255, 0, 0]);
    expect(pixelAt(px, 16, 14, 8)).toEqual([0, 0, 255]);
  });

  it('decodes to a non-square width × height, row-major HWC (aspect-preserving input for 150×300 posters)', async () => {
    const top = await rgb(255, 0, 0, 40, 40).png().toBuffer();
    const bytes = await rgb(0, 0, 255, 40, 80).composite([{ input: top, top: 0, left: 0 }]).png().toBuffer();
    const px = await decodePoster(bytes, { width: 8, height: 16 });
    expect(px).toHaveLength(8 * 16 * 3);
    expect(pixelAt(px, 8, 1, 4)).toEqual([255, 0, 0]);
    expect(pixelAt(px, 8, 14, 4)).toEqual([0, 0, 255]);
    await expect(decodePoster(bytes, { width: 0, height: 16 })).rejects.toThrow(/size must be an integer/);
  });

  it('names the file for a missing, empty, non-image or corrupt poster', async () => {
    const cases: [string, Buffer | undefined, string][] = [
      ['missing.jpg', undefined, 'missing'],
      ['empty.jpg', Buffer.alloc(0), 'corrupt'],
      ['text.jpg', Buffer.from('this is not an image'), 'unsupported'],
      ['garbage.jpg', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(500, 7)]), 'corrupt'],
    ];
    for (const [name, bytes, kind] of cases) {
      const path = join(tmp.dir, name);
      if (bytes) await writeFile(path, bytes);
      const error = await decodePoster(path).catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(PosterError);
      expect((error as PosterError).kind, name).toBe(kind);
      expect((error as PosterError).message, name).toContain(path);
    }
    const fromBuffer = await decodePoster(Buffer.from('nope'), { name: 'upload.png' }).catch((e: unknown) => e);
    expect((fromBuffer as PosterError).message).toMatch(/^upload\.png: /);
  });

  it('rejects a decompression bomb from its header, fast, and probe reports its size', async () => {
    const bomb = pngHeaderOnly(30_000, 30_000);
    expect(bomb.length).toBeLessThan(100);
    const started = performance.now();
    const error = await decodePoster(bomb, { name: 'bomb.png' }).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(1000);
    expect((error as PosterError).kind).toBe('too-large');
    expect((error as PosterError).message).toContain('bomb.png');
    const probe = await probePoster(bomb);
    expect(probe).toMatchObject({ format: 'png', width: 30_000, height: 30_000, pixels: 900_000_000 });
    // A configurable limit: a 40×80 image passes the default and fails a 1,000-pixel limit.
    const small = await rgb(1, 2, 3).png().toBuffer();
    await expect(decodePoster(small, { limitInputPixels: 1000 })).rejects.toMatchObject({ kind: 'too-large' });
  });

  it('validates size and sniffs formats', async () => {
    const png = await rgb(1, 2, 3).png().toBuffer();
    await expect(decodePoster(png, { size: 0 })).rejects.toMatchObject({ kind: 'invalid-option' });
    await expect(decodePoster(png, { size: 2.5 })).rejects.toMatchObject({ kind: 'invalid-option' });
    expect(sniffFormat(png)).toBe('png');
    expect(sniffFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeUndefined();
    await expect(probePoster(Buffer.from('<svg/>'))).rejects.toMatchObject({ kind: 'unsupported' });
  });
});
