import sharp from 'sharp';
import { DEFAULT_LIMIT_INPUT_PIXELS } from './decode.js';

/**
 * A small JPEG of a poster for reports (keeps its aspect ratio), as a data: URI so a report stays
 * one self-contained file. Resolves to undefined when the poster cannot be read: a report never fails
 * for a missing picture.
 */
export async function posterThumbnailDataUri(path: string, options: { width?: number; quality?: number } = {}): Promise<string | undefined> {
  try {
    const jpeg = await sharp(path, { limitInputPixels: DEFAULT_LIMIT_INPUT_PIXELS }).resize({ width: options.width ?? 72 }).jpeg({ quality: options.quality ?? 70 }).toBuffer();
    return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
  } catch {
    return undefined;
  }
}
