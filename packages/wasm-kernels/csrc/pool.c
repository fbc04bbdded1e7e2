// Gradient of 2×2 max pooling at stride 2 without padding (every pool of cnn-ref), for
// src/kernels/MaxPoolGrad.ts. The windows tile the input, so each input value is written once: the
// window's gradient where the window's first maximum is (in window order, the rule of tfjs's cpu
// backend and of wasm's own kernel), 0 elsewhere. Four channels at a time.
#include "kernels.h"

typedef struct {
  int batch, in_h, in_w, channels, out_h, out_w;  // in_h = 2·out_h, in_w = 2·out_w
  const float *x;   // [N, H, W, C], the pooling's input
  const float *dy;  // [N, Ho, Wo, C]
  float *dx;        // [N, H, W, C]
} pool_args;

// Output pixels [p_begin, p_end) (p = (n, yo, xo), row-major): their windows of dx.
void EXPORT(max_pool_grad_2x2)(const pool_args *a, int p_begin, int p_end) {
  const int C = a->channels, per_image = a->out_h * a->out_w;
  const size_t row = (size_t)a->in_w * C;
  for (int p = p_begin; p < p_end; p++) {
    const int n = p / per_image, yo = (p % per_image) / a->out_w, xo = p % a->out_w;
    const size_t at = ((size_t)(n * a->in_h + 2 * yo) * a->in_w + 2 * xo) * C;
    const float *x00 = a->x + at, *x01 = x00 + C, *x10 = x00 + row, *x11 = x10 + C;
    float *d00 = a->dx + at, *d01 = d00 + C, *d10 = d00 + row, *d11 = d10 + C;
    const float *g = a->dy + (size_t)p * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      const v128_t v00 = wasm_v128_load(x00 + c), v01 = wasm_v128_load(x01 + c);
      const v128_t v10 = wasm_v128_load(x10 + c), v11 = wasm_v128_load(x11 + c);
      // A later value wins only if strictly greater than the best so far (NaN never wins).
      const v128_t over01 = wasm_f32x4_gt(v01, v00);
      v128_t best = wasm_v128_bitselect(v01, v00, over01);
      const v128_t over10 = wasm_f32x4_gt(v10, best);
      best = wasm_v128_bitselect(v10, best, over10);
      const v128_t over11 = wasm_f32x4_gt(v11, best);
      const v128_t grad = wasm_v128_load(g + c);
      const v128_t win10 = wasm_v128_andnot(over10, over11);
      const v128_t win01 = wasm_v128_andnot(wasm_v128_andnot(over01, over10), over11);
      const v128_t win00 = wasm_v128_not(wasm_v128_or(over01, wasm_v128_or(over10, over11)));
      wasm_v128_store(d00 + c, wasm_v128_and(grad, win00));
      wasm_v128_store(d01 + c, wasm_v128_and(grad, win01));
      wasm_v128_store(d10 + c, wasm_v128_and(grad, win10));
      wasm_v128_store(d11 + c, wasm_v128_and(grad, over11));
    }
    for (; c < C; c++) {
      float best = x00[c];
      int win = 0;
      if (x01[c] > best) best = x01[c], win = 1;
      if (x10[c] > best) best = x10[c], win = 2;
      if (x11[c] > best) win = 3;
      d00[c] = win == 0 ? g[c] : 0.0f;
      d01[c] = win == 1 ? g[c] : 0.0f;
      d10[c] = win == 2 ? g[c] : 0.0f;
      d11[c] = win == 3 ? g[c] : 0.0f;
    }
  }
}
