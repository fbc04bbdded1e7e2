import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@filmgenre/tf-runtime';
import { createFeatureHead, createPosterCnn } from './models.js';

/**
 * Training runs on `wasm` once its missing training kernel (Conv2DBackpropFilter) is registered by
 * @filmgenre/wasm-kernels; until then on `cpu` with tiny shapes.
 */
let backend = 'cpu';
beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    await initBackend('cpu', { log: () => {} });
  }
  backend = tf.getBackend();
});

// 8×8: the cpu backend's Conv2DBackpropFilter is a naive loop, so shapes must stay tiny there.
const SIZE = 8;
const GENRES = 4;

/**
 * Genre k is present iff quadrant k is bright; a random tint and pixel noise everywhere else make the
 * network find the quadrant rather than mean brightness. Each genre independently with p = 0.5.
 */
function quadrantTask(n: number, seed: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  let state = seed >>> 0;
  const rand = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const pixels = new Float32Array(n * SIZE * SIZE * 3);
  const labels = new Float32Array(n * GENRES);
  const half = SIZE / 2;
  for (let i = 0; i < n; i++) {
    const on = Array.from({ length: GENRES }, () => rand() < 0.5);
    on.forEach((v, k) => (labels[i * GENRES + k] = v ? 1 : 0));
    const tint = [rand() * 0.3, rand() * 0.3, rand() * 0.3];
    for (let r = 0; r < SIZE; r++) {
      for (let c = 0; c < SIZE; c++) {
        const q = (r < half ? 0 : 2) + (c < half ? 0 : 1);
        for (let ch = 0; ch < 3; ch++) {
          const base = on[q] ? 0.6 : 0.1;
          pixels[((i * SIZE + r) * SIZE + c) * 3 + ch] = Math.min(1, base + tint[ch]! + rand() * 0.1);
        }
      }
    }
  }
  return { x: tf.tensor4d(pixels, [n, SIZE, SIZE, 3]), y: tf.tensor2d(labels, [n, GENRES]) };
}

function microF1(pred: tf.Tensor, truth: tf.Tensor): number {
  return tf.tidy(() => {
    const p = tf.greaterEqual(pred, 0.5).toFloat();
    const tp = tf.sum(tf.mul(p, truth)).dataSync()[0]!;
    const fp = tf.sum(tf.mul(p, tf.sub(1, truth))).dataSync()[0]!;
    const fn = tf.sum(tf.mul(tf.sub(1, p), truth)).dataSync()[0]!;
    return (2 * tp) / (2 * tp + fp + fn);
  });
}

describe('models learn a separable synthetic task', () => {
  it.each(['study', 'residual'] as const)('%s CNN reaches micro-F1 > 0.9 on held-out images', async (variant) => {
    const train = quadrantTask(192, 1);
    const test = quadrantTask(128, 2);
    const model = createPosterCnn({
      variant, imageSize: SIZE, filters: [4, 4, 8], denseUnits: 16, dropout: 0.1, numGenres: GENRES, seed: 3,
      // A short run: let BatchNormalization's moving statistics catch up with the weights.
      batchNormMomentum: 0.9,
    });
    model.compile({ optimizer: tf.train.adam(1e-2), loss: 'binaryCrossentropy' });
    const t0 = performance.now();
    await model.fit(train.x, train.y, { epochs: 14, batchSize: 32, shuffle: false, verbose: 0 });
    const seconds = (performance.now() - t0) / 1000;
    const pred = model.predict(test.x) as tf.Tensor;
    const f1 = microF1(pred, test.y);
    console.log(`${variant} on ${backend}: held-out micro-F1 ${f1.toFixed(3)} after ${seconds.toFixed(1)} s of training`);
    expect(f1).toBeGreaterThan(0.9);
    tf.dispose([train.x, train.y, test.x, test.y, pred]);
    model.dispose();
  });

  it('feature head learns labels that are linear in the features', async () => {
    const dim = 64;
    const w = tf.randomNormal([dim, GENRES], 0, 1, 'float32', 5);
    const make = (n: number, seed: number) => tf.tidy(() => {
      const x = tf.randomNormal([n, dim], 0, 1, 'float32', seed);
      return { x, y: tf.greater(tf.matMul(x, w), 0).toFloat() };
    });
    const train = make(512, 6);
    const test = make(256, 7);
    const head = createFeatureHead({ featureDim: dim, hiddenUnits: 32, dropout: 0.1, inputDropout: 0, numGenres: GENRES, seed: 8 });
    head.compile({ optimizer: tf.train.adam(3e-3), loss: 'binaryCrossentropy' });
    await head.fit(train.x, train.y, { epochs: 30, batchSize: 64, verbose: 0 });
    const pred = head.predict(test.x) as tf.Tensor;
    expect(microF1(pred, test.y)).toBeGreaterThan(0.9);
    tf.dispose([w, train.x, train.y, test.x, test.y, pred]);
    head.dispose();
  });
});
