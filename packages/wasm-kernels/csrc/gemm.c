// Single-precision matrix multiply on 128-bit SIMD: packed B panels, A read in place (or packed
// when its rows are strided), a 4 × 8 register tile (8 accumulators of 4 lanes).
#include "kernels.h"

void pack_b(int kc, int n, const float *b, int b_rs, int b_cs, float *out) {
  for (int j0 = 0; j0 < n; j0 += GEMM_NR) {
    const int nr = imin(GEMM_NR, n - j0);
    const float *src = b + (size_t)j0 * b_cs;
    if (nr == GEMM_NR && b_cs == 1) {
      for (int k = 0; k < kc; k++, out += GEMM_NR) {
        const float *row = src + (size_t)k * b_rs;
        wasm_v128_store(out, wasm_v128_load(row));
        wasm_v128_store(out + 4, wasm_v128_load(row + 4));
      }
    } else if (b_rs == 1 && nr == GEMM_NR) {
      // Transposed B (the input gradients' Wᵀ): column j of the panel is a contiguous run of kc floats.
      transpose_block(GEMM_NR, kc, src, b_cs, out, GEMM_NR);
      out += (size_t)kc * GEMM_NR;
    } else if (b_rs == 1) {
      // Transposed B, last partial panel: column j of the panel is a contiguous run of kc floats.
      for (int j = 0; j < GEMM_NR; j++) {
        if (j < nr) {
          const float *col = src + (size_t)j * b_cs;
          for (int k = 0; k < kc; k++) out[k * GEMM_NR + j] = col[k];
        } else {
          for (int k = 0; k < kc; k++) out[k * GEMM_NR + j] = 0.0f;
        }
      }
      out += (size_t)kc * GEMM_NR;
    } else {
      for (int k = 0; k < kc; k++, out += GEMM_NR) {
        for (int j = 0; j < GEMM_NR; j++) out[j] = j < nr ? src[(size_t)k * b_rs + (size_t)j * b_cs] : 0.0f;
      }
    }
  }
}

// c[4×8] = init + Σ_k a_r[k] · b[k][0..8]; init = c (accumulate), bias (broadcast over rows) or 0.
static inline void tile_4x8(int kc, const float *a0, const float *a1, const float *a2, const float *a3,
                            const float *b, float *c, int ldc, int accumulate, const float *bias) {
  v128_t c00, c01, c10, c11, c20, c21, c30, c31;
  if (accumulate) {
    c00 = wasm_v128_load(c); c01 = wasm_v128_load(c + 4);
    c10 = wasm_v128_load(c + ldc); c11 = wasm_v128_load(c + ldc + 4);
    c20 = wasm_v128_load(c + 2 * ldc); c21 = wasm_v128_load(c + 2 * ldc + 4);
    c30 = wasm_v128_load(c + 3 * ldc); c31 = wasm_v128_load(c + 3 * ldc + 4);
  } else if (bias) {
    c00 = c10 = c20 = c30 = wasm_v128_load(bias);
    c01 = c11 = c21 = c31 = wasm_v128_load(bias + 4);
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = wasm_f32x4_splat(0.0f);
  }
  for (int k = 0; k < kc; k++, b += GEMM_NR) {
    const v128_t b0 = wasm_v128_load(b);
    const v128_t b1 = wasm_v128_load(b + 4);
    v128_t x = wasm_v128_load32_splat(a0 + k);
    c00 = V_MADD(c00, x, b0);
    c01 = V_MADD(c01, x, b1);
    x = wasm_v128_load32_splat(a1 + k);
    c10 = V_MADD(c10, x, b0);
    c11 = V_MADD(c11, x, b1);
    x = wasm_v128_load32_splat(a2 + k);
    c20 = V_MADD(c20, x, b0);
    c21 = V_MADD(c21, x, b1);
    x = wasm_v128_load32_splat(a3 + k);
    c30 = V_MADD(c30, x, b0);
    c31 = V_MADD(c31, x, b1);
  }
  wasm_v128_store(c, c00); wasm_v128_store(c + 4, c01);
  wasm_v128_store(c + ldc, c10); wasm_v128_store(c + ldc + 4, c11);
  wasm_v128_store(c + 2 * ldc, c20); wasm_v128_store(c + 2 * ldc + 4, c21);
  wasm_v128_store(c + 3 * ldc, c30); wasm_v128_store(c + 3 * ldc + 4, c31);
}

