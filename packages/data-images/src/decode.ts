import { readFile } from 'node:fs/promises';
import sharp, { type OutputInfo } from 'sharp';

/** Side of the square the posters are resized to when no size is given (the reference CNN's input). */
export const DEFAULT_POSTER_SIZE = 64;
/**
 * Largest input accepted by default, in pixels (width × height). libvips checks the header before
 * decoding, so a decompression bomb (a tiny file declaring 50,000 × 50,000) fails fast and cheaply.
 */
export const DEFAULT_LIMIT_INPUT_PIXELS = 50_000_000;
export const MAX_POSTER_SIZE = 1024;

/** Formats decodePoster accepts; SVG, PDF and the rest are refused so an upload cannot reach those loaders. */
export const POSTER_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const;
export type PosterFormat = (typeof POSTER_FORMATS)[number];

/**
 * Identifies the decoding recipe. It is part of every cache key: changing the recipe or the
 * libvips/sharp build (whose resampling can move a pixel by a level) invalidates old cache entries.
 */
export const DECODER_VERSION = `poster-v1;fill;white;sharp-${sharp.versions.sharp};vips-${sharp.versions.vips ?? '?'}`;

export type PosterErrorKind = 'missing' | 'unreadable' | 'unsupported' | 'too-large' | 'corrupt' | 'invalid-option';

export class PosterError extends Error {
  override name = 'PosterError';
  constructor(
    /** The file path, or the name given for a buffer ('<buffer>' if none). */
    readonly file: string,
    readonly kind: PosterErrorKind,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

export interface DecodePosterOptions {
  /** Output side in pixels (default 64). */
  size?: number;
  /** Output width and height for a non-square input, e.g. 128×256 for the 150×300 posters' aspect (default: size). */
  width?: number;
  height?: number;
  /** Reject inputs with more pixels than this before decoding them (default 50 megapixels). */
  limitInputPixels?: number;
  /** Name used in error messages for buffer input, e.g. the uploaded file's name. */
  name?: string;
}

/** Recognises the accepted formats from their first bytes, so nothing else is handed to libvips. */
export function sniffFormat(bytes: Uint8Array): PosterFormat | undefined {
  const b = bytes;
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (b.length >= 6 && ascii(0, 4) === 'GIF8') return 'gif';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a))) return 'tiff';
  if (b.length >= 12 && ascii(4, 8) === 'ftyp' && /^avi[fs]$/.test(ascii(8, 12))) return 'avif';
  return undefined;
}

function checkSize(size: number, file: string): void {
  if (!Number.isInteger(size) || size < 1 || size > MAX_POSTER_SIZE) {
    throw new PosterError(file, 'invalid-option', `size must be an integer in [1, ${MAX_POSTER_SIZE}], got ${size}`);
  }
}

async function readInput(input: string | Buffer, name: string | undefined): Promise<{ bytes: Buffer; file: string }> {
  if (typeof input !== 'string') return { bytes: input, file: name ?? '<buffer>' };
  try {
    return { bytes: await readFile(input), file: input };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new PosterError(input, 'missing', 'file not found');
    throw new PosterError(input, 'unreadable', `cannot read file (${code ?? (error as Error).message})`);
  }
}

function classifySharpError(message: string): PosterErrorKind {
  if (/pixel limit/i.test(message)) return 'too-large';
  if (/unsupported image format/i.test(message)) return 'unsupported';
  return 'corrupt';
}

/**
 * Decodes a poster into the model's input layout: `size × size × 3` (or `height × width × 3`) uint8
 * sRGB, row-major HWC.
 *
 * - Every colour model (grey, CMYK, palette, 16-bit) is converted to 8-bit sRGB with 3 channels.
 * - Alpha is flattened onto **white**: transparent posters and logos are made to be seen on a light
 *   page, and black would turn their transparent margins into dark frames the model never sees in
 *   the (all-JPEG, opaque) training data.
 * - The image is stretched to the square (`fit: 'fill'`, like Keras' image resizing) rather than
 *   cropped or padded: every training poster is 150×300, so the stretch is the same for all of them
 *   and no part of the poster (often the title at the top or bottom) is cut away.
 * - EXIF orientation is applied (phone photos of posters arrive rotated otherwise).
 * - Any decoder warning (truncated data, bad Huffman codes) is an error: a half-grey poster must not
 *   silently enter training.
 *
 * The trainer and the server both call this, so training and serving see the same pixels.
 */
export async function decodePoster(input: string | Buffer, options: DecodePosterOptions = {}): Promise<Uint8Array> {
  const size = options.size ?? DEFAULT_POSTER_SIZE;
  const width = options.width ?? size;
  const height = options.height ?? size;
  const { bytes, file } = await readInput(input, options.name);
  checkSize(width, file);
  checkSize(height, file);
  if (bytes.length === 0) throw new PosterError(file, 'corrupt', 'empty file');
  const format = sniffFormat(bytes);
  if (!format) {
    throw new PosterError(file, 'unsupported', `not a ${POSTER_FORMATS.join('/')} image (starts with bytes ${bytes.subarray(0, 8).toString('hex') || 'none'})`);
  }
  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await sharp(bytes, {
      failOn: 'warning',
      limitInputPixels: options.limitInputPixels ?? DEFAULT_LIMIT_INPUT_PIXELS,
      autoOrient: true,
      pages: 1,
    })
      .resize(width, height, { fit: 'fill' })
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true }));
  } catch (error) {
    const message = (error as Error).message;
    throw new PosterError(file, classifySharpError(message), `cannot decode ${format} image: ${message}`);
  }
  if (info.channels !== 3 || info.width !== width || info.height !== height || data.length !== width * height * 3) {
    throw new PosterError(file, 'corrupt', `decoded to ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×3`);
  }
  // A view over sharp's buffer: no copy; callers that keep many posters copy into one big array anyway.
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

export interface PosterProbe {
  format: string;
  width: number;
  height: number;
  channels: number;
  hasAlpha: boolean;
  /** width × height, to compare with a pixel limit before decoding. */
  pixels: number;
}

/**
 * Reads only the header (no pixel decoding): lets the server reject an upload by format or
 * dimensions before paying for a decode. Throws PosterError if the bytes are not an accepted image.
 */
export async function probePoster(input: Buffer, options: { name?: string } = {}): Promise<PosterProbe> {
  const file = options.name ?? '<buffer>';
  const format = sniffFormat(input);
  if (!format) throw new PosterError(file, 'unsupported', `not a ${POSTER_FORMATS.join('/')} image`);
  try {
    // limitInputPixels: false so the probe reports huge dimensions instead of failing on them.
    const meta = await sharp(input, { limitInputPixels: false }).metadata();
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    return { format: meta.format, width, height, channels: meta.channels, hasAlpha: meta.hasAlpha, pixels: width * height };
  } catch (error) {
    throw new PosterError(file, 'corrupt', `cannot read ${format} header: ${(error as Error).message}`);
  }
}
