import * as tf from '@tensorflow/tfjs';
// Imported for its side effect first: the wasm package registers its own kernels on import, and
// ours must be registered after that so they replace (not get replaced by) wasm's slow ones.
import '@tensorflow/tfjs-backend-wasm';
import { conv2DConfig, setConv2DOriginal } from './kernels/Conv2D.js';
import { fusedConv2DConfig, setFusedConv2DOriginal } from './kernels/FusedConv2D.js';
import { conv2DBackpropFilterConfig } from './kernels/Conv2DBackpropFilter.js';
import { conv2DBackpropInputConfig, setConv2DBackpropInputFallback } from './kernels/Conv2DBackpropInput.js';
import { batchMatMulConfig, setBatchMatMulOriginal } from './kernels/BatchMatMul.js';
import { setSliceOriginal, sliceConfig, splitVConfig, unpackConfig } from './kernels/Slice.js';
import { setSumOriginal, sumConfig } from './kernels/Sum.js';
import { unsortedSegmentSumConfig } from './kernels/UnsortedSegmentSum.js';
import { gatherV2Config, setGatherV2Original } from './kernels/GatherV2.js';
import { maxPoolGradConfig } from './kernels/MaxPoolGrad.js';
import { identityConfig, setIdentityOriginal } from './kernels/Identity.js';
import { castConfig, setCastOriginal } from './kernels/Cast.js';
import { fusedAdamUpdateConfig } from './kernels/FusedAdamUpdate.js';

/** Every kernel this package provides; all for backend 'wasm' only (tfjs-node's native kernels stay untouched). */
export const WASM_TRAINING_KERNELS: readonly tf.KernelConfig[] = [
  conv2DConfig,
  fusedConv2DConfig,
  conv2DBackpropInputConfig,
  conv2DBackpropFilterConfig,
  unsortedSegmentSumConfig,
  batchMatMulConfig,
  sumConfig,
  sliceConfig,
  unpackConfig,
  splitVConfig,
  gatherV2Config,
  maxPoolGradConfig,
  identityConfig,
  castConfig,
  fusedAdamUpdateConfig,
];

// Kernels that wrap wasm's own one (delegating the cases they do not speed up) receive it here.
const WRAPS: Partial<Record<string, (original: tf.KernelFunc) => void>> = {
  [tf.Conv2D]: setConv2DOriginal,
  [tf.FusedConv2D]: setFusedConv2DOriginal,
  [tf.Conv2DBackpropInput]: setConv2DBackpropInputFallback,
  [tf.BatchMatMul]: setBatchMatMulOriginal,
  [tf.Sum]: setSumOriginal,
  [tf.Slice]: setSliceOriginal,
  [tf.GatherV2]: setGatherV2Original,
  [tf.Identity]: setIdentityOriginal,
  [tf.Cast]: setCastOriginal,
};

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
    const wrap = WRAPS[config.kernelName];
    if (wrap && !existing) throw new Error(`${config.kernelName}: wasm's own kernel is missing; import @tensorflow/tfjs-backend-wasm first`);
    if (existing) {
      wrap?.(existing.kernelFunc);
      // Unregister first: registerKernel over an existing entry works but logs a warning.
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    // Keep wasm's setup/dispose hooks (its cwrap bindings): if the backend initialises after this
    // call, the wrapped original still gets set up.
    tf.registerKernel({ ...config, setupFunc: existing?.setupFunc, disposeFunc: existing?.disposeFunc });
    names.push(config.kernelName);
  }
  return names;
}
