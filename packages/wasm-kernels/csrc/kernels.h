// Shared declarations of the project's own WebAssembly kernels (wasm32, 128-bit SIMD).
// Built by src/native/build.ts with clang --target=wasm32; no libc: everything used is here.
#ifndef FILMGENRE_KERNELS_H
#define FILMGENRE_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name))) name

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int round_up(int v, int m) { return (v + m - 1) / m * m; }

// c + a·b on four lanes. The relaxed build (FILMGENRE_RELAXED_SIMD) uses relaxed SIMD's madd, which
// the engine runs as one fused multiply-add where the CPU has one (x86 FMA3): ≈ 1.4× the GEMM tile's
// throughput here (tools/bench/microkernel). It may round once (fused) or twice, per machine.
#ifdef FILMGENRE_RELAXED_SIMD
#define V_MADD(c, a, b) ((v128_t)__builtin_wasm_relaxed_madd_f32x4((__f32x4)(a), (__f32x4)(b), (__f32x4)(c)))
#else
#define V_MADD(c, a, b) wasm_f32x4_add((c), wasm_f32x4_mul((a), (b)))
#endif

// ---- GEMM (gemm.c) ------------------------------------------------------------------------------
// Register tile of the micro-kernel: MR rows of A times NR columns of B.
#define GEMM_MR 4
#define GEMM_NR 8
// Cache blocking: KC rows of B (one packed panel is KC × NR floats = 8 KiB, L1), MC rows of A (L2).
#define GEMM_KC 256
#define GEMM_MC 96

// Packs a kc × n block of B (element (k, j) at b[k*b_rs + j*b_cs]) into column panels of NR:
// panel p holds kc rows of NR floats, zero-padded past n. Needs packed_b_floats(kc, n) floats.
void pack_b(int kc, int n, const float *b, int b_rs, int b_cs, float *out);
static inline int packed_b_floats(int kc, int n) { return kc * round_up(n, GEMM_NR); }

// C[m×n] = (accumulate ? C : bias broadcast or 0) + A·B for A rows with unit stride (a + i*lda)
// and B packed by pack_b (kc rows).
void mm_packed(int m, int n, int kc, const float *a, int lda, const float *bp, float *c, int ldc,
               int accumulate, const float *bias);

// General C (+)= A·B with strided A and B, blocked and packed. work: gemm_work_floats(n) floats.
void gemm(int m, int n, int k, const float *a, int a_rs, int a_cs, const float *b, int b_rs, int b_cs,
          float *c, int ldc, int accumulate, const float *bias, float *work);
static inline int gemm_work_floats(int n) { return packed_b_floats(GEMM_KC, n) + GEMM_MC * GEMM_KC; }

// ---- work taken at run time -------------------------------------------------------------------
// A run's threads take units of work (blocks of tiles, chunks of a sum) from one shared counter as
// they go, instead of fixed halves: a thread that the machine slows down (another process, the
// collector, tfjs's own threads) then does less, instead of keeping the others waiting (measured:
// 10 % of cnn-ref's convolution time on two threads was the calling thread waiting for the worker).
// queue[0] is the next unit to take; queue[1 + thread] counts the units that thread took. Returns
// the unit, ≥ units when none is left.
static inline int take_unit(int *queue, int thread, int units) {
  const int unit = __atomic_fetch_add(queue, 1, __ATOMIC_RELAXED);
  if (unit < units) queue[1 + thread]++;
  return unit;
}

// ---- copies -------------------------------------------------------------------------------------
static inline void copy_floats(float *dst, const float *src, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_v128_load(src + i));
  for (; i < n; i++) dst[i] = src[i];
}

// Stores the transpose of the 4 × 4 block whose rows are r0..r3 as four rows of four floats at
// dst, dst + ld, dst + 2·ld, dst + 3·ld (packing a transposed GEMM operand).
static inline void store_transposed_4x4(v128_t r0, v128_t r1, v128_t r2, v128_t r3, float *dst, size_t ld) {
  const v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
  const v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
  wasm_v128_store(dst, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
  wasm_v128_store(dst + ld, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
  wasm_v128_store(dst + 2 * ld, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
  wasm_v128_store(dst + 3 * ld, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
}

// dst[c·dst_ld + r] = src[r·src_ld + c] for r < rows, c < cols (packing a transposed GEMM operand):
// 4 × 4 blocks transposed in registers, the edges one float at a time.
static inline void transpose_block(int rows, int cols, const float *src, size_t src_ld, float *dst, size_t dst_ld) {
  const int rows4 = rows & ~3, cols4 = cols & ~3;
  for (int r = 0; r < rows4; r += 4) {
    const float *s0 = src + (size_t)r * src_ld, *s1 = s0 + src_ld, *s2 = s1 + src_ld, *s3 = s2 + src_ld;
    for (int c = 0; c < cols4; c += 4) {
      store_transposed_4x4(wasm_v128_load(s0 + c), wasm_v128_load(s1 + c), wasm_v128_load(s2 + c), wasm_v128_load(s3 + c),
                           dst + (size_t)c * dst_ld + r, dst_ld);
    }
    for (int c = cols4; c < cols; c++) {
      for (int rr = r; rr < r + 4; rr++) dst[(size_t)c * dst_ld + rr] = src[(size_t)rr * src_ld + c];
    }
  }
  for (int r = rows4; r < rows; r++) {
    for (int c = 0; c < cols; c++) dst[(size_t)c * dst_ld + r] = src[(size_t)r * src_ld + c];
  }
}

static inline void zero_floats(float *dst, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_f32x4_splat(0.0f));
  for (; i < n; i++) dst[i] = 0.0f;
}

// ---- element-wise maths -------------------------------------------------------------------------
// exp(x) by range reduction x = n·ln2 + r, |r| ≤ ln2/2, and a degree-7 Taylor polynomial in r
// (relative error ≈ 1e-7), scaled by 2^n built in the exponent bits. Inputs are clamped so that
// 2^n stays a normal float.
static inline v128_t v_exp(v128_t x) {
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, wasm_f32x4_splat(-87.0f)), wasm_f32x4_splat(88.0f));
  v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  // ln2 split in a part exact in float and the rest, so n·ln2_hi is exact.
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.0f / 5040.0f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 720.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(p, scale);
}

// 1 / (1 + e^-x)
static inline v128_t v_sigmoid(v128_t x) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  return wasm_f32x4_div(one, wasm_f32x4_add(one, v_exp(wasm_f32x4_neg(x))));
}

// tanh(x) = 1 − 2 / (1 + e^2x): absolute error ≈ 1e-7 (relative error grows near 0, which the
// LSTM does not care about: values are added to O(1) quantities).
static inline v128_t v_tanh(v128_t x) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  v128_t e = v_exp(wasm_f32x4_add(x, x));
  return wasm_f32x4_sub(one, wasm_f32x4_div(wasm_f32x4_splat(2.0f), wasm_f32x4_add(one, e)));
}

// Scalar versions for the tails (same maths, lane 0).
static inline float s_sigmoid(float x) { return wasm_f32x4_extract_lane(v_sigmoid(wasm_f32x4_splat(x)), 0); }
static inline float s_tanh(float x) { return wasm_f32x4_extract_lane(v_tanh(wasm_f32x4_splat(x)), 0); }

#endif
