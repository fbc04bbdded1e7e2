import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomArray, rng, scaledMaxDiff, startWasm } from '../test-setup.js';
import { NATIVE_POOL_MIN_FLOATS } from './MaxPoolGrad.js';
import { NATIVE_SUM_MIN_FLOATS } from './Sum.js';
import { configureNativeKernels, nativeRuntime } from '../native/runtime.js';

// Sums of at most ~2,000 float32 products (matMul) or 4,000 values (Sum).
const TOLERANCE = 1e-5;

function run(backend: string, seed: number, f: (next: () => number) => tf.Tensor): Float32Array {
  tf.setBackend(backend);
  const next = rng(seed);
  return tf.tidy(() => f(next).dataSync() as Float32Array);
}

const t = (shape: number[], next: () => number) => tf.tensor(randomArray(tf.util.sizeFromShape(shape), next), shape);

describe('BatchMatMul, Sum, Slice, GatherV2, MaxPoolGrad, Identity and Cast kernels on wasm match the cpu backend', () => {
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
    [[16, 32, 32, 10], [0, 1, 2], false], // large enough for the native kernel; 10 columns: its scalar tail too
  ];
  it.each(sumCases)('sum %j over %j keepDims=%s', (shape, axis, keepDims) => {
    const f = (next: () => number) => tf.sum(t(shape, next), axis, keepDims);
    tf.setBackend('wasm');
    const wasmShape = tf.tidy(() => tf.sum(tf.zeros(shape), axis, keepDims).shape);
    tf.setBackend('cpu');
    expect(wasmShape).toEqual(tf.tidy(() => tf.sum(tf.zeros(shape), axis, keepDims).shape));
    expect(scaledMaxDiff(run('wasm', 2, f), run('cpu', 2, f))).toBeLessThan(TOLERANCE);
  });

  it('the native column sums give the same bias gradient on one and two threads, bit for bit, and within double rounding of the JS sum', () => {
    const shape = [16, 32, 32, 10];
    expect(tf.util.sizeFromShape(shape)).toBeGreaterThanOrEqual(NATIVE_SUM_MIN_FLOATS);
    const f = (next: () => number) => tf.sum(t(shape, next), [0, 1, 2]);
    const results: Float32Array[] = [];
    for (const threads of [1, 2]) {
      configureNativeKernels({ threads });
      nativeRuntime()!.clearRunLog();
      results.push(run('wasm', 13, f));
      expect(nativeRuntime()!.runLog().flat().map((r) => r.fn)).toEqual(new Array(threads).fill('column_sums'));
    }
    configureNativeKernels({ threads: 1 });
    expect(results[1]).toEqual(results[0]);
    // The exact sums (in double) rounded once to float32.
    const next = rng(13);
    const x = randomArray(tf.util.sizeFromShape(shape), next);
    const exact = new Float64Array(10);
    x.forEach((v, i) => (exact[i % 10]! += v));
    expect(results[0]).toEqual(Float32Array.from(exact));
  });

  const sliceCases: [number[], number[], number[]][] = [
    [[7], [2], [4]],
    [[5, 6], [1, 2], [3, 4]],
    [[5, 6], [2, 0], [2, 6]], // whole rows: one contiguous run
    [[4, 5, 6], [1, 0, 3], [2, 5, 2]],
    [[3, 4, 5, 6], [1, 1, 0, 0], [2, 2, 5, 6]],
    [[2, 3, 4, 5, 2], [0, 1, 1, 2, 0], [2, 2, 3, 3, 2]], // rank 5
  ];
  it.each(sliceCases)('slice %j from %j size %j', (shape, begin, size) => {
    const f = (next: () => number) => tf.slice(t(shape, next), begin, size);
    expect(run('wasm', 3, f)).toEqual(run('cpu', 3, f));
  });

  const gatherCases: [number[], number[], number, number][] = [
    [[10, 4], [6], 0, 0], // embedding lookup
    [[10, 4], [2, 3], 0, 0], // [batch, steps] ids
    [[3, 7, 5], [4], 1, 0], // middle axis
    [[3, 7, 5], [6], 2, 0], // last axis: runs of one element
    [[2, 5, 3], [2, 4], 1, 1], // batchDims
  ];
  it.each(gatherCases)('gather from %j ids %j axis %s batchDims %s', (shape, idShape, axis, batchDims) => {
    const f = (next: () => number) => {
      const dim = shape[axis]!;
      const ids = tf.tensor(Array.from({ length: tf.util.sizeFromShape(idShape) }, () => Math.floor(next() * dim)), idShape, 'int32');
      return tf.gather(t(shape, next), ids, axis, batchDims);
    };
    tf.setBackend('wasm');
    const wasmShape = tf.tidy(() => f(rng(7)).shape);
    tf.setBackend('cpu');
    expect(wasmShape).toEqual(tf.tidy(() => f(rng(7)).shape));
    expect(run('wasm', 7, f)).toEqual(run('cpu', 7, f));
  });

  const poolCases: [number[], number, number, 'valid' | 'same'][] = [
    [[2, 8, 8, 3], 2, 2, 'valid'], // cnn-ref's pools
    [[2, 7, 5, 9], 2, 2, 'valid'], // 2×2 tiles with an uncovered last row and column
    [[1, 7, 9, 2], 3, 2, 'same'], // overlapping windows, padding
    [[2, 5, 6, 4], 2, 1, 'valid'],
    [[4, 64, 64, 6], 2, 2, 'valid'], // large enough for the native kernel; 6 channels: its scalar tail too
  ];
  it.each(poolCases)('maxPool gradient of %j, window %i, stride %i, %s; ties go to the first maximum', (shape, size, stride, pad) => {
    // Small integers: many windows hold equal maxima, as ReLU outputs of 0 do.
    const f = (next: () => number) => {
      const x = tf.tensor4d(Array.from({ length: tf.util.sizeFromShape(shape) }, () => Math.floor(next() * 3)), shape as [number, number, number, number]);
      const y = tf.maxPool(x, size, stride, pad);
      const dy = t(y.shape, next);
      return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, size, stride, pad), dy)))(x);
    };
    // Overlapping windows add several gradients to one input, in another order than cpu's.
    expect(scaledMaxDiff(run('wasm', 8, f), run('cpu', 8, f))).toBeLessThan(1e-6);
  });

  it('the native 2×2 max-pool gradient gives what the JavaScript one gives, on one and two threads, bit for bit', () => {
    const shape = [4, 64, 64, 6];
    expect(tf.util.sizeFromShape(shape)).toBeGreaterThanOrEqual(NATIVE_POOL_MIN_FLOATS);
    const f = (next: () => number) => {
      const x = tf.tensor4d(Array.from({ length: tf.util.sizeFromShape(shape) }, () => Math.floor(next() * 3)), shape as [number, number, number, number]);
      return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid'), t([4, 32, 32, 6], next))))(x);
    };
    const reference = run('cpu', 12, f);
    for (const threads of [1, 2]) {
      configureNativeKernels({ threads });
      nativeRuntime()!.clearRunLog();
      expect(run('wasm', 12, f)).toEqual(reference);
      expect(nativeRuntime()!.runLog().flat().map((r) => [r.fn, r.thread])).toEqual([['max_pool_grad_2x2', 0], ...(threads === 2 ? [['max_pool_grad_2x2', 1]] : [])]);
    }
    configureNativeKernels({ threads: 1 });
  });

  it('identity shares the buffer: the copy outlives the original, strings still work, nothing leaks', () => {
    tf.setBackend('wasm');
    const before = tf.memory();
    const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const copy = tf.clone(x);
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers + 1); // one buffer for both tensors
    x.dispose();
    expect(Array.from(copy.dataSync())).toEqual([1, 2, 3, 4]);
    copy.dispose();
    const words = tf.clone(tf.tensor1d(['a', 'b'], 'string'));
    expect(words.arraySync()).toEqual(['a', 'b']);
    tf.dispose(words);
    expect(tf.memory().numTensors).toBe(before.numTensors + 1); // the string tensor cloned from
    expect(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.clone(v), 2)))(tf.ones([3])).arraySync()).toEqual([2, 2, 2]);
  });

  it('cast to the same dtype shares the buffer; casts that change the dtype convert, to bool as 0/1; ReLU gradients match cpu', () => {
    tf.setBackend('wasm');
    const before = tf.memory();
    const x = tf.tensor1d([1.75, -2.5, 0, 3]);
    const same = tf.cast(x, 'float32');
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers + 1);
    x.dispose();
    expect(Array.from(same.dataSync())).toEqual([1.75, -2.5, 0, 3]);
    const ints = tf.cast(same, 'int32');
    expect(ints.dtype).toBe('int32');
    expect(Array.from(ints.dataSync())).toEqual([1, -2, 0, 3]);
    // wasm's own Cast gave [0, 2, 255] here (a byte truncated from the int), cpu gives 0/1.
    expect(Array.from(tf.tidy(() => tf.cast(tf.tensor1d([0, 2, -1], 'int32'), 'bool').dataSync()))).toEqual([0, 1, 1]);
    expect(Array.from(tf.tidy(() => tf.cast(tf.tensor1d([0, 0.25, -3]), 'bool').dataSync()))).toEqual([0, 1, 1]);
    tf.dispose([same, ints]);
    expect(tf.memory().numTensors).toBe(before.numTensors);
    const f = (next: () => number) => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), t([5, 7], next))))(t([5, 7], next));
    expect(run('wasm', 9, f)).toEqual(run('cpu', 9, f));
  });

  it('a row used as matMul weights, then transposed and used again, multiplies like cpu', () => {
    // wasm's matMul keeps XNNPACK operators, with their packed weights, per weight tensor id. A
    // Transpose that shared its input's buffer (and id) when no value moves, tried here once,
    // handed the [8, 1] transpose of a [1, 8] row an operator packed for the row: wrong products,
    // NaN in the cnn head's cross-fitting. Sharing is only safe where the shape stays (Identity,
    // Cast to the same dtype).
    const f = (next: () => number) => {
      const w = t([1, 8], next);
      const before = tf.matMul(t([3, 1], next), w);
      const transposed = tf.matMul(t([3, 8], next), tf.transpose(w));
      const after = tf.matMul(t([5, 1], next), w);
      return tf.concat([before.flatten(), transposed.flatten(), after.flatten()]);
    };
    expect(scaledMaxDiff(run('wasm', 14, f), run('cpu', 14, f))).toBeLessThan(1e-6);
  });

  it('gather rejects an index out of range, as wasm and cpu do', () => {
    tf.setBackend('wasm');
    expect(() => tf.tidy(() => tf.gather(tf.zeros([3, 2]), tf.tensor1d([0, 3], 'int32')))).toThrow(/not in \[0, 2\]/);
  });

  it('unstack and split (the RNN per-timestep path) match cpu, also through gradients', () => {
    for (const axis of [0, 1, 2]) {
      const f = (next: () => number) => tf.stack(tf.unstack(t([4, 3, 5], next), axis).map((p, i) => tf.mul(p, i + 1)), axis);
      expect(run('wasm', 4, f)).toEqual(run('cpu', 4, f));
    }
    const g = (next: () => number) => {
      const x = t([6, 8], next);
      return tf.grad((v: tf.Tensor) => tf.sum(tf.concat(tf.split(v, [3, 1, 4], 1).map((p, i) => tf.mul(p, i + 2)), 1)))(x);
    };
    expect(run('wasm', 5, g)).toEqual(run('cpu', 5, g));
    const h = (next: () => number) => tf.concat(tf.split(t([6, 8], next), 4, 1).reverse(), 1);
    expect(run('wasm', 6, h)).toEqual(run('cpu', 6, h));
  });
});
