import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomArray, rng, scaledMaxDiff, startWasm } from '../test-setup.js';

// Sums of at most ~2,000 float32 products (matMul) or 4,000 values (Sum).
const TOLERANCE = 1e-5;

function run(backend: string, seed: number, f: (next: () => number) => tf.Tensor): Float32Array {
  tf.setBackend(backend);
  const next = rng(seed);
  return tf.tidy(() => f(next).dataSync() as Float32Array);
}

const t = (shape: number[], next: () => number) => tf.tensor(randomArray(tf.util.sizeFromShape(shape), next), shape);

describe('BatchMatMul and Sum wrappers on wasm match the cpu backend', () => {
  beforeAll(async () => {
    await startWasm(1);
  });

  const matMulCases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false], // dense dW
    [[5, 7], [3, 7], false, true], // dense dx
    [[7, 5], [3, 7], true, true],
    [[64, 200], [3, 200], false, true], // big B: swapped form
    [[2, 6, 4], [2, 6, 5], true, false], // batched
    [[3, 4, 6], [1, 5, 6], false, true], // batched with broadcast
  ];
  it.each(matMulCases)('matMul %j × %j transposeA=%s transposeB=%s', (sa, sb, ta, tb) => {
    const f = (next: () => number) => tf.matMul(t(sa, next), t(sb, next), ta, tb);
    expect(scaledMaxDiff(run('wasm', 1, f), run('cpu', 1, f))).toBeLessThan(TOLERANCE);
  });

  const sumCases: [number[], number | number[], boolean][] = [
    [[4, 5, 6, 3], [0, 1, 2], false], // conv bias gradient
    [[4, 5, 6, 3], [2, 0, 1], true],
    [[9, 4], 0, false],
    [[4, 5, 6], [1, 2], false], // trailing axes: wasm's own kernel
    [[4, 5, 6], [0, 2], false], // non-contiguous: wasm's own kernel
    [[4, 5], [0, 1], false], // all axes
  ];
  it.each(sumCases)('sum %j over %j keepDims=%s', (shape, axis, keepDims) => {
    const f = (next: () => number) => tf.sum(t(shape, next), axis, keepDims);
    tf.setBackend('wasm');
    const wasmShape = tf.tidy(() => tf.sum(tf.zeros(shape), axis, keepDims).shape);
    tf.setBackend('cpu');
    expect(wasmShape).toEqual(tf.tidy(() => tf.sum(tf.zeros(shape), axis, keepDims).shape));
    expect(scaledMaxDiff(run('wasm', 2, f), run('cpu', 2, f))).toBeLessThan(TOLERANCE);
  });
});