// A partial tile (fewer than MR rows or NR columns): computed in full into a local tile (missing
// rows repeat the last row; packed B is zero-padded) and only the valid part written back.
static void tile_edge(int kc, int mr, int nr, const float *a, int lda, const float *b, float *c, int ldc,
                      int accumulate, const float *bias) {
  float tile[GEMM_MR * GEMM_NR];
  float bias_pad[GEMM_NR];
  const float *rows[GEMM_MR];
  for (int i = 0; i < GEMM_MR; i++) rows[i] = a + (size_t)imin(i, mr - 1) * lda;
  if (accumulate) {
    for (int i = 0; i < GEMM_MR; i++)
      for (int j = 0; j < GEMM_NR; j++) tile[i * GEMM_NR + j] = (i < mr && j < nr) ? c[(size_t)i * ldc + j] : 0.0f;
  }
  if (bias) {
    for (int j = 0; j < GEMM_NR; j++) bias_pad[j] = j < nr ? bias[j] : 0.0f;
  }
  tile_4x8(kc, rows[0], rows[1], rows[2], rows[3], b, tile, GEMM_NR, accumulate, bias ? bias_pad : 0);
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++) c[(size_t)i * ldc + j] = tile[i * GEMM_NR + j];
}

void mm_packed(int m, int n, int kc, const float *a, int lda, const float *bp, float *c, int ldc,
               int accumulate, const float *bias) {
  for (int i0 = 0; i0 < m; i0 += GEMM_MC) {
    const int mc = imin(GEMM_MC, m - i0);
    for (int j0 = 0; j0 < n; j0 += GEMM_NR) {
      const int nr = imin(GEMM_NR, n - j0);
      const float *panel = bp + (size_t)(j0 / GEMM_NR) * kc * GEMM_NR;
      const float *bj = bias ? bias + j0 : 0;
      for (int i = i0; i < i0 + mc; i += GEMM_MR) {
        const int mr = imin(GEMM_MR, i0 + mc - i);
        const float *ai = a + (size_t)i * lda;
        float *ci = c + (size_t)i * ldc + j0;
        if (mr == GEMM_MR && nr == GEMM_NR) {
          tile_4x8(kc, ai, ai + lda, ai + 2 * lda, ai + 3 * lda, panel, ci, ldc, accumulate, bj);
        } else {
          tile_edge(kc, mr, nr, ai, lda, panel, ci, ldc, accumulate, bj);
        }
      }
    }
  }
}

// Copies an mc × kc block of A (element (i, k) at a[i*a_rs + k*a_cs]) to row-major out[mc][kc].
static void pack_a(int mc, int kc, const float *a, int a_rs, int a_cs, float *out) {
  if (a_rs == 1) {
    // Transposed A (the weight gradients' xᵀ): row k of the block is a contiguous run of mc floats.
    transpose_block(kc, mc, a, a_cs, out, kc);
  } else {
    for (int i = 0; i < mc; i++) {
      const float *src = a + (size_t)i * a_rs;
      for (int k = 0; k < kc; k++) out[(size_t)i * kc + k] = src[(size_t)k * a_cs];
    }
  }
}

void gemm(int m, int n, int k, const float *a, int a_rs, int a_cs, const float *b, int b_rs, int b_cs,
          float *c, int ldc, int accumulate, const float *bias, float *work) {
  float *bp = work;
  float *ap = work + packed_b_floats(GEMM_KC, n);
  if (k == 0) {
    if (!accumulate) {
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = bias ? bias[j] : 0.0f;
    }
    return;
  }
  for (int p0 = 0; p0 < k; p0 += GEMM_KC) {
    const int kc = imin(GEMM_KC, k - p0);
    const int acc = accumulate || p0 > 0;
    const float *bias_p = p0 == 0 ? bias : 0;
    pack_b(kc, n, b + (size_t)p0 * b_rs, b_rs, b_cs, bp);
    if (a_cs == 1) {
      mm_packed(m, n, kc, a + p0, a_rs, bp, c, ldc, acc, bias_p);
    } else {
      for (int i0 = 0; i0 < m; i0 += GEMM_MC) {
        const int mc = imin(GEMM_MC, m - i0);
        pack_a(mc, kc, a + (size_t)i0 * a_rs + (size_t)p0 * a_cs, a_rs, a_cs, ap);
        mm_packed(mc, n, kc, ap, kc, bp, c + (size_t)i0 * ldc, ldc, acc, bias_p);
      }
    }
  }
}

// Test and benchmark entry point: the general GEMM as the kernels use it.
void EXPORT(gemm_f32)(int m, int n, int k, const float *a, int a_rs, int a_cs, const float *b, int b_rs,
                      int b_cs, float *c, int ldc, int accumulate, const float *bias, float *work) {
  gemm(m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, bias, work);
}

// Scratch floats gemm() needs for n columns, for callers outside C.
int EXPORT(gemm_work_len)(int n) { return gemm_work_floats(n); }
