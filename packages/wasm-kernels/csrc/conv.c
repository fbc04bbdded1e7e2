// Filter gradient of a 2-D convolution (NHWC input, HWIO filter), as one GEMM over output pixels
// without materialising im2col:
//   dWᵀ[o, (i, j, c)] = Σ_p dy[p, o] · x[n, y·sh + i·dh − pt, x·sw + j·dw − pl, c]
// for output pixels p = (n, y, x). A = dyᵀ (Co × pixels) and B = the im2col of x (pixels ×
// fh·fw·Ci) are packed block by block, 256 pixels at a time; B's column panels are contiguous runs
// of channels read straight from x. Threads split the pixels (in fixed chunks, each summed into its
// own partial dWᵀ), so none packs what another packs; the caller adds the partials.
#include "kernels.h"

typedef struct {
  int batch, in_h, in_w, in_c;
  int out_h, out_w, out_c;
  int filter_h, filter_w;
  int stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
  const float *x;   // [N, H, W, Ci]
  const float *dy;  // [N, Ho, Wo, Co]: the filter gradient's input (0 for the forward pass)
  const float *w;   // [fh, fw, Ci, Co]: the forward pass's filter (0 for the filter gradient)
  float *y;         // [N, Ho, Wo, Co]: the forward pass's output
} conv_args;

static int im2col_cols(const conv_args *a) { return a->filter_h * a->filter_w * a->in_c; }

int EXPORT(conv2d_filter_grad_work_len)(const conv_args *a) {
  return a->out_c * GEMM_KC + packed_b_floats(GEMM_KC, im2col_cols(a)) + 3 * GEMM_KC + 64;
}

// Where pixels p0 … p0 + kc − 1 read x: the top-left input row and column of their window
// (before the tap's offset) and the offset of that corner in x. Computed once per block, so the
// packing below does no divisions.
static void pixel_table(const conv_args *a, int p0, int kc, int *iy, int *ix, int *base) {
  const int hw_out = a->out_h * a->out_w;
  int n = p0 / hw_out, rem = p0 % hw_out, y = rem / a->out_w, xo = rem % a->out_w;
  for (int k = 0; k < kc; k++) {
    iy[k] = y * a->stride_h - a->pad_top;
    ix[k] = xo * a->stride_w - a->pad_left;
    base[k] = ((n * a->in_h + iy[k]) * a->in_w + ix[k]) * a->in_c;
    if (++xo == a->out_w) {
      xo = 0;
      if (++y == a->out_h) y = 0, n++;
    }
  }
}

// Packs the block's kc pixels × all im2col columns into NR-wide panels.
static void pack_im2col(const conv_args *a, int kc, const int *iy, const int *ix, const int *base, float *out) {
  const int C = a->in_c, H = a->in_h, W = a->in_w, cols = im2col_cols(a);
  for (int j0 = 0; j0 < cols; j0 += GEMM_NR) {
    const int nr = imin(GEMM_NR, cols - j0);
    const int tap = j0 / C, c0 = j0 % C;
    if (nr == GEMM_NR && c0 + GEMM_NR <= C) {
      // Common case: the panel's 8 columns are 8 consecutive channels of one tap.
      const int ti = (tap / a->filter_w) * a->dilation_h, tj = (tap % a->filter_w) * a->dilation_w;
      const int offset = (ti * W + tj) * C + c0;
      for (int k = 0; k < kc; k++, out += GEMM_NR) {
        if ((unsigned)(iy[k] + ti) < (unsigned)H && (unsigned)(ix[k] + tj) < (unsigned)W) {
          const float *src = a->x + base[k] + offset;
          wasm_v128_store(out, wasm_v128_load(src));
          wasm_v128_store(out + 4, wasm_v128_load(src + 4));
        } else {
          wasm_v128_store(out, wasm_f32x4_splat(0.0f));
          wasm_v128_store(out + 4, wasm_f32x4_splat(0.0f));
        }
      }
      continue;
    }
    for (int jj = 0; jj < GEMM_NR; jj++) {
      const int col = j0 + jj;
      const int t = col / C, c = col % C;
      const int ti = (t / a->filter_w) * a->dilation_h, tj = (t % a->filter_w) * a->dilation_w;
      const int offset = (ti * W + tj) * C + c;
      for (int k = 0; k < kc; k++) {
        const int inside = jj < nr && (unsigned)(iy[k] + ti) < (unsigned)H && (unsigned)(ix[k] + tj) < (unsigned)W;
        out[k * GEMM_NR + jj] = inside ? a->x[base[k] + offset] : 0.0f;
      }
    }
    out += (size_t)kc * GEMM_NR;
  }
}

