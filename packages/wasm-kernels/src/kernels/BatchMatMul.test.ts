import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureNativeKernels, nativeRuntime } from '../native/runtime.js';
import { randomArray, rng, scaledMaxDiff, startWasm } from '../test-setup.js';
import { NATIVE_MATMUL_MIN_WEIGHTS } from './BatchMatMul.js';

// A weight matrix just past the threshold, with n not a multiple of the 8-column tile.
const k = 1024;
const n = 1030;

function product(backend: string, a: Float32Array, b: Float32Array, m: number, transposeA: boolean, transposeB: boolean): Float32Array {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const ta = tf.tensor2d(a, transposeA ? [k, m] : [m, k]);
    const tb = tf.tensor2d(b, transposeB ? [n, k] : [k, n]);
    const c = tf.matMul(ta, tb, transposeA, transposeB);
    expect(c.shape).toEqual([m, n]);
    return c.dataSync() as Float32Array;
  });
}

describe('BatchMatMul with a large weight matrix on the native GEMM', () => {
  beforeAll(async () => {
    await startWasm(1);
  });
  afterAll(() => configureNativeKernels({ threads: undefined }));

  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])('transposeA %s, transposeB %s: matches the cpu backend; 1 and 2 threads give the same bits', (transposeA, transposeB) => {
    expect(k * n).toBeGreaterThanOrEqual(NATIVE_MATMUL_MIN_WEIGHTS);
    const m = 7;
    const next = rng(transposeA ? 11 : 12 + (transposeB ? 1 : 0));
    const a = randomArray(m * k, next);
    const b = randomArray(k * n, next);
    configureNativeKernels({ threads: 1 });
    nativeRuntime()!.clearRunLog();
    const one = product('wasm', a, b, m, transposeA, transposeB);
    expect(nativeRuntime()!.runLog().flat().map((r) => r.fn)).toEqual(['gemm_f32']);
    expect(scaledMaxDiff(one, product('cpu', a, b, m, transposeA, transposeB))).toBeLessThan(1e-5);
    configureNativeKernels({ threads: 2 });
    expect(product('wasm', a, b, m, transposeA, transposeB)).toEqual(one);
    // Two threads, each a contiguous run of 8-column panels.
    expect(nativeRuntime()!.runLog().at(-1)!.map((r) => [r.thread, r.args[1]]).sort()).toEqual([
      [0, 520],
      [1, 510],
    ]);
  });

  it('computes a row the same way whatever else is in the batch, and leaves small products to XNNPACK', () => {
    configureNativeKernels({ threads: 1 });
    const next = rng(3);
    const a = randomArray(5 * k, next);
    const b = randomArray(k * n, next);
    const batch = product('wasm', a, b, 5, false, false);
    const alone = product('wasm', a.subarray(2 * k, 3 * k), b, 1, false, false);
    expect(alone).toEqual(batch.subarray(2 * n, 3 * n));
    nativeRuntime()!.clearRunLog();
    tf.setBackend('wasm');
    tf.tidy(() => tf.matMul(tf.ones([4, 64]), tf.ones([64, 32])).dataSync());
    expect(nativeRuntime()!.runLog()).toHaveLength(0);
  });
});
