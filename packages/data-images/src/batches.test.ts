import { initBackend } from '@filmgenre/tf-runtime';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createPosterBatches, epochOrder, type PosterBatch } from './batches.js';
import { pixelsToBatchTensor } from './tensor.js';

const SIZE = 8;
const PER = SIZE * SIZE * 3;
const N = 50;

/** Example i: every pixel value is a distinct function of (i, position), labels one-hot on i % 25. */
function synthetic(n = N): { pixels: Uint8Array; labels: Uint8Array } {
  const pixels = new Uint8Array(n * PER);
  for (let i = 0; i < n; i++) for (let p = 0; p < PER; p++) pixels[i * PER + p] = (i * 7 + p * 13) & 255;
  const labels = new Uint8Array(n * 25);
  for (let i = 0; i < n; i++) labels[i * 25 + (i % 25)] = 1;
  return { pixels, labels };
}

/** Bit-for-bit equality of two float arrays (fast, unlike a deep-equal over thousands of numbers). */
function same(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

async function collect(iterable: AsyncIterable<PosterBatch>): Promise<{ indices: number[][]; xs: Float32Array[]; ys: Float32Array[] }> {
  const out = { indices: [] as number[][], xs: [] as Float32Array[], ys: [] as Float32Array[] };
  for await (const { xs, ys, indices } of iterable) {
    out.indices.push(indices);
    out.xs.push(xs.dataSync() as Float32Array);
    out.ys.push(ys.dataSync() as Float32Array);
  }
  return out;
}

beforeAll(async () => {
  await initBackend('wasm', { log: () => undefined });
});

describe('epochOrder', () => {
  it('is a permutation fixed by (seed, epoch) and different across epochs and seeds', () => {
    const a = epochOrder(100, { shuffle: true, seed: 3, epoch: 0 });
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(epochOrder(100, { shuffle: true, seed: 3, epoch: 0 })).toEqual(a);
    expect(epochOrder(100, { shuffle: true, seed: 3, epoch: 1 })).not.toEqual(a);
    expect(epochOrder(100, { shuffle: true, seed: 4, epoch: 0 })).not.toEqual(a);
    expect(epochOrder(5, { shuffle: false, seed: 3, epoch: 7 })).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('createPosterBatches', () => {
  const data = synthetic();

  it('covers every example once per epoch, in batches of batchSize, with matching pixels and labels', async () => {
    const batches = createPosterBatches({ ...data, size: SIZE, batchSize: 16, shuffle: true, seed: 1, epoch: 2 });
    expect(batches.numBatches).toBe(4);
    const got = await collect(batches);
    expect(got.indices.map((b) => b.length)).toEqual([16, 16, 16, 2]);
    expect(got.indices.flat()).toEqual(epochOrder(N, { shuffle: true, seed: 1, epoch: 2 }));
    got.indices.forEach((indices, b) => indices.forEach((index, k) => {
      for (const p of [0, 5, PER - 1]) expect(got.xs[b]![k * PER + p]).toBeCloseTo(data.pixels[index * PER + p]! / 255, 6);
      expect(Array.from(got.ys[b]!.subarray(k * 25, k * 25 + 25))).toEqual(Array.from(data.labels.subarray(index * 25, index * 25 + 25)));
    }));
  });

  it('keeps the order without shuffle and drops the remainder on request', async () => {
    const got = await collect(createPosterBatches({ ...data, size: SIZE, batchSize: 16, shuffle: false, dropRemainder: true }));
    expect(got.indices.flat()).toEqual(Array.from({ length: 48 }, (_, i) => i));
  });

  it('gives the same batches for the same seed and epoch, and a new order for the next epoch', async () => {
    const options = { ...data, size: SIZE, batchSize: 10, shuffle: true, seed: 9, augment: {} };
    const a = await collect(createPosterBatches({ ...options, epoch: 0 }));
    const b = await collect(createPosterBatches({ ...options, epoch: 0, prefetch: 0 }));
    const c = await collect(createPosterBatches({ ...options, epoch: 1 }));
    expect(b.indices).toEqual(a.indices);
    b.xs.forEach((xs, i) => expect(same(xs, a.xs[i]!)).toBe(true));
    expect(c.indices).not.toEqual(a.indices);
  });

  it('augments each example the same way whatever the batching, and not at all when disabled', async () => {
    const base = { ...data, size: SIZE, shuffle: false, seed: 5, epoch: 0 };
    const plain = await collect(createPosterBatches({ ...base, batchSize: 50 }));
    const off = await collect(createPosterBatches({ ...base, batchSize: 50, augment: false }));
    const zero = await collect(createPosterBatches({ ...base, batchSize: 50, augment: { flip: 0, translate: 0, brightness: 0, contrast: 0 } }));
    const expected = Float32Array.from(data.pixels, (v) => v / 255);
    for (const got of [plain, off, zero]) expect(same(got.xs[0]!, expected)).toBe(true);

    const augBig = await collect(createPosterBatches({ ...base, batchSize: 50, augment: {} }));
    const augSmall = await collect(createPosterBatches({ ...base, batchSize: 7, augment: {} }));
    const joined = new Float32Array(N * PER);
    let at = 0;
    for (const xs of augSmall.xs) {
      joined.set(xs, at);
      at += xs.length;
    }
    expect(same(joined, augBig.xs[0]!)).toBe(true);
    expect(same(augBig.xs[0]!, expected)).toBe(false);
    expect(Math.min(...augBig.xs[0]!)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...augBig.xs[0]!)).toBeLessThanOrEqual(1);
  });

  it('does not leak tensors, whether the loop finishes or breaks early', async () => {
    const before = tf.memory().numTensors;
    for await (const { xs } of createPosterBatches({ ...data, size: SIZE, batchSize: 8, shuffle: true, augment: {} })) {
      expect(xs.isDisposed).toBe(false);
      expect(tf.memory().numTensors - before).toBe(2);
    }
    expect(tf.memory().numTensors).toBe(before);
    for await (const _batch of createPosterBatches({ ...data, size: SIZE, batchSize: 8, shuffle: true, prefetch: 3 })) break;
    expect(tf.memory().numTensors).toBe(before);
    const kept: PosterBatch[] = [];
    for await (const batch of createPosterBatches({ ...data, size: SIZE, batchSize: 25, shuffle: false, keepTensors: true })) kept.push(batch);
    expect(kept.every((b) => !b.xs.isDisposed)).toBe(true);
    kept.forEach((b) => tf.dispose([b.xs, b.ys]));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects inconsistent inputs and bad options', () => {
    expect(() => createPosterBatches({ ...data, size: 7, batchSize: 8, shuffle: false })).toThrow(/whole number/);
    expect(() => createPosterBatches({ pixels: data.pixels, labels: new Uint8Array(3), size: SIZE, batchSize: 8, shuffle: false })).toThrow(/labels/);
    expect(() => createPosterBatches({ ...data, size: SIZE, batchSize: 0, shuffle: false })).toThrow(/batchSize/);
    expect(() => createPosterBatches({ ...data, size: SIZE, batchSize: 8, shuffle: false, augment: { flip: 2 } })).toThrow(/flip/);
  });
});

describe('tensor helpers', () => {
  it('convert to float32 [0, 1] exactly as the batch pipeline does', async () => {
    const { pixels } = synthetic(3);
    const one = pixelsToBatchTensor(pixels.subarray(PER, 2 * PER), SIZE).reshape([SIZE, SIZE, 3]);
    expect(one.shape).toEqual([SIZE, SIZE, 3]);
    expect(one.dtype).toBe('float32');
    const reference = tf.tidy(() => tf.tensor(pixels.subarray(PER, 2 * PER), [SIZE, SIZE, 3], 'float32').div(255));
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(one, reference))).dataSync()[0]!);
    expect(diff).toBeLessThan(1e-7);
    const batch = pixelsToBatchTensor(pixels, SIZE, { indices: [2, 1] });
    expect(batch.shape).toEqual([2, SIZE, SIZE, 3]);
    const got = await collect(createPosterBatches({ pixels, labels: new Uint8Array(3), size: SIZE, batchSize: 3, shuffle: false }));
    expect((batch.dataSync() as Float32Array).subarray(PER, 2 * PER)).toEqual(one.dataSync());
    expect(got.xs[0]!.subarray(PER, 2 * PER)).toEqual(one.dataSync());
    expect(pixelsToBatchTensor(pixels, SIZE).shape).toEqual([3, SIZE, SIZE, 3]);
    tf.dispose([one, reference, batch]);
    expect(() => pixelsToBatchTensor(pixels.subarray(1), SIZE)).toThrow(/not a whole number of 8×8×3 images/);
    expect(() => pixelsToBatchTensor(pixels, SIZE, { indices: [3] })).toThrow(/out of/);
  });

  it('flip mirrors each poster left to right, as tf.reverse along the width does', () => {
    const { pixels } = synthetic(2);
    const flipped = pixelsToBatchTensor(pixels, SIZE, { flip: true });
    // Non-square posters (the 1:2 aspect) mirror along their width too.
    const tall = pixelsToBatchTensor(pixels.subarray(0, PER), { width: SIZE / 2, height: SIZE * 2 }, { flip: true });
    const tallReference = tf.tidy(() => tf.reverse(pixelsToBatchTensor(pixels.subarray(0, PER), { width: SIZE / 2, height: SIZE * 2 }), 2));
    expect(tall.shape).toEqual([1, SIZE * 2, SIZE / 2, 3]);
    expect(Array.from(tall.dataSync())).toEqual(Array.from(tallReference.dataSync()));
    tf.dispose([tall, tallReference]);
    const reference = tf.tidy(() => tf.reverse(pixelsToBatchTensor(pixels, SIZE), 2));
    expect(Array.from(flipped.dataSync())).toEqual(Array.from(reference.dataSync()));
    tf.dispose([flipped, reference]);
  });
});
