// One direction of an LSTM layer over a whole batch of sequences, forward and backward through
// time, in one call. Maths and weight layout of Keras/tfjs `LSTM` (recurrentActivation sigmoid):
//   z = x·W + h·R + b, gates in the order i, f, c, o along the last axis of W, R and b;
//   i, f, o = sigmoid(z_i, z_f, z_o), g = tanh(z_c), c' = f·c + i·g, h' = o·tanh(c').
// A masked step (mask 0) keeps the previous state and repeats the previous output, as Keras does.
//
// Layouts (row-major, batch-major like the layer's tensors): x [B, T, D], W [D, 4U], R [U, 4U],
// b [4U], mask [B, T]. Outputs h go to h_seq + (b·T + t)·h_ld, so both directions of a
// bidirectional layer write their halves of one [B, T, 2U] tensor.
#include "kernels.h"

typedef struct {
  int batch, steps, in_dim, units;
  int reverse;            // 1: the direction that reads the sequence from its end
  const float *x;         // [B, T, D]
  const float *w;         // [D, 4U]
  const float *r;         // [U, 4U]
  const float *bias;      // [4U]
  const float *mask;      // [B, T] of 0/1, or 0 for none
  float *h_seq;           // outputs, row (b, t) at h_seq + (b·T + t)·h_ld
  int h_ld;
  float *gates;           // [B, T, 4U]: activated gates i, f, g, o (saved for the backward pass)
  float *cells;           // [B, T, U]: cell state after each step (saved)
  float *work;            // lstm_work_floats(...) floats, private to the calling thread
  // Backward pass only.
  const float *dy_seq;    // gradient of h_seq (same layout and h_ld), or 0
  const float *dy_last;   // gradient of the final output, [B] rows of stride dy_last_ld, or 0
  int dy_last_ld;
  float *dz;              // [B, T, 4U] gradient of the pre-activations (filled here)
  float *dw;              // [D, 4U]
  float *dr;              // [U, 4U]
  float *db;              // [4U]
} lstm_dir_args;

// Scratch floats one thread needs for one direction: two state rows, packed R and Rᵀ, then either
// the forward pass's packed W and per-step gates or the backward pass's GEMM work (same place).
int EXPORT(lstm_work_floats)(int batch, int in_dim, int units) {
  const int g = 4 * units;
  const int forward_only = packed_b_floats(in_dim, g) + batch * g;
  const int backward_only = gemm_work_floats(imax(g, in_dim));
  return 4 * batch * units + packed_b_floats(units, g) + packed_b_floats(g, units) + imax(forward_only, backward_only) + 64;
}

// Packs all of W ([D, 4U]) for mm_packed, k-block after k-block (GEMM_KC rows each).
static void pack_kernel(int in_dim, int g, const float *w, float *out) {
  for (int p0 = 0; p0 < in_dim; p0 += GEMM_KC) pack_b(imin(GEMM_KC, in_dim - p0), g, w + (size_t)p0 * g, g, 1, out + (size_t)p0 * round_up(g, GEMM_NR));
}

static inline int time_at(const lstm_dir_args *a, int s) { return a->reverse ? a->steps - 1 - s : s; }

