// Writes the hostile posters of issue 21's decode cases for tools/faults/rerun-fault-table.sh: the
// slowest of each format that the default bounds still admit (or refuse), as files. Each fits in the
// default 10 MB upload limit, so that it reaches the header checks and the decoders (a 5000 × 5000
// noise JPEG, 68 MB, would only be answered 413).
//   npx tsx tools/serving-testing/faults/craft-posters.ts <dir>
import { blackPng, manyFrameGif, scanBombJpeg } from '../src/index.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const dir = process.argv[2]!;
mkdirSync(dir, { recursive: true });
const noise = (width: number, height: number, channels: 3 | 4 = 3) =>
  sharp({ create: { width, height, channels, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 60 } } });
const posters: Record<string, Buffer | Promise<Buffer>> = {
  // The scan bomb at the scan limit: 100 scans (99 repeats and the DC scan), 1400 × 1400 and 5000 × 5000.
  'bomb-100-scans-1400.jpg': scanBombJpeg(1400, 1400, 99),
  'bomb-100-scans-5000.jpg': scanBombJpeg(5000, 5000, 99),
  'bomb-101-scans-1400.jpg': scanBombJpeg(1400, 1400, 100),
  'progressive-noise-1800.jpg': noise(1800, 1800).jpeg({ quality: 100, progressive: true, chromaSubsampling: '4:4:4' }).toBuffer(),
  'png-noise-rgba16-interlaced-1mp.png': noise(1000, 1000, 4).toColourspace('rgb16').png({ progressive: true, compressionLevel: 1 }).toBuffer(),
  'png-black-5000.png': blackPng(5000, 5000),
  'webp-lossless-noise-2mp.webp': noise(1414, 1414, 4).webp({ lossless: true, effort: 0 }).toBuffer(),
  'gif-650000-frames.gif': manyFrameGif(1400, 1400, 650_000),
  'avif-noise-3000.avif': noise(3000, 3000).avif({ quality: 50, effort: 0 }).toBuffer(),
  // Over the default bounds' sides: decoded only with the bounds opened (the deadline's own case).
  'png-black-1x5000000.png': blackPng(1, 5_000_000),
};
for (const [name, bytes] of Object.entries(posters)) writeFileSync(join(dir, name), await bytes);
