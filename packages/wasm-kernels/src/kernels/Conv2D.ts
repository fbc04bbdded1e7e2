import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { conv2dForwardNative } from '../native/conv.js';
import { nativeRuntime } from '../native/runtime.js';
import { convGeometry, isNHWC, type PadAttr } from './conv_util.js';

export interface Conv2DAttrs {
  strides: [number, number] | number;
  pad: PadAttr;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * Multiply-adds per output pixel (fh·fw·Ci·Co) from which a spatial convolution runs on the native
 * module. The choice depends on the filter only, never on the batch or the image size, so a model's
 * outputs do not depend on what else was in the batch (the native GEMM with relaxed SIMD rounds
 * differently from XNNPACK in the last bits).
 */
export const NATIVE_CONV_MIN_MACS_PER_PIXEL = 4096;

let original: tf.KernelFunc | undefined;

/** wasm's own (XNNPACK) Conv2D, for what the native path does not take. */
export function setConv2DOriginal(kernelFunc: tf.KernelFunc | undefined): void {
  original = kernelFunc;
}

/**
 * A forward convolution on the project's native module, or null when it does not apply (see
 * NATIVE_CONV_MIN_MACS_PER_PIXEL): Winograd's F(2×2, 3×3) for 3×3 stride-1 filters
 * (`csrc/winograd.c`), else an implicit-im2col GEMM (`csrc/conv.c`); threads split the output. On
 * cnn-ref's 3×3 layers that is 1.5–2.7× XNNPACK's speed on one thread (apps/trainer/src/bench/
 * conv-forward-ab.ts). It also serves the input gradients, which Conv2DBackpropInput computes as
 * convolutions.
 */
export function conv2dNative(backend: BackendWasm, x: tf.TensorInfo, filter: tf.TensorInfo, attrs: Conv2DAttrs): tf.TensorInfo | null {
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || !isNHWC(attrs.dataFormat)) return null;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  // 1×1 filters are matrix products XNNPACK does well; fewer than 8 input channels (an RGB first
  // layer) pack slowly here and XNNPACK has a kernel for that case.
  const macsPerPixel = info.filterHeight * info.filterWidth * info.inChannels * info.outChannels;
  if (info.filterHeight * info.filterWidth === 1 || info.inChannels < 8 || macsPerPixel < NATIVE_CONV_MIN_MACS_PER_PIXEL) return null;
  if (!nativeRuntime()) return null;
  // The output first: allocating may grow the wasm heap, which detaches earlier views of it.
  const out = backend.makeOutput(info.outShape.slice(), 'float32');
  const target = backend.typedArrayFromHeap(out) as Float32Array;
  conv2dForwardNative(backend.typedArrayFromHeap(x) as Float32Array, backend.typedArrayFromHeap(filter) as Float32Array, convGeometry(info), target);
  return out;
}

export const conv2DConfig: tf.KernelConfig = {
  kernelName: tf.Conv2D,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs, backend } = args;
    const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const native = conv2dNative(backend as BackendWasm, x, filter, attrs as unknown as Conv2DAttrs);
    if (native) return native;
    if (!original) throw new Error('Conv2D wrapper used before registerWasmTrainingKernels()');
    return original(args);
  },
};
