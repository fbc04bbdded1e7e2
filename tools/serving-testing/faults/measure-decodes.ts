// One-off: decode times of crafted posters in this process (sharp), for calibrating the lanes.
import { decodePoster, probePoster } from '@filmgenre/data-images';
import sharp from 'sharp';
import { scanBombJpeg, blackPng, manyFrameGif } from '../src/index.js';
import { loadavg } from 'node:os';

const noise = (w: number, h: number, channels: 3 | 4 = 3) => sharp({ create: { width: w, height: h, channels, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 60 } } });
async function time(name: string, bytes: Buffer) {
  const t0 = performance.now();
  const meta = await probePoster(bytes);
  const probe = performance.now() - t0;
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    try { await decodePoster(bytes, { width: 128, height: 256, limitInputPixels: 25_000_000 }); } catch (e) { console.log(name, 'error', (e as Error).message.slice(0, 100)); }
    runs.push(performance.now() - t);
  }
  console.log(JSON.stringify({ name, kb: Math.round(bytes.length / 1024), px: meta.pixels, probeMs: +probe.toFixed(1), decodeMs: Math.round(Math.min(...runs)), load: loadavg()[0] }));
}
const [w, h] = [1414, 1414];
await time('jpeg baseline noise 2MP q95', await noise(w, h).jpeg({ quality: 95 }).toBuffer());
await time('jpeg progressive noise 2MP q95', await noise(w, h).jpeg({ quality: 95, progressive: true }).toBuffer());
await time('jpeg progressive noise 2MP q95 444', await noise(w, h).jpeg({ quality: 95, progressive: true, chromaSubsampling: '4:4:4' }).toBuffer());
for (const scans of [1, 10, 99, 999]) await time(`scan bomb 1400x1400 ${scans + 1} scans`, scanBombJpeg(1400, 1400, scans));
await time('scan bomb 430x430 100 scans', scanBombJpeg(430, 430, 99));
await time('png noise 2MP rgb8', await noise(w, h).png({ compressionLevel: 1 }).toBuffer());
await time('png noise 2MP rgba16', await noise(w, h, 4).toColourspace('rgb16').png({ compressionLevel: 1 }).toBuffer());
await time('png noise 2MP rgba16 interlaced', await noise(w, h, 4).toColourspace('rgb16').png({ compressionLevel: 1, progressive: true }).toBuffer());
await time('png black 2MP', await blackPng(w, h));
await time('png black 2MP interlaced', await sharp(await blackPng(w, h)).png({ progressive: true, compressionLevel: 9 }).toBuffer());
await time('webp lossy noise 2MP', await noise(w, h).webp({ quality: 95 }).toBuffer());
await time('webp lossless noise 2MP', await noise(w, h).webp({ lossless: true, effort: 0 }).toBuffer());
await time('webp lossless noise 2MP rgba', await noise(w, h, 4).webp({ lossless: true, effort: 0 }).toBuffer());
await time('gif noise 2MP', await noise(w, h).gif().toBuffer());
await time('tiff deflate noise 2MP', await noise(w, h).tiff({ compression: 'deflate' }).toBuffer());
await time('avif noise 2MP', await noise(w, h).avif({ quality: 50, effort: 0 }).toBuffer());
await time('jpeg progressive noise 5000x5000', await noise(5000, 5000).jpeg({ quality: 90, progressive: true }).toBuffer());
await time('scan bomb 5000x5000 100 scans', scanBombJpeg(5000, 5000, 99));
await time('scan bomb 5000x5000 1 scan', scanBombJpeg(5000, 5000, 0));
await time('png black 5000x5000', await blackPng(5000, 5000));
await time('avif noise 3000x3000', await noise(3000, 3000).avif({ quality: 50, effort: 0 }).toBuffer());
await time('gif 1400x1400 700,000 frames', manyFrameGif(1400, 1400, 700_000));