// The filter gradient (transposed, dwt[Co × cols]) summed over output pixels [p_begin, p_end).
static void filter_grad_range(const conv_args *a, int p_begin, int p_end, float *dwt, float *work) {
  const int Co = a->out_c, cols = im2col_cols(a);
  float *ap = work;
  float *bp = ap + Co * GEMM_KC;
  int *iy = (int *)(bp + packed_b_floats(GEMM_KC, cols));
  int *ix = iy + GEMM_KC, *base = ix + GEMM_KC;
  if (p_end <= p_begin) {
    zero_floats(dwt, Co * cols);
    return;
  }
  for (int p0 = p_begin; p0 < p_end; p0 += GEMM_KC) {
    const int kc = imin(GEMM_KC, p_end - p0);
    // A = dyᵀ block: row o holds dy[p0 .. p0 + kc, o].
    const float *src = a->dy + (size_t)p0 * Co;
    for (int k = 0; k < kc; k++, src += Co)
      for (int o = 0; o < Co; o++) ap[(size_t)o * kc + k] = src[o];
    pixel_table(a, p0, kc, iy, ix, base);
    pack_im2col(a, kc, iy, ix, base, bp);
    mm_packed(Co, cols, kc, ap, kc, bp, dwt, cols, p0 > p_begin, 0);
  }
}

// The output pixels are cut into `chunks` fixed chunks (chunk i: pixels [i·P/chunks,
// (i+1)·P/chunks)), each summed into its own partial, partials + i·Co·cols; this thread takes
// chunks from `queue` until none is left. The caller adds the partials in chunk order, so the
// result does not depend on which thread summed which chunk.
void EXPORT(conv2d_filter_grad)(const conv_args *a, int *queue, int thread, int chunks, float *partials, float *work) {
  const int64_t pixels = (int64_t)a->batch * a->out_h * a->out_w;
  const size_t partial_floats = (size_t)a->out_c * im2col_cols(a);
  for (int i; (i = take_unit(queue, thread, chunks)) < chunks;) {
    filter_grad_range(a, (int)(pixels * i / chunks), (int)(pixels * (i + 1) / chunks), partials + i * partial_floats, work);
  }
}

// ---- Forward pass ------------------------------------------------------------------------------
// y[p, o] = Σ_(i, j, c) x[window of p shifted by tap (i, j), c] · w[i, j, c, o]: a GEMM of the
// im2col of x (pixels × fh·fw·Ci) with the filter as a [fh·fw·Ci, Co] matrix. Blocks of
// CONV_FWD_MC pixels get their im2col rows packed (runs of Ci channels copied from x), then
// multiplied by the filter packed once per call. Threads split the pixels: each output row is
// computed the same way whichever thread computes it.
#define CONV_FWD_MC 48
#define CONV_FWD_KC 512

int EXPORT(conv2d_forward_work_len)(const conv_args *a) {
  const int K = im2col_cols(a);
  return packed_b_floats(K, a->out_c) + CONV_FWD_MC * K + 3 * CONV_FWD_MC + 64;
}

// Rows of the im2col of x for pixels p0 … p0 + mc − 1, row-major [mc × fh·fw·Ci].
static void pack_im2col_rows(const conv_args *a, int mc, const int *iy, const int *ix, const int *base, float *out) {
  const int C = a->in_c, H = a->in_h, W = a->in_w, K = im2col_cols(a);
  for (int k = 0; k < mc; k++) {
    float *row = out + (size_t)k * K;
    for (int ti = 0; ti < a->filter_h; ti++) {
      const int dy = ti * a->dilation_h;
      for (int tj = 0; tj < a->filter_w; tj++, row += C) {
        const int dx = tj * a->dilation_w;
        const int inside = (unsigned)(iy[k] + dy) < (unsigned)H && (unsigned)(ix[k] + dx) < (unsigned)W;
        if (inside) copy_floats(row, a->x + base[k] + (dy * W + dx) * C, C);
        else zero_floats(row, C);
      }
    }
  }
}

// Output pixels [p_begin, p_end) of y.
void EXPORT(conv2d_forward)(const conv_args *a, int p_begin, int p_end, float *work) {
  const int K = im2col_cols(a), Co = a->out_c, panel_cols = round_up(Co, GEMM_NR);
  float *bp = work;
  float *ap = bp + packed_b_floats(K, Co);
  int *iy = (int *)(ap + CONV_FWD_MC * K);
  int *ix = iy + CONV_FWD_MC, *base = ix + CONV_FWD_MC;
  if (p_end <= p_begin) return;
  // The filter, packed in depth blocks of equal size up to CONV_FWD_KC rows (block k0 starts at
  // bp + k0 · panel_cols): 3×3×32 = 288 is one block, not 256 + a short 32 whose tiles would spend
  // as long loading and storing C as multiplying.
  const int kb = (K + CONV_FWD_KC - 1) / CONV_FWD_KC;
  const int kc_max = (K + kb - 1) / kb;
  for (int k0 = 0; k0 < K; k0 += kc_max) pack_b(imin(kc_max, K - k0), Co, a->w + (size_t)k0 * Co, Co, 1, bp + (size_t)k0 * panel_cols);
  for (int p0 = p_begin; p0 < p_end; p0 += CONV_FWD_MC) {
    const int mc = imin(CONV_FWD_MC, p_end - p0);
    pixel_table(a, p0, mc, iy, ix, base);
    pack_im2col_rows(a, mc, iy, ix, base, ap);
    float *y = a->y + (size_t)p0 * Co;
    for (int k0 = 0; k0 < K; k0 += kc_max) {
      mm_packed(mc, Co, imin(kc_max, K - k0), ap + k0, K, bp + (size_t)k0 * panel_cols, y, Co, k0 > 0, 0);
    }
  }
}
