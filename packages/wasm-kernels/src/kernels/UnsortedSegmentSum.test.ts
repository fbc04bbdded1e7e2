import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomArray, rng, scaledMaxDiff, startWasm } from '../test-setup.js';

// Each output element sums at most a handful of float32 values: 1e-6 is already loose.
const TOLERANCE = 1e-6;

function embeddingGrad(backend: string, vocab: number, dim: number, ids: number[][], seed: number): Float32Array {
  tf.setBackend(backend);
  const next = rng(seed);
  return tf.tidy(() => {
    const table = tf.tensor2d(randomArray(vocab * dim, next), [vocab, dim]);
    const idx = tf.tensor2d(ids, [ids.length, ids[0]!.length], 'int32');
    const weights = tf.tensor(randomArray(ids.length * ids[0]!.length * dim, next), [ids.length, ids[0]!.length, dim]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), weights)))(table);
    return g.dataSync() as Float32Array;
  });
}

describe('UnsortedSegmentSum (embedding gradient) on wasm', () => {
  beforeAll(async () => {
    await startWasm(1);
  });

  it('matches cpu with repeated ids and padding id 0', () => {
    // Rows of padding (id 0) and the same id several times in a row and across the batch.
    const ids = [
      [0, 0, 0, 3, 3, 7],
      [5, 3, 0, 0, 49, 49],
      [1, 2, 3, 4, 5, 6],
    ];
    const ref = embeddingGrad('cpu', 50, 8, ids, 1);
    const got = embeddingGrad('wasm', 50, 8, ids, 1);
    expect(scaledMaxDiff(got, ref)).toBeLessThan(TOLERANCE);
    // Rows no id points at get exactly zero.
    expect(got.slice(8 * 10, 8 * 11).every((v) => v === 0)).toBe(true);
  });

  it('matches cpu on random ids, 1-D and 2-D rows', () => {
    const next = rng(3);
    const ids = Array.from({ length: 4 }, () => Array.from({ length: 25 }, () => Math.floor(next() * 30)));
    expect(scaledMaxDiff(embeddingGrad('wasm', 30, 5, ids, 2), embeddingGrad('cpu', 30, 5, ids, 2))).toBeLessThan(TOLERANCE);

    const direct = (backend: string) => {
      tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.tensor3d(randomArray(6 * 2 * 3, rng(4)), [6, 2, 3]);
        return tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, 1, 2, 0], 'int32'), 4).dataSync();
      });
    };
    expect(scaledMaxDiff(direct('wasm'), direct('cpu'))).toBeLessThan(TOLERANCE);
  });

  it('drops ids outside [0, numSegments) like TensorFlow', () => {
    tf.setBackend('wasm');
    const out = tf.tidy(() =>
      tf.unsortedSegmentSum(tf.tensor2d([1, 1, 2, 2, 4, 4], [3, 2]), tf.tensor1d([1, -1, 5], 'int32'), 2).arraySync(),
    );
    expect(out).toEqual([
      [0, 0],
      [1, 1],
    ]);
  });
});