// Gates and state update of one row (one sequence) at one step: z holds the pre-activations, gates
// receives the activated gates.
static inline void cell_row(int units, const float *z, float *gates, float *c_state, float *h_state, float *c_saved,
                            float *h_out) {
  int u = 0;
  for (; u + 4 <= units; u += 4) {
    const v128_t i = v_sigmoid(wasm_v128_load(z + u));
    const v128_t f = v_sigmoid(wasm_v128_load(z + units + u));
    const v128_t g = v_tanh(wasm_v128_load(z + 2 * units + u));
    const v128_t o = v_sigmoid(wasm_v128_load(z + 3 * units + u));
    const v128_t c = wasm_f32x4_add(wasm_f32x4_mul(f, wasm_v128_load(c_state + u)), wasm_f32x4_mul(i, g));
    const v128_t h = wasm_f32x4_mul(o, v_tanh(c));
    wasm_v128_store(gates + u, i);
    wasm_v128_store(gates + units + u, f);
    wasm_v128_store(gates + 2 * units + u, g);
    wasm_v128_store(gates + 3 * units + u, o);
    wasm_v128_store(c_state + u, c);
    wasm_v128_store(c_saved + u, c);
    wasm_v128_store(h_state + u, h);
    wasm_v128_store(h_out + u, h);
  }
  for (; u < units; u++) {
    const float i = s_sigmoid(z[u]);
    const float f = s_sigmoid(z[units + u]);
    const float g = s_tanh(z[2 * units + u]);
    const float o = s_sigmoid(z[3 * units + u]);
    const float c = f * c_state[u] + i * g;
    const float h = o * s_tanh(c);
    gates[u] = i; gates[units + u] = f; gates[2 * units + u] = g; gates[3 * units + u] = o;
    c_state[u] = c; c_saved[u] = c; h_state[u] = h; h_out[u] = h;
  }
}

void EXPORT(lstm_forward_dir)(const lstm_dir_args *a) {
  const int B = a->batch, T = a->steps, D = a->in_dim, U = a->units, G = 4 * a->units;
  float *h_state = a->work;
  float *c_state = h_state + B * U;
  float *r_packed = c_state + 3 * B * U;
  float *w_packed = r_packed + packed_b_floats(U, G) + packed_b_floats(G, U);
  float *z = w_packed + packed_b_floats(D, G);
  zero_floats(h_state, B * U);
  zero_floats(c_state, B * U);
  pack_kernel(D, G, a->w, w_packed);
  pack_b(U, G, a->r, G, 1, r_packed);
  for (int s = 0; s < T; s++) {
    const int t = time_at(a, s);
    // z = x_t·W + bias + h·R for this step only: z stays in cache from the products to the gates
    // (all steps' input projections at once went through memory, 6.5 MB per direction).
    for (int p0 = 0; p0 < D; p0 += GEMM_KC) {
      mm_packed(B, G, imin(GEMM_KC, D - p0), a->x + (size_t)t * D + p0, T * D, w_packed + (size_t)p0 * round_up(G, GEMM_NR),
                z, G, p0 > 0, p0 == 0 ? a->bias : 0);
    }
    if (s > 0) mm_packed(B, G, U, h_state, U, r_packed, z, G, 1, 0);
    for (int b = 0; b < B; b++) {
      const size_t row = (size_t)b * T + t;
      float *h_out = a->h_seq + row * a->h_ld;
      float *c_saved = a->cells + row * U;
      if (a->mask && a->mask[row] == 0.0f) {
        zero_floats(a->gates + row * G, G);  // not read by the backward pass; zero for a deterministic buffer
        copy_floats(c_saved, c_state + b * U, U);
        copy_floats(h_out, h_state + b * U, U);
        continue;
      }
      cell_row(U, z + (size_t)b * G, a->gates + row * G, c_state + b * U, h_state + b * U, c_saved, h_out);
    }
  }
}

