/**
 * Which input size for the pretrained extractor? Times feature extraction on the active backend and
 * scores each size with a linear probe (logistic regression on the features, k-fold) on a poster subset.
 *   npx tsx packages/model-cnn/bench/probe-feature-sizes.ts [--n 1500] [--sizes 224,160,128,96] [--backend wasm]
 */
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readDataset, resolveDatasetDir, shuffleInPlace, createRng, GENRES } from '@filmgenre/core';
import { initBackend, type BackendRequest } from '@filmgenre/tf-runtime';
import { PosterFeatureExtractor } from '../src/feature-extractor.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
};
const n = Number(arg('n', '1500'));
const sizes = arg('sizes', '224,160,128,96').split(',').map(Number);
const folds = 5;
// Features are cached so the probe can be re-run without re-extracting.
const cacheDir = join(tmpdir(), 'filmgenre-poster-probe');
mkdirSync(cacheDir, { recursive: true });
const backend = await initBackend(arg('backend', 'wasm') as BackendRequest);

const films = readDataset(resolveDatasetDir()).films;
shuffleInPlace(films, createRng(7));
const subset = films.slice(0, n);
const labels = tf.tensor2d(subset.flatMap((f) => Array.from(f.labels)), [n, GENRES.length]);

async function decode(path: string, size: number): Promise<Uint8Array> {
  const { data } = await sharp(path).removeAlpha().resize(size, size, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function microF1(probs: Float32Array, y: Float32Array, threshold: number): number {
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]! >= threshold;
    if (p && y[i] === 1) tp++; else if (p) fp++; else if (y[i] === 1) fn++;
  }
  return (2 * tp) / (2 * tp + fp + fn);
}

console.log(`backend ${backend.name}, ${n} posters, ${folds}-fold linear probe`);
for (const size of sizes) {
  const extractor = await PosterFeatureExtractor.fromNsfwjs({ inputSize: size });
  const cacheFile = join(cacheDir, `features-${size}-n${n}.f32`);
  const cached = existsSync(cacheFile);
  const feats = cached ? new Float32Array(new Uint8Array(readFileSync(cacheFile)).buffer) : new Float32Array(n * extractor.featureDim);
  let extractMs = 0;
  const batch = 32;
  for (let s = 0; s < (cached ? 0 : n); s += batch) {
    const group = subset.slice(s, s + batch);
    const pixels = await Promise.all(group.map((f) => decode(f.posterPath, size)));
    const t0 = performance.now();
    const out = tf.tidy(() => {
      const flat = new Uint8Array(group.length * size * size * 3);
      pixels.forEach((p, i) => flat.set(p, i * size * size * 3));
      const x = tf.tensor4d(flat, [group.length, size, size, 3], 'int32').toFloat().div(255) as tf.Tensor4D;
      return extractor.extract(x);
    });
    feats.set(await out.data(), s * extractor.featureDim);
    out.dispose();
    extractMs += performance.now() - t0;
  }
  extractor.dispose();
  if (!cached) writeFileSync(cacheFile, new Uint8Array(feats.buffer));
  // k-fold logistic regression, 10 epochs of Adam.
  let lossSum = 0, f1Sum = 0;
  const all = tf.tensor2d(feats, [n, extractor.featureDim]);
  const preds = new Float32Array(n * GENRES.length);
  for (let k = 0; k < folds; k++) {
    const valIdx: number[] = [], trIdx: number[] = [];
    for (let i = 0; i < n; i++) (i % folds === k ? valIdx : trIdx).push(i);
    // Raw features (ReLU6 averages in [0,6]); standardising these sparse channels made the probe unstable.
    const [xTr, yTr, xVa, yVa] = tf.tidy(() => [tf.gather(all, trIdx), tf.gather(labels, trIdx), tf.gather(all, valIdx), tf.gather(labels, valIdx)]);
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [extractor.featureDim], units: GENRES.length, activation: 'sigmoid' })] });
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'binaryCrossentropy' });
    await model.fit(xTr!, yTr!, { epochs: 10, batchSize: 64, verbose: 0 });
    const p = model.predict(xVa!) as tf.Tensor;
    const loss = tf.tidy(() => tf.metrics.binaryCrossentropy(yVa!, p).mean());
    lossSum += (await loss.data())[0]!;
    const pv = await p.data() as Float32Array;
    valIdx.forEach((row, j) => preds.set(pv.subarray(j * GENRES.length, (j + 1) * GENRES.length), row * GENRES.length));
    tf.dispose([xTr!, yTr!, xVa!, yVa!, p, loss]);
    model.dispose();
  }
  const y = await labels.data() as Float32Array;
  const f1s = [0.2, 0.25, 0.3, 0.35, 0.4].map((t) => `${t}:${microF1(preds, y, t).toFixed(3)}`);
  f1Sum = Math.max(...[0.2, 0.25, 0.3, 0.35, 0.4].map((t) => microF1(preds, y, t)));
  all.dispose();
  console.log(`size ${size}: ${cached ? 'cached' : `${(extractMs / n).toFixed(1)} ms/poster (extract only)`}, probe val loss ${(lossSum / folds).toFixed(4)}, micro-F1 best ${f1Sum.toFixed(3)} [${f1s.join(' ')}]`);
}
labels.dispose();
