import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { NATIVE_MIN_FLOATS, nativeRuntime, type NativeRuntime } from '../native/runtime.js';

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

/**
 * Tensors from this size on are summed on the native module (`csrc/reduce.c`: SIMD, chunks taken
 * by its threads; see NATIVE_MIN_FLOATS): the JavaScript loop below took 14–16 ms per call for
 * cnn-ref's 64 × 64 × 64 × 32 bias gradients on either thread count.
 */
export const NATIVE_SUM_MIN_FLOATS = NATIVE_MIN_FLOATS;

/** Fixed chunks of rows, each summed into its own partial: the same result on any thread count. */
const SUM_CHUNKS = 8;

/** Column sums of x viewed as [rows, cols], accumulated in double precision. */
export function sumLeadingOnHeap(backend: BackendWasm, x: tf.TensorInfo, rows: number, outShape: number[]): tf.TensorInfo {
  const cols = tf.util.sizeFromShape(outShape);
  const out = backend.makeOutput(outShape, 'float32');
  const values = backend.typedArrayFromHeap(x);
  const rt = values.length >= NATIVE_SUM_MIN_FLOATS ? nativeRuntime() : null;
  if (rt) {
    backend.typedArrayFromHeap(out).set(columnSumsNative(rt, values as Float32Array, rows, cols));
    return out;
  }
  const acc = new Float64Array(cols);
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

function columnSumsNative(rt: NativeRuntime, x: Float32Array, rows: number, cols: number): Float64Array {
  rt.reset();
  const px = rt.put(x);
  // Doubles, 8-byte aligned (alloc aligns to 64): two float slots each.
  const partials = rt.alloc(2 * SUM_CHUNKS * cols);
  const struct = rt.struct([rows, cols, px, partials]);
  rt.run(rt.jobsByQueue((queue, t) => ({ fn: 'column_sums', args: [struct, queue, t, SUM_CHUNKS], label: `column sums, thread ${t}'s chunks of ${SUM_CHUNKS}` })));
  const sums = new Float64Array(rt.f32().buffer, partials, SUM_CHUNKS * cols);
  const acc = new Float64Array(cols);
  for (let i = 0; i < SUM_CHUNKS; i++) for (let c = 0; c < cols; c++) acc[c]! += sums[i * cols + c]!;
  return acc;
}