// Backward through one step of one row: dh, dc hold the gradient w.r.t. the state after the step;
// on return dz holds the pre-activation gradient, dc the gradient w.r.t. the previous cell state
// and dh zero (the caller adds dz·Rᵀ).
static inline void cell_row_backward(int units, const float *gates, const float *c, const float *c_prev,
                                     float *dh, float *dc, float *dz) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  int u = 0;
  for (; u + 4 <= units; u += 4) {
    const v128_t i = wasm_v128_load(gates + u);
    const v128_t f = wasm_v128_load(gates + units + u);
    const v128_t g = wasm_v128_load(gates + 2 * units + u);
    const v128_t o = wasm_v128_load(gates + 3 * units + u);
    const v128_t tc = v_tanh(wasm_v128_load(c + u));
    const v128_t cp = c_prev ? wasm_v128_load(c_prev + u) : wasm_f32x4_splat(0.0f);
    const v128_t dhv = wasm_v128_load(dh + u);
    const v128_t dcr = wasm_f32x4_add(wasm_v128_load(dc + u),
                                      wasm_f32x4_mul(wasm_f32x4_mul(dhv, o), wasm_f32x4_sub(one, wasm_f32x4_mul(tc, tc))));
    wasm_v128_store(dz + u, wasm_f32x4_mul(wasm_f32x4_mul(dcr, g), wasm_f32x4_mul(i, wasm_f32x4_sub(one, i))));
    wasm_v128_store(dz + units + u, wasm_f32x4_mul(wasm_f32x4_mul(dcr, cp), wasm_f32x4_mul(f, wasm_f32x4_sub(one, f))));
    wasm_v128_store(dz + 2 * units + u, wasm_f32x4_mul(wasm_f32x4_mul(dcr, i), wasm_f32x4_sub(one, wasm_f32x4_mul(g, g))));
    wasm_v128_store(dz + 3 * units + u, wasm_f32x4_mul(wasm_f32x4_mul(dhv, tc), wasm_f32x4_mul(o, wasm_f32x4_sub(one, o))));
    wasm_v128_store(dc + u, wasm_f32x4_mul(dcr, f));
    wasm_v128_store(dh + u, wasm_f32x4_splat(0.0f));
  }
  for (; u < units; u++) {
    const float i = gates[u], f = gates[units + u], g = gates[2 * units + u], o = gates[3 * units + u];
    const float tc = s_tanh(c[u]);
    const float cp = c_prev ? c_prev[u] : 0.0f;
    const float dcr = dc[u] + dh[u] * o * (1.0f - tc * tc);
    dz[u] = dcr * g * i * (1.0f - i);
    dz[units + u] = dcr * cp * f * (1.0f - f);
    dz[2 * units + u] = dcr * i * (1.0f - g * g);
    dz[3 * units + u] = dh[u] * tc * o * (1.0f - o);
    dc[u] = dcr * f;
    dh[u] = 0.0f;
  }
}

static void add_floats(float *dst, const float *src, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_f32x4_add(wasm_v128_load(dst + i), wasm_v128_load(src + i)));
  for (; i < n; i++) dst[i] += src[i];
}

// The output (from unit u0 on) of the step processed before row (b·T + t)'s, or 0 for the first step.
static inline const float *previous_output(const lstm_dir_args *a, int row, int u0) {
  const int t = row % a->steps;
  const int first = a->reverse ? t == a->steps - 1 : t == 0;
  return first ? 0 : a->h_seq + (size_t)(row + (a->reverse ? 1 : -1)) * a->h_ld + u0;
}

// dR = Σ_{b,t} h_prev(b, t)ᵀ · dz(b, t), where h_prev(b, t) is the output of the step processed
// before t (zero for the first): packs that shifted, transposed operand block by block.
static void recurrent_weight_grad(const lstm_dir_args *a, float *work) {
  const int B = a->batch, T = a->steps, U = a->units, G = 4 * U;
  const int rows = B * T;
  float *bp = work;
  float *ap = work + packed_b_floats(GEMM_KC, G);
  for (int p0 = 0; p0 < rows; p0 += GEMM_KC) {
    const int kc = imin(GEMM_KC, rows - p0);
    pack_b(kc, G, a->dz + (size_t)p0 * G, G, 1, bp);
    for (int u0 = 0; u0 < U; u0 += GEMM_MC) {
      const int mc = imin(GEMM_MC, U - u0), mc4 = mc & ~3;
      int k = 0;
      // Four rows at a time, 4 × 4 blocks transposed in registers.
      for (; k + 4 <= kc; k += 4) {
        const float *src[4];
        for (int j = 0; j < 4; j++) src[j] = previous_output(a, p0 + k + j, u0);
        int i = 0;
        for (; i < mc4; i += 4) {
          v128_t r[4];
          for (int j = 0; j < 4; j++) r[j] = src[j] ? wasm_v128_load(src[j] + i) : wasm_f32x4_splat(0.0f);
          store_transposed_4x4(r[0], r[1], r[2], r[3], ap + (size_t)i * kc + k, kc);
        }
        for (; i < mc; i++) {
          for (int j = 0; j < 4; j++) ap[(size_t)i * kc + k + j] = src[j] ? src[j][i] : 0.0f;
        }
      }
      for (; k < kc; k++) {
        const float *src = previous_output(a, p0 + k, u0);
        for (int i = 0; i < mc; i++) ap[(size_t)i * kc + k] = src ? src[i] : 0.0f;
      }
      mm_packed(mc, G, kc, ap, kc, bp, a->dr + (size_t)u0 * G, G, p0 > 0, 0);
    }
  }
}

