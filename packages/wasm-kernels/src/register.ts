import * as tf from '@tensorflow/tfjs';
// Imported for its side effect first: the wasm package registers its own kernels on import, and
// ours must be registered after that so they replace (not get replaced by) wasm's slow ones.
import '@tensorflow/tfjs-backend-wasm';
import { conv2DBackpropFilterConfig } from './kernels/Conv2DBackpropFilter.js';
import { conv2DBackpropInputConfig, setConv2DBackpropInputFallback } from './kernels/Conv2DBackpropInput.js';
import { unsortedSegmentSumConfig } from './kernels/UnsortedSegmentSum.js';

/** Every kernel this package provides; all for backend 'wasm' only (tfjs-node's native kernels stay untouched). */
export const WASM_TRAINING_KERNELS: readonly tf.KernelConfig[] = [
  conv2DBackpropInputConfig,
  conv2DBackpropFilterConfig,
  unsortedSegmentSumConfig,
];

/**
 * Registers the training kernels for the 'wasm' backend. Idempotent; safe to call before or after
 * the wasm backend initialises (kernels are looked up per call). Returns the kernel names registered.
 */
export function registerWasmTrainingKernels(): string[] {
  const names: string[] = [];
  for (const config of WASM_TRAINING_KERNELS) {
    if (config.backendName !== 'wasm') throw new Error(`${config.kernelName}: only wasm kernels belong here`);
    const existing = tf.getKernel(config.kernelName, 'wasm');
    if (existing?.kernelFunc === config.kernelFunc) {
      names.push(config.kernelName);
      continue;
    }
    if (existing) {
      if (config.kernelName === tf.Conv2DBackpropInput) setConv2DBackpropInputFallback(existing.kernelFunc);
      // Unregister first: registerKernel over an existing entry works but logs a warning.
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    tf.registerKernel(config);
    names.push(config.kernelName);
  }
  return names;
}
