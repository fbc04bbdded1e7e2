import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { sharedBufferOutput } from './Identity.js';

/**
 * Cast to the dtype a tensor already has shares its buffer, as Identity does (Identity.ts says
 * why that is safe). wasm's own Cast copies the tensor whatever the dtypes, and ReLU's gradient,
 * `dy · cast(step(x), 'float32')`, casts float32 to float32: 13–18 ms per cnn-ref step on its
 * 64 × 64 × 64 × 32 activations. Casts to bool are computed here (x ≠ 0), because wasm's own
 * truncates the number into a byte (2 → 2, −1 → 255); the other casts go to wasm's kernel.
 */
let original: tf.KernelFunc | undefined;

/** wasm's own Cast, for casts that change the dtype. */
export function setCastOriginal(kernelFunc: tf.KernelFunc | undefined): void {
  original = kernelFunc;
}

export const castConfig: tf.KernelConfig = {
  kernelName: tf.Cast,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs, backend } = args;
    const { x } = inputs as { x: tf.TensorInfo };
    const { dtype } = attrs as unknown as { dtype: tf.DataType };
    if (dtype === 'bool' && x.dtype !== 'bool' && x.dtype !== 'string') return castToBool(backend as BackendWasm, x);
    if (dtype !== x.dtype || dtype === 'string') {
      if (!original) throw new Error('Cast wrapper used before registerWasmTrainingKernels()');
      return original(args);
    }
    return sharedBufferOutput(backend as BackendWasm, x);
  },
};

function castToBool(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  const out = backend.makeOutput(x.shape, 'bool');
  // Views after makeOutput: allocating can grow (and detach) the wasm memory.
  const values = backend.typedArrayFromHeap(x);
  const flags = backend.typedArrayFromHeap(out);
  for (let i = 0; i < values.length; i++) flags[i] = values[i] !== 0 ? 1 : 0;
  return out;
}
