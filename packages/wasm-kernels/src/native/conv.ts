import { nativeRuntime, type Job, type NativeRuntime } from './runtime.js';

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

/** conv_args of csrc/conv.c: the geometry, then x, dy, w, y (0 where a kernel does not use one). */
function convStruct(rt: NativeRuntime, g: ConvGeometry, pointers: { x: number; dy?: number; w?: number; y?: number }): number {
  return rt.struct([
    g.batch, g.inHeight, g.inWidth, g.inChannels, g.outHeight, g.outWidth, g.outChannels, g.filterHeight, g.filterWidth,
    g.strideHeight, g.strideWidth, g.dilationHeight, g.dilationWidth, g.padTop, g.padLeft,
    pointers.x, pointers.dy ?? 0, pointers.w ?? 0, pointers.y ?? 0,
  ]);
}

/**
 * The filter gradient's sum over output pixels is cut into this many fixed chunks, each summed
 * into its own partial and the partials then added in chunk order: any thread count up to this
 * one gives bit-identical results, and no thread packs what another packs.
 */
export const FILTER_GRAD_CHUNKS = 8;

/**
 * Filter gradient of a convolution on the native module (`csrc/conv.c`): one GEMM of dyᵀ with the
 * im2col of x over the output pixels, packed on the fly; threads take whole chunks of pixels.
 * x [N, H, W, Ci] and dy [N, Ho, Wo, Co] are copied in; returns dW [fh, fw, Ci, Co].
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
  const struct = convStruct(rt, g, { x: px, dy: pdy });
  const threads = Math.min(rt.threads, FILTER_GRAD_CHUNKS);
  const workFloats = rt.call('conv2d_filter_grad_work_len', struct);
  const partials = rt.alloc(FILTER_GRAD_CHUNKS * co * cols);
  // One job per thread (a worker runs one job per run): thread t sums a contiguous run of chunks.
  const perThread: Job[][] = [];
  for (let t = 0; t < threads; t++) {
    const begin = Math.round((FILTER_GRAD_CHUNKS * t) / threads);
    const end = Math.round((FILTER_GRAD_CHUNKS * (t + 1)) / threads);
    const args = [struct, begin, end, FILTER_GRAD_CHUNKS, partials, rt.alloc(workFloats)];
    perThread.push([{ fn: 'conv2d_filter_grad', args, label: `filter gradient, pixel chunks ${begin}-${end} of ${FILTER_GRAD_CHUNKS}` }]);
  }
  rt.run(perThread);
  const heap = rt.f32();
  const dw = new Float32Array(cols * co);
  for (let i = 0; i < FILTER_GRAD_CHUNKS; i++) {
    const base = (partials >> 2) + i * co * cols;
    for (let o = 0; o < co; o++) {
      const row = base + o * cols;
      for (let c = 0; c < cols; c++) dw[c * co + o] += heap[row + c]!;
    }
  }
  return dw;
}

/**
 * Forward 2-D convolution on the native module (`csrc/conv.c`): one GEMM of the im2col of x (packed
 * block by block) with the filter as a [fh·fw·Ci, Co] matrix; threads split the output pixels,
 * one contiguous range each, so every thread count gives the same result. x [N, H, W, Ci] and
 * w [fh, fw, Ci, Co] are copied in; returns y [N, Ho, Wo, Co], written into `out` when given. Null
 * when the native module is unavailable.
 */
export function conv2dForwardNative(x: ArrayLike<number>, w: ArrayLike<number>, g: ConvGeometry, out?: Float32Array): Float32Array | null {
  const rt = nativeRuntime();
  if (!rt) return null;
  const pixels = g.batch * g.outHeight * g.outWidth;
  rt.reset();
  const px = rt.put(x);
  const pw = rt.put(w);
  const py = rt.alloc(pixels * g.outChannels);
  const struct = convStruct(rt, g, { x: px, w: pw, y: py });
  const workFloats = rt.call('conv2d_forward_work_len', struct);
  const threads = Math.max(1, Math.min(rt.threads, pixels));
  const perThread: Job[][] = [];
  for (let t = 0; t < threads; t++) {
    const begin = Math.round((pixels * t) / threads);
    const end = Math.round((pixels * (t + 1)) / threads);
    perThread.push([{ fn: 'conv2d_forward', args: [struct, begin, end, rt.alloc(workFloats)], label: `convolution, pixels ${begin}-${end}` }]);
  }
  rt.run(perThread);
  if (!out) return rt.read(py, pixels * g.outChannels);
  // Straight into the caller's buffer (the tfjs heap): no intermediate copy of a tensor that can be
  // tens of MB.
  out.set(rt.f32().subarray(py >> 2, (py >> 2) + pixels * g.outChannels));
  return out;
}
