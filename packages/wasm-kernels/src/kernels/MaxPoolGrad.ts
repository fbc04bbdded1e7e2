import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { NATIVE_MIN_FLOATS, nativeRuntime, type NativeRuntime } from '../native/runtime.js';

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
  const tiles2x2 =
    fh === 2 && fw === 2 && strideHeight === 2 && strideWidth === 2 && dilationHeight === 1 && dilationWidth === 1 &&
    info.padInfo.top === 0 && info.padInfo.left === 0;
  if (tiles2x2) {
    const rt = inHeight === 2 * outHeight && inWidth === 2 * outWidth && x.length >= NATIVE_POOL_MIN_FLOATS ? nativeRuntime() : null;
    if (rt) maxPoolGrad2x2Native(rt, x as Float32Array, g as Float32Array, out, [batchSize, inHeight, inWidth, C, outHeight, outWidth]);
    else maxPoolGrad2x2(x, g, out, batchSize, inHeight, inWidth, C, outHeight, outWidth);
    return dx;
  }
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

/**
 * Inputs from this size on take the native kernel (`csrc/pool.c`: SIMD, split over the module's
 * threads; see NATIVE_MIN_FLOATS): cnn-ref's first pool, 64 × 64 × 64 × 32 at batch 64, took
 * ≈ 53 ms in the JavaScript loop below on either thread count.
 */
export const NATIVE_POOL_MIN_FLOATS = NATIVE_MIN_FLOATS;

/** The 2×2 / stride-2 case on the native module, for inputs exactly twice the output's size. */
function maxPoolGrad2x2Native(rt: NativeRuntime, x: Float32Array, g: Float32Array, out: Float32Array, dims: number[]): void {
  const [batch, , , , outHeight, outWidth] = dims as [number, number, number, number, number, number];
  rt.reset();
  const px = rt.put(x);
  const pg = rt.put(g);
  const pdx = rt.place(out, x.length);
  const struct = rt.struct([...dims, px, pg, pdx]);
  const pixels = batch * outHeight * outWidth;
  rt.run(rt.jobsByRange(pixels, (begin, end) => ({ fn: 'max_pool_grad_2x2', args: [struct, begin, end], label: `max-pool gradient, output pixels ${begin}-${end}` })));
  rt.read(pdx, x.length, out);
}

/**
 * The common case, 2×2 windows at stride 2 (every pool of cnn-ref): windows tile the input without
 * overlapping, so each input value is written exactly once (the gradient at its window's first
 * maximum, 0 elsewhere) and no zero-fill pass is needed except for an odd last row or column.
 */
function maxPoolGrad2x2(
  x: ArrayLike<number>,
  g: ArrayLike<number>,
  out: Float32Array,
  batch: number,
  inHeight: number,
  inWidth: number,
  C: number,
  outHeight: number,
  outWidth: number,
): void {
  if (inHeight !== 2 * outHeight || inWidth !== 2 * outWidth) out.fill(0);
  const rowStride = inWidth * C;
  for (let n = 0, o = 0; n < batch; n++) {
    for (let yo = 0; yo < outHeight; yo++) {
      for (let xo = 0; xo < outWidth; xo++, o += C) {
        const p00 = ((n * inHeight + 2 * yo) * inWidth + 2 * xo) * C;
        const p01 = p00 + C;
        const p10 = p00 + rowStride;
        const p11 = p10 + C;
        for (let c = 0; c < C; c++) {
          const v00 = x[p00 + c]!;
          const v01 = x[p01 + c]!;
          const v10 = x[p10 + c]!;
          const v11 = x[p11 + c]!;
          // First maximum in window order, as the general path (and tfjs's cpu backend) picks it.
          let best = v00;
          let at = 0;
          if (v01 > best) {
            best = v01;
            at = 1;
          }
          if (v10 > best) {
            best = v10;
            at = 2;
          }
          if (v11 > best) at = 3;
          const grad = g[o + c]!;
          out[p00 + c] = at === 0 ? grad : 0;
          out[p01 + c] = at === 1 ? grad : 0;
          out[p10 + c] = at === 2 ? grad : 0;
          out[p11 + c] = at === 3 ? grad : 0;
        }
      }
    }
  }
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
