export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './register.js';
export { conv2dBackpropInputViaConv } from './kernels/Conv2DBackpropInput.js';
export { conv2dBackpropFilterViaConv } from './kernels/Conv2DBackpropFilter.js';
export { FusedAdamOptimizer, fusedAdam } from './fused-adam.js';
export { FUSED_ADAM_UPDATE } from './kernels/FusedAdamUpdate.js';
export { unsortedSegmentSumOnHeap } from './kernels/UnsortedSegmentSum.js';
export { fusedBiLstm, fusedBiLstmAvailable, type BiLstmWeightTensors } from './native/bilstm-op.js';
export {
  configureNativeKernels,
  nativeKernelsStatus,
  relaxedSimdSupported,
  NATIVE_KERNELS_ENV,
  WASM_SIMD_ENV,
  type NativeKernelsStatus,
  type SimdChoice,
} from './native/runtime.js';
export {
  prepareWasmBackend,
  finishWasmBackendInit,
  wasmThreadsState,
  WASM_THREADS_ENV,
  type PrepareWasmOptions,
  type WasmThreadsState,
} from './threads.js';