void EXPORT(lstm_backward_dir)(const lstm_dir_args *a) {
  const int B = a->batch, T = a->steps, D = a->in_dim, U = a->units, G = 4 * a->units;
  float *dh = a->work;
  float *dc = dh + B * U;
  float *rt_packed = dc + 3 * B * U + packed_b_floats(U, G);
  float *gemm_work = rt_packed + packed_b_floats(G, U);
  zero_floats(dh, B * U);
  zero_floats(dc, B * U);
  // dh_prev = dz·Rᵀ: B operand element (k = gate column, j = unit) is R[j, k].
  pack_b(G, U, a->r, 1, G, rt_packed);
  if (a->dy_last) {
    for (int b = 0; b < B; b++) copy_floats(dh + b * U, a->dy_last + (size_t)b * a->dy_last_ld, U);
  }
  for (int s = T - 1; s >= 0; s--) {
    const int t = time_at(a, s);
    const int t_prev = a->reverse ? t + 1 : t - 1;
    for (int b = 0; b < B; b++) {
      const size_t row = (size_t)b * T + t;
      float *dz = a->dz + row * G;
      if (a->dy_seq) add_floats(dh + b * U, a->dy_seq + row * a->h_ld, U);
      if (a->mask && a->mask[row] == 0.0f) {
        zero_floats(dz, G);  // the state passes through unchanged: dh, dc flow on as they are
        continue;
      }
      const float *c_prev = s > 0 ? a->cells + ((size_t)b * T + t_prev) * U : 0;
      cell_row_backward(U, a->gates + row * G, a->cells + row * U, c_prev, dh + b * U, dc + b * U, dz);
    }
    if (s > 0) mm_packed(B, U, G, a->dz + (size_t)t * G, T * G, rt_packed, dh, U, 1, 0);
  }
  // Weight gradients over all steps at once.
  gemm(D, G, B * T, a->x, 1, D, a->dz, G, 1, a->dw, G, 0, 0, gemm_work);
  recurrent_weight_grad(a, gemm_work);
  zero_floats(a->db, G);
  for (int row = 0; row < B * T; row++) add_floats(a->db, a->dz + (size_t)row * G, G);
}

typedef struct {
  int rows, in_dim, units;
  const float *dz[2];     // [rows, 4U] per direction (the second may be 0)
  const float *w[2];      // [D, 4U] per direction
  float *dx;              // [rows, D]
  float *work;            // gemm_work_floats(D) floats, private to the calling thread
} lstm_dx_args;

// dx = Σ_dir dz_dir · W_dirᵀ for rows [row_begin, row_end): threads split the rows.
void EXPORT(lstm_input_grad)(const lstm_dx_args *a, int row_begin, int row_end) {
  const int D = a->in_dim, G = 4 * a->units, n = row_end - row_begin;
  if (n <= 0) return;
  int accumulate = 0;
  for (int d = 0; d < 2; d++) {
    if (!a->dz[d]) continue;
    gemm(n, D, G, a->dz[d] + (size_t)row_begin * G, G, 1, a->w[d], 1, G, a->dx + (size_t)row_begin * D, D, accumulate,
         0, a->work);
    accumulate = 1;
  }
}
