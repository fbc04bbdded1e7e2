import { nativeRuntime, type Job } from './runtime.js';

/** Geometry of a 2-D convolution (NHWC input, HWIO filter), as tfjs's computeConv2DInfo gives it. */
export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  padTop: number;
  padLeft: number;
}

/**
 * Filter gradient of a convolution on the native module (`csrc/conv.c`): one GEMM of dyᵀ with the
 * im2col of x over all output pixels, packed on the fly; threads split the filter's taps ×
 * channels. x [N, H, W, Ci] and dy [N, Ho, Wo, Co] are copied in; returns dW [fh, fw, Ci, Co].
 * Null when the native module is unavailable.
 */
export function conv2dFilterGradNative(x: ArrayLike<number>, dy: ArrayLike<number>, g: ConvGeometry): Float32Array | null {
  const rt = nativeRuntime();
  if (!rt) return null;
  const cols = g.filterHeight * g.filterWidth * g.inChannels;
  const co = g.outChannels;
  rt.reset();
  const px = rt.put(x);
  const pdy = rt.put(dy);
  const pdwt = rt.alloc(co * cols);
  const struct = rt.struct([
    g.batch, g.inHeight, g.inWidth, g.inChannels, g.outHeight, g.outWidth, co, g.filterHeight, g.filterWidth,
    g.strideHeight, g.strideWidth, g.dilationHeight, g.dilationWidth, g.padTop, g.padLeft, px, pdy, pdwt,
  ]);
  // Column ranges in whole 8-column panels, as even as possible.
  const panels = Math.ceil(cols / 8);
  const threads = Math.min(rt.threads, panels);
  const perThread: Job[][] = [];
  for (let i = 0; i < threads; i++) {
    const begin = Math.min(cols, Math.round((panels * i) / threads) * 8);
    const end = Math.min(cols, Math.round((panels * (i + 1)) / threads) * 8);
    const work = rt.alloc(rt.call('conv2d_filter_grad_work_len', struct, begin, end));
    perThread.push([{ fn: 'conv2d_filter_grad', args: [struct, begin, end, work], label: `filter gradient, columns ${begin}-${end}` }]);
  }
  rt.run(perThread);
  const dwt = rt.read(pdwt, co * cols);
  const dw = new Float32Array(cols * co);
  for (let o = 0; o < co; o++) for (let c = 0; c < cols; c++) dw[c * co + o] = dwt[o * cols + c]!;
  return dw;
}
