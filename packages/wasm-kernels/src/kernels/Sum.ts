import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Sums over leading axes (every conv / dense bias gradient: dy summed over batch, height, width)
 * as column sums read straight from the wasm heap. wasm's own Sum transposes the reduced axes to
 * the end first (62 ms for 64×64×64×32 at batch 16); the matMul with a row of ones used before
 * makes XNNPACK pack the whole tensor as a weight matrix, which at batch 64 took 100–350 ms for
 * cnn-ref's first layers against ≈10 ms for this single pass over memory. Other reductions go to
 * wasm's kernel.
 */
let original: tf.KernelFunc | undefined;

export function setSumOriginal(kernelFunc: tf.KernelFunc | undefined): void {
  original = kernelFunc;
}

export const sumConfig: tf.KernelConfig = {
  kernelName: tf.Sum,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs, backend } = args;
    const { x } = inputs as { x: tf.Tensor };
    const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
    if (!original) throw new Error('Sum wrapper used before registerWasmTrainingKernels()');
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const leading = axes.length > 0 && axes.length < x.rank && axes.every((v, i) => v === i);
    if (!leading || x.dtype !== 'float32') return original(args);
    const rows = tf.util.sizeFromShape(x.shape.slice(0, axes.length));
    const rest = x.shape.slice(axes.length);
    const outShape = keepDims ? [...axes.map(() => 1), ...rest] : rest;
    return sumLeadingOnHeap(backend as BackendWasm, x, rows, outShape);
  },
};

/** Column sums of x viewed as [rows, cols], accumulated in double precision. */
export function sumLeadingOnHeap(backend: BackendWasm, x: tf.TensorInfo, rows: number, outShape: number[]): tf.TensorInfo {
  const cols = tf.util.sizeFromShape(outShape);
  const out = backend.makeOutput(outShape, 'float32');
  const acc = new Float64Array(cols);
  const values = backend.typedArrayFromHeap(x);
  // Four rows per pass over acc: a quarter of the accumulator loads and stores (the sum of four
  // float32 values is exact in double precision, so the result does not change).
  const rows4 = rows - (rows % 4);
  for (let r = 0, i = 0; r < rows4; r += 4, i += 3 * cols) {
    for (let c = 0; c < cols; c++, i++) acc[c]! += values[i]! + values[i + cols]! + values[i + 2 * cols]! + values[i + 3 * cols]!;
  }
  for (let i = rows4 * cols; i < rows * cols; i++) acc[i % cols]! += values[i]!;
  backend.typedArrayFromHeap(out).set(acc);
  return out;
}
