import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Max-pooling gradient straight on the wasm heap: each output's gradient goes to the first
 * maximum of its window (the cpu backend's and wasm's rule), all channels of a pixel at a time.
 * wasm's own MaxPoolGrad took 300–450 ms for cnn-ref's first pool (64×64×64×32 → 32×32) at batch
 * 64, several times its forward convolution's share; this single pass takes tens of ms.
 */
export function maxPoolGradOnHeap(
  backend: BackendWasm,
  dy: tf.TensorInfo,
  input: tf.TensorInfo,
  filterSize: [number, number] | number,
  strides: [number, number] | number,
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.TensorInfo {
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, dilationHeight, dilationWidth } = info;
  const dx = backend.makeOutput(input.shape.slice(), 'float32');
  // Views after makeOutput: allocating can grow (and detach) the wasm memory.
  const x = backend.typedArrayFromHeap(input);
  const g = backend.typedArrayFromHeap(dy);
  const out = backend.typedArrayFromHeap(dx) as Float32Array;
  out.fill(0);
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  for (let n = 0, o = 0; n < batchSize; n++) {
    for (let yo = 0; yo < outHeight; yo++) {
      for (let xo = 0; xo < outWidth; xo++, o += C) {
        best.fill(-Infinity);
        where.fill(-1);
        for (let i = 0; i < fh; i += dilationHeight) {
          const y = yo * strideHeight - info.padInfo.top + i;
          if (y < 0 || y >= inHeight) continue;
          for (let j = 0; j < fw; j += dilationWidth) {
            const xx = xo * strideWidth - info.padInfo.left + j;
            if (xx < 0 || xx >= inWidth) continue;
            const base = ((n * inHeight + y) * inWidth + xx) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c]!;
              if (v > best[c]! || where[c] === -1) {
                best[c] = v;
                where[c] = base + c;
              }
            }
          }
        }
        for (let c = 0; c < C; c++) if (where[c]! >= 0) out[where[c]!]! += g[o + c]!;
      }
    }
  }
  return dx;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
    if (input.dtype !== 'float32') throw new Error(`MaxPoolGrad on wasm supports float32, got ${input.dtype}`);
    return maxPoolGradOnHeap(backend as BackendWasm, dy, input, filterSize, strides, pad, dimRoundingMode);
  },
};
