// Filter gradient of a 2-D convolution (NHWC input, HWIO filter), as one GEMM over all output
// pixels without materialising im2col:
//   dWᵀ[o, (i, j, c)] = Σ_p dy[p, o] · x[n, y·sh + i·dh − pt, x·sw + j·dw − pl, c]
// for output pixels p = (n, y, x). A = dyᵀ (Co × pixels) and B = the im2col of x (pixels ×
// fh·fw·Ci) are packed block by block, 256 pixels at a time; B's column panels are contiguous runs
// of channels read straight from x. Threads split the columns (filter taps × channels).
#include "kernels.h"

typedef struct {
  int batch, in_h, in_w, in_c;
  int out_h, out_w, out_c;
  int filter_h, filter_w;
  int stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
  const float *x;   // [N, H, W, Ci]
  const float *dy;  // [N, Ho, Wo, Co]
  float *dwt;       // [Co, fh·fw·Ci]: the filter gradient, transposed
} conv_args;

int EXPORT(conv2d_filter_grad_work_len)(const conv_args *a, int col_begin, int col_end) {
  return a->out_c * GEMM_KC + packed_b_floats(GEMM_KC, col_end - col_begin) + 64;
}

// Packs pixels [p0, p0 + kc) × columns [col_begin, col_end) of the im2col of x into NR-wide panels.
static void pack_im2col(const conv_args *a, int p0, int kc, int col_begin, int col_end, float *out) {
  const int C = a->in_c, hw_out = a->out_h * a->out_w;
  for (int j0 = col_begin; j0 < col_end; j0 += GEMM_NR) {
    const int nr = imin(GEMM_NR, col_end - j0);
    const int tap = j0 / C, c0 = j0 % C;
    // Common case: the panel's 8 columns are 8 consecutive channels of one tap.
    const int one_tap = nr == GEMM_NR && c0 + GEMM_NR <= C;
    const int ti = tap / a->filter_w, tj = tap % a->filter_w;
    for (int k = 0; k < kc; k++, out += GEMM_NR) {
      const int p = p0 + k;
      const int n = p / hw_out, rem = p % hw_out, y = rem / a->out_w, xo = rem % a->out_w;
      if (one_tap) {
        const int yy = y * a->stride_h + ti * a->dilation_h - a->pad_top;
        const int xx = xo * a->stride_w + tj * a->dilation_w - a->pad_left;
        if (yy >= 0 && yy < a->in_h && xx >= 0 && xx < a->in_w) {
          const float *src = a->x + (((size_t)n * a->in_h + yy) * a->in_w + xx) * C + c0;
          wasm_v128_store(out, wasm_v128_load(src));
          wasm_v128_store(out + 4, wasm_v128_load(src + 4));
        } else {
          wasm_v128_store(out, wasm_f32x4_splat(0.0f));
          wasm_v128_store(out + 4, wasm_f32x4_splat(0.0f));
        }
        continue;
      }
      for (int jj = 0; jj < GEMM_NR; jj++) {
        const int col = j0 + jj;
        float v = 0.0f;
        if (jj < nr) {
          const int t = col / C, c = col % C;
          const int yy = y * a->stride_h + (t / a->filter_w) * a->dilation_h - a->pad_top;
          const int xx = xo * a->stride_w + (t % a->filter_w) * a->dilation_w - a->pad_left;
          if (yy >= 0 && yy < a->in_h && xx >= 0 && xx < a->in_w) v = a->x[(((size_t)n * a->in_h + yy) * a->in_w + xx) * C + c];
        }
        out[jj] = v;
      }
    }
  }
}

// Computes columns [col_begin, col_end) of dWᵀ; col_begin must be a multiple of 8 (panel width).
void EXPORT(conv2d_filter_grad)(const conv_args *a, int col_begin, int col_end, float *work) {
  const int Co = a->out_c, cols = a->filter_h * a->filter_w * a->in_c;
  const int pixels = a->batch * a->out_h * a->out_w;
  if (col_end <= col_begin) return;
  float *ap = work;
  float *bp = work + Co * GEMM_KC;
  for (int p0 = 0; p0 < pixels; p0 += GEMM_KC) {
    const int kc = imin(GEMM_KC, pixels - p0);
    // A = dyᵀ block: row o holds dy[p0 .. p0 + kc, o].
    const float *src = a->dy + (size_t)p0 * Co;
    for (int k = 0; k < kc; k++, src += Co)
      for (int o = 0; o < Co; o++) ap[(size_t)o * kc + k] = src[o];
    pack_im2col(a, p0, kc, col_begin, col_end, bp);
    mm_packed(Co, col_end - col_begin, kc, ap, kc, bp, a->dwt + col_begin, cols, p0 > 0, 0);
  }
  if (pixels == 0) {
    for (int o = 0; o < Co; o++)
      for (int col = col_begin; col < col_end; col++) a->dwt[(size_t)o * cols + col] = 0.0f;
  }
}
