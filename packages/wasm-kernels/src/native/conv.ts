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

/** winograd_args of csrc/winograd.c: the geometry of a 3×3, stride-1 convolution, then x, u, y, dy. */
function winogradStruct(rt: NativeRuntime, g: ConvGeometry, pointers: { x: number; u?: number; y?: number; dy?: number }): number {
  return rt.struct([
    g.batch, g.inHeight, g.inWidth, g.inChannels, g.outHeight, g.outWidth, g.outChannels, g.padTop, g.padLeft,
    pointers.x, pointers.u ?? 0, pointers.y ?? 0, pointers.dy ?? 0,
  ]);
}

/**
 * The filter gradient's sum over output pixels (or Winograd tiles) is cut into this many fixed
 * chunks, each summed into its own partial and the partials then added in chunk order: any thread
 * count gives bit-identical results, and no thread packs what another packs. Threads take chunks
 * from a shared queue as they go. (16 chunks evened the threads out better but cost more than they
 * saved on the 16 × 16 layers, whose 16·Ci·Co-float partials then outgrow the L2 cache.)
 */
export const FILTER_GRAD_CHUNKS = 8;

export function conv2dFilterGradNative(x: ArrayLike<number>, dy: ArrayLike<number>, g: ConvGeometry): Float32Array | null {
  const rt = nativeRuntime();
  if (!rt) return null;
  const cols = g.filterHeight * g.filterWidth * g.inChannels;
  const co = g.outChannels;
  rt.reset();
  const px = rt.put(x);
  const pdy = rt.put(dy);
  const winograd = usesWinograd(g);
  const struct = winograd ? winogradStruct(rt, g, { x: px, dy: pdy }) : convStruct(rt, g, { x: px, dy: pdy });
  const fn = winograd ? 'winograd_filter_grad' : 'conv2d_filter_grad';
  const workFloats = rt.call(`${fn}_work_len`, struct);
  const partialFloats = winograd ? 16 * g.inChannels * co : cols * co;
  const partials = rt.alloc(FILTER_GRAD_CHUNKS * partialFloats);
  rt.run(rt.jobsByQueue((queue, t) => ({ fn, args: [struct, queue, t, FILTER_GRAD_CHUNKS, partials, rt.alloc(workFloats)], label: `filter gradient, thread ${t}'s chunks of ${FILTER_GRAD_CHUNKS}` })));
  if (winograd) {
    const pdw = rt.alloc(cols * co);
    rt.call('winograd_filter_grad_finish', partials, FILTER_GRAD_CHUNKS, g.inChannels, co, pdw);
    return rt.read(pdw, cols * co);
  }
  const heap = rt.f32();
  const dw = new Float32Array(cols * co);
  for (let i = 0; i < FILTER_GRAD_CHUNKS; i++) {
    const base = (partials >> 2) + i * partialFloats;
    for (let o = 0; o < co; o++) {
      const row = base + o * cols;
      for (let c = 0; c < cols; c++) dw[c * co + o] += heap[row + c]!;
    }
  }
  return dw;
}

/**
 * Whether a convolution runs by Winograd's F(2×2, 3×3) (`csrc/winograd.c`): 3×3 filters at stride 1
 * without dilation, channel counts multiples of the SIMD width. 2.25× fewer multiply-adds than the
 * im2col GEMM; outputs differ from it by rounding only (≈ 1e-6 relative). Depends on the filter
 * and its attributes alone, so an image's output never depends on its batch.
 */
export function usesWinograd(g: ConvGeometry): boolean {
  return (
    g.filterHeight === 3 && g.filterWidth === 3 && g.strideHeight === 1 && g.strideWidth === 1 &&
    g.dilationHeight === 1 && g.dilationWidth === 1 && g.inChannels % 4 === 0 && g.outChannels % 4 === 0
  );
}

/**
 * Forward 2-D convolution on the native module: Winograd's F(2×2, 3×3) where it applies
 * (usesWinograd; threads take blocks of 2×2 output tiles from a queue), else one GEMM of the im2col of x (packed block
 * by block) with the filter as a [fh·fw·Ci, Co] matrix (`csrc/conv.c`; threads split the output
 * pixels). Either way each output is computed the same way on any thread count. x [N, H, W, Ci] and
 * w [fh, fw, Ci, Co] are copied in; returns y [N, Ho, Wo, Co], written into `out` when given. Null
 * when the native module is unavailable.
 */
export function conv2dForwardNative(x: ArrayLike<number>, w: ArrayLike<number>, g: ConvGeometry, out?: Float32Array): Float32Array | null {
  const rt = nativeRuntime();
  if (!rt) return null;
  const outFloats = g.batch * g.outHeight * g.outWidth * g.outChannels;
  rt.reset();
  const px = rt.put(x);
  const py = rt.place(out, outFloats);
  let perThread: Job[][];
  if (usesWinograd(g)) {
    const pu = rt.alloc(rt.call('winograd_filter_floats', g.inChannels, g.outChannels));
    rt.call('winograd_filter_transform', rt.put(w), g.inChannels, g.outChannels, pu);
    const struct = winogradStruct(rt, g, { x: px, u: pu, y: py });
    const workFloats = rt.call('winograd_work_len', struct);
    perThread = rt.jobsByQueue((queue, t) => ({ fn: 'winograd_forward', args: [struct, queue, t, rt.alloc(workFloats)], label: `Winograd convolution, thread ${t}'s blocks of tiles` }));
  } else {
    const struct = convStruct(rt, g, { x: px, w: rt.put(w), y: py });
    const workFloats = rt.call('conv2d_forward_work_len', struct);
    perThread = rt.jobsByRange(g.batch * g.outHeight * g.outWidth, (begin, end) => ({ fn: 'conv2d_forward', args: [struct, begin, end, rt.alloc(workFloats)], label: `convolution, pixels ${begin}-${end}` }));
  }
  rt.run(perThread);
  // Straight into the caller's buffer (the tfjs heap) when given: no intermediate copy of a tensor
  // that can be tens of MB.
  return rt.read(py, outFloats, out);
}
