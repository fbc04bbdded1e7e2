import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { sharedBufferOutput } from './Identity.js';

/**
 * Transpose that leaves the order of the values unchanged (the identity permutation, or one that
 * only moves axes of size 1) shares the input's buffer, as Identity does (Identity.ts says why
 * that is safe). wasm's own Transpose copies the tensor in that case, and every embedding
 * gradient passes through two such transposes (tfjs's gather gradient transposes by [0, 1] around
 * the scatter-add): 2 × 2 ms per lstm-ref step for the 10,000 × 256 table and the 6,400 × 256 rows.
 */
let original: tf.KernelFunc | undefined;

/** wasm's own Transpose, for permutations that move values. */
export function setTransposeOriginal(kernelFunc: tf.KernelFunc | undefined): void {
  original = kernelFunc;
}

/** Whether transposing `shape` by `perm` keeps every value where it is in memory. */
export function keepsMemoryOrder(shape: readonly number[], perm: readonly number[]): boolean {
  const moved = perm.filter((axis) => shape[axis] !== 1);
  return moved.every((axis, i) => i === 0 || axis > moved[i - 1]!);
}

export const transposeConfig: tf.KernelConfig = {
  kernelName: tf.Transpose,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs, backend } = args;
    const { x } = inputs as { x: tf.TensorInfo };
    const { perm } = attrs as unknown as { perm: number[] };
    if (x.dtype === 'string' || !keepsMemoryOrder(x.shape, perm)) {
      if (!original) throw new Error('Transpose wrapper used before registerWasmTrainingKernels()');
      return original(args);
    }
    return sharedBufferOutput(backend as BackendWasm, x, perm.map((axis) => x.shape[axis]!));
  },
};
