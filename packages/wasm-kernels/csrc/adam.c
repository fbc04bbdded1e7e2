// One Adam step (Kingma & Ba) over a range of a variable's floats, for FusedAdamUpdate
// (src/kernels/FusedAdamUpdate.ts). The order of operations is tfjs's AdamOptimizer's, one IEEE
// float32 operation at a time (no fused multiply-add), so the result is what tfjs's element-wise
// kernels compute, bit for bit:
//   m' = m·β1 + g·(1 − β1), v' = v·β2 + g²·(1 − β2), value' = (m'/c1) / (√(v'/c2) + ε) · (−lr) + value.
#include "kernels.h"

// Never contract a multiply and an add into one fused operation here (see above).
#pragma clang fp contract(off)

typedef struct {
  const float *value, *m, *v, *g;
  float *value_out, *m_out, *v_out;  // never the inputs: those may be tfjs's tensors, read in place
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float c1, c2, epsilon, neg_learning_rate;  // c1, c2: the bias corrections 1 − β1^t, 1 − β2^t
} adam_args;

void EXPORT(adam_update)(const adam_args *a, int begin, int end) {
  const v128_t b1 = wasm_f32x4_splat(a->beta1), b2 = wasm_f32x4_splat(a->beta2);
  const v128_t ob1 = wasm_f32x4_splat(a->one_minus_beta1), ob2 = wasm_f32x4_splat(a->one_minus_beta2);
  const v128_t c1 = wasm_f32x4_splat(a->c1), c2 = wasm_f32x4_splat(a->c2);
  const v128_t eps = wasm_f32x4_splat(a->epsilon), step = wasm_f32x4_splat(a->neg_learning_rate);
  int i = begin;
  for (; i + 4 <= end; i += 4) {
    const v128_t g = wasm_v128_load(a->g + i);
    const v128_t m = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a->m + i), b1), wasm_f32x4_mul(g, ob1));
    const v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a->v + i), b2), wasm_f32x4_mul(wasm_f32x4_mul(g, g), ob2));
    const v128_t denom = wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_div(v, c2)), eps);
    const v128_t delta = wasm_f32x4_mul(wasm_f32x4_div(wasm_f32x4_div(m, c1), denom), step);
    wasm_v128_store(a->m_out + i, m);
    wasm_v128_store(a->v_out + i, v);
    wasm_v128_store(a->value_out + i, wasm_f32x4_add(delta, wasm_v128_load(a->value + i)));
  }
  for (; i < end; i++) {
    const float g = a->g[i];
    const float m = a->m[i] * a->beta1 + g * a->one_minus_beta1;
    const float v = a->v[i] * a->beta2 + (g * g) * a->one_minus_beta2;
    a->m_out[i] = m;
    a->v_out[i] = v;
    a->value_out[i] = ((m / a->c1) / (__builtin_sqrtf(v / a->c2) + a->epsilon)) * a->neg_learning_rate + a->value[i];
  }
}
