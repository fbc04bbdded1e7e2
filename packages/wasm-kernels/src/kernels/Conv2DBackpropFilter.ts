import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { conv2dFilterGradNative } from '../native/conv.js';
import { convGeometry, isNHWC, padOrCrop4D, type PadAttr } from './conv_util.js';

export interface Conv2DBackpropFilterAttrs {
  strides: [number, number] | number;
  pad: PadAttr;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/**
 * dW of a 2-D convolution as one forward convolution with batch and channels swapped:
 * dW[i,j,c,o] = Σ_{n,y,x} xpad[n, y·s+i, x·s+j, c] · dy[n,y,x,o], i.e. the padded input as
 * [C, H, W, N] convolved 'valid' with dy as a [outH, outW, N, O] filter dilated by the stride.
 * matMul-based formulations (im2col, per-tap) measured 4–8× slower on wasm.
 */
export function conv2dBackpropFilterViaConv(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: [number, number] | number,
  pad: PadAttr,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode);
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, outHeight, outWidth, padInfo } = info;
  return tf.tidy(() => {
    // Rows of the padded input the forward conv actually read: (outH − 1)·s + fh; any remainder is cropped.
    const bottom = (outHeight - 1) * sh + fh - padInfo.top - x.shape[1];
    const right = (outWidth - 1) * sw + fw - padInfo.left - x.shape[2];
    const xPad = padOrCrop4D(x, padInfo.top, bottom, padInfo.left, right);
    const xT = tf.transpose(xPad, [3, 1, 2, 0]); // [C, Hp, Wp, N]
    const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [outH, outW, N, O]
    const dilations: [number, number] = [sh, sw];
    const dW = tf.conv2d(xT, dyT, 1, 'valid', 'NHWC', dilations); // [C, fh, fw, O]
    return tf.transpose(dW, [1, 2, 0, 3]);
  });
}

/**
 * dW on the project's native module: Winograd's F(3×3, 2×2) for 3×3 stride-1 filters
 * (`csrc/winograd.c`), else one implicit-im2col GEMM over all output pixels (`csrc/conv.c`); threads
 * split fixed chunks of the sum (conv2dFilterGradNative). Reads x and dy straight from the wasm heap.
 * Null when the native module is unavailable.
 */
export function conv2dBackpropFilterNative(
  backend: BackendWasm,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  filterShape: [number, number, number, number],
  strides: [number, number] | number,
  pad: PadAttr,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.TensorInfo | null {
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
  const dw = conv2dFilterGradNative(backend.typedArrayFromHeap(x) as Float32Array, backend.typedArrayFromHeap(dy) as Float32Array, convGeometry(info));
  if (!dw) return null;
  const out = backend.makeOutput(filterShape.slice(), 'float32');
  backend.typedArrayFromHeap(out).set(dw);
  return out;
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { x, dy } = inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
    const a = attrs as unknown as Conv2DBackpropFilterAttrs;
    if (!isNHWC(a.dataFormat)) throw new Error(`Conv2DBackpropFilter on wasm supports NHWC only, got ${a.dataFormat}`);
    if (x.dtype === 'float32' && dy.dtype === 'float32') {
      const native = conv2dBackpropFilterNative(backend as BackendWasm, x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode);
      if (native) return native;
    }
    return conv2dBackpropFilterViaConv(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode);
  },
};
