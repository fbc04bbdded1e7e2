import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Identity without a copy: the output shares the input's buffer (one more reference), as the cpu
 * backend's Identity and wasm's own Reshape do. tfjs tensors are immutable and every wasm kernel
 * writes only to outputs it allocated, so sharing is safe. wasm's Identity copies the whole
 * tensor; gradients of additions and of the layers' activations pass through it several times per
 * training step (≈ 40–100 ms per cnn-ref step at batch 64).
 */
let original: tf.KernelFunc | undefined;

/** wasm's own Identity, kept for string tensors (they do not live on the heap). */
export function setIdentityOriginal(kernelFunc: tf.KernelFunc | undefined): void {
  original = kernelFunc;
}

/**
 * An output that is `x`'s buffer with one more reference (and possibly another shape or dtype
 * label): for kernels whose result has exactly x's values in x's order.
 */
export function sharedBufferOutput(backend: BackendWasm, x: tf.TensorInfo, shape = x.shape, dtype = x.dtype): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: shape.slice(), dtype };
}

export const identityConfig: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, backend } = args;
    const { x } = inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') {
      if (!original) throw new Error('Identity wrapper used before registerWasmTrainingKernels()');
      return original(args);
    }
    return sharedBufferOutput(backend as BackendWasm, x);
  },
};
