// 2-D convolutions by Winograd's minimal filtering (Lavin & Gray, 2016), for 3×3 filters at stride 1
// without dilation: cnn-ref's convolutions, their input gradients (which are such convolutions) and,
// with F(3×3, 2×2), their filter gradients (at the end of this file).
// Each 2×2 block of output pixels (a "tile") comes from its 4×4 input patch d as
//   Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A,
// and the sum over input channels of the 16 element-wise products is 16 independent GEMMs
// [tiles × Ci]·[Ci × Co]. That is 4·Ci·Co multiply-adds per output pixel instead of 9·Ci·Co; the
// transforms add O(Ci + Co) additions per pixel. Every tile is computed the same way whichever
// thread or batch it is in.
#include "kernels.h"

typedef struct {
  int batch, in_h, in_w, in_c;
  int out_h, out_w, out_c;
  int pad_top, pad_left;
  const float *x;  // [N, H, W, Ci]
  const float *u;  // the transformed filter, from winograd_filter_transform
  float *y;        // [N, Ho, Wo, Co]
  const float *dy; // [N, Ho, Wo, Co]: the filter gradient's input
} winograd_args;

static int tiles_h(const winograd_args *a) { return (a->out_h + 1) / 2; }
static int tiles_w(const winograd_args *a) { return (a->out_w + 1) / 2; }

// Where output tile `tile` (= (n, ty, tx), row-major) sits: its top-left output pixel (n, oy, ox),
// and whether its right column and bottom row exist (odd Ho or Wo leave half tiles at the edges).
typedef struct {
  int n, oy, ox, has_right, has_below;
} tile_pos;

static inline tile_pos tile_at(const winograd_args *a, int tile) {
  const int per_image = tiles_h(a) * tiles_w(a), rem = tile % per_image;
  tile_pos p = {tile / per_image, (rem / tiles_w(a)) * 2, (rem % tiles_w(a)) * 2, 0, 0};
  p.has_right = p.ox + 1 < a->out_w;
  p.has_below = p.oy + 1 < a->out_h;
  return p;
}

// Tiles per block: the block's 16 transformed inputs and 16 products (16·T·(Ci + Co) floats) stay
// within 512 KiB (L2), and 16 ≤ T ≤ 64. Measured on cnn-ref's layers (conv-forward-ab): 2048-,
// 4096- and 8192-float budgets and caps of 64-256 tiles were within the noise of each other.
static int block_tiles(const winograd_args *a) {
  const int t = 8192 / (a->in_c + a->out_c) / GEMM_MR * GEMM_MR;
  return imax(16, imin(64, t));
}

int EXPORT(winograd_filter_floats)(int in_c, int out_c) { return 16 * packed_b_floats(in_c, out_c); }

int EXPORT(winograd_work_len)(const winograd_args *a) { return 16 * block_tiles(a) * (a->in_c + a->out_c) + 64; }

// U_ξ = (G g Gᵀ)[ξ] for the filter w [3, 3, Ci, Co], written as 16 matrices [Ci × Co] already packed
// for mm_packed (column panels of GEMM_NR, zero past Co). G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
void EXPORT(winograd_filter_transform)(const float *w, int in_c, int out_c, float *u) {
  const int per_xi = packed_b_floats(in_c, out_c);
  zero_floats(u, 16 * per_xi);
  for (int ci = 0; ci < in_c; ci++) {
    for (int co = 0; co < out_c; co++) {
      float g[3][3], t[4][3];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) g[i][j] = w[((i * 3 + j) * in_c + ci) * out_c + co];
      for (int j = 0; j < 3; j++) {
        t[0][j] = g[0][j];
        t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
      }
      const size_t at = (size_t)(co / GEMM_NR) * in_c * GEMM_NR + (size_t)ci * GEMM_NR + co % GEMM_NR;
      for (int i = 0; i < 4; i++) {
        const float r[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
        for (int j = 0; j < 4; j++) u[(size_t)(i * 4 + j) * per_xi + at] = r[j];
      }
    }
  }
}

// Bᵀ·(four rows or columns), Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
#define BT(o0, o1, o2, o3, d0, d1, d2, d3)                                     \
  do {                                                                        \
    o0 = wasm_f32x4_sub(d0, d2);                                              \
    o1 = wasm_f32x4_add(d1, d2);                                              \
    o2 = wasm_f32x4_sub(d2, d1);                                              \
    o3 = wasm_f32x4_sub(d1, d3);                                              \
  } while (0)

// V_ξ[t, c] = (Bᵀ d B)[ξ] for the block's tiles, four channels at a time (Ci is a multiple of 4).
// Input outside the image is zero (the convolution's padding). V_ξ[t, c] is stored at
// v + ξ·xi_stride + t·row_stride + (c / 8)·panel_stride + c % 8: row-major [tiles × Ci] for the
// forward pass (row_stride Ci, panel_stride 8), or GEMM_NR-wide panels as pack_b lays out B for the
// filter gradient (row_stride 8, panel_stride 8·tiles).
static void transform_inputs(const winograd_args *a, int t0, int tb, float *v, size_t xi_stride, int row_stride, int panel_stride) {
  const int C = a->in_c, H = a->in_h, W = a->in_w;
  for (int t = 0; t < tb; t++) {
    const tile_pos p = tile_at(a, t0 + t);
    const int n = p.n, iy0 = p.oy - a->pad_top, ix0 = p.ox - a->pad_left;
    const float *src[4][4];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) {
        const int iy = iy0 + i, ix = ix0 + j;
        src[i][j] = ((unsigned)iy < (unsigned)H && (unsigned)ix < (unsigned)W) ? a->x + ((size_t)(n * H + iy) * W + ix) * C : 0;
      }
    float *dst_t = v + (size_t)t * row_stride;
    for (int c = 0; c < C; c += 4) {
      float *dst = dst_t + (size_t)(c / GEMM_NR) * panel_stride + c % GEMM_NR;
      v128_t d[4][4], r[4][4];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) d[i][j] = src[i][j] ? wasm_v128_load(src[i][j] + c) : wasm_f32x4_splat(0.0f);
      for (int j = 0; j < 4; j++) BT(r[0][j], r[1][j], r[2][j], r[3][j], d[0][j], d[1][j], d[2][j], d[3][j]);
      for (int i = 0; i < 4; i++) {
        v128_t o0, o1, o2, o3;
        BT(o0, o1, o2, o3, r[i][0], r[i][1], r[i][2], r[i][3]);
        float *row = dst + (size_t)(i * 4) * xi_stride;
        wasm_v128_store(row, o0);
        wasm_v128_store(row + xi_stride, o1);
        wasm_v128_store(row + 2 * xi_stride, o2);
        wasm_v128_store(row + 3 * xi_stride, o3);
      }
    }
  }
}

// Y = Aᵀ M A for the block's tiles, four output channels at a time, Aᵀ = [1 1 1 0; 0 1 −1 −1];
// pixels past the output's edge (odd Ho or Wo) are not written.
static void transform_outputs(const winograd_args *a, int t0, int tb, const float *m) {
  const int K = a->out_c, Ho = a->out_h, Wo = a->out_w;
  const size_t xi_stride = (size_t)tb * K;
  for (int t = 0; t < tb; t++) {
    const tile_pos p = tile_at(a, t0 + t);
    const int has_right = p.has_right, has_below = p.has_below;
    float *y0 = a->y + ((size_t)(p.n * Ho + p.oy) * Wo + p.ox) * K;
    float *y1 = y0 + (size_t)Wo * K;
    const float *src = m + (size_t)t * K;
    for (int k = 0; k < K; k += 4) {
      v128_t s0[4], s1[4];
      for (int j = 0; j < 4; j++) {
        const v128_t m0 = wasm_v128_load(src + (size_t)j * xi_stride + k);
        const v128_t m1 = wasm_v128_load(src + (size_t)(4 + j) * xi_stride + k);
        const v128_t m2 = wasm_v128_load(src + (size_t)(8 + j) * xi_stride + k);
        const v128_t m3 = wasm_v128_load(src + (size_t)(12 + j) * xi_stride + k);
        s0[j] = wasm_f32x4_add(wasm_f32x4_add(m0, m1), m2);
        s1[j] = wasm_f32x4_sub(wasm_f32x4_sub(m1, m2), m3);
      }
      wasm_v128_store(y0 + k, wasm_f32x4_add(wasm_f32x4_add(s0[0], s0[1]), s0[2]));
      if (has_right) wasm_v128_store(y0 + K + k, wasm_f32x4_sub(wasm_f32x4_sub(s0[1], s0[2]), s0[3]));
      if (has_below) {
        wasm_v128_store(y1 + k, wasm_f32x4_add(wasm_f32x4_add(s1[0], s1[1]), s1[2]));
        if (has_right) wasm_v128_store(y1 + K + k, wasm_f32x4_sub(wasm_f32x4_sub(s1[1], s1[2]), s1[3]));
      }
    }
  }
}

// Blocks of block_tiles output tiles (tile = (n, ty, tx), row-major) of y, taken from `queue` until
// none is left. work: winograd_work_len floats.
void EXPORT(winograd_forward)(const winograd_args *a, int *queue, int thread, float *work) {
  const int C = a->in_c, K = a->out_c, T = block_tiles(a);
  const int tiles = a->batch * tiles_h(a) * tiles_w(a), blocks = (tiles + T - 1) / T;
  const int per_xi = packed_b_floats(C, K);
  float *v = work;
  float *m = v + (size_t)16 * T * C;
  for (int b; (b = take_unit(queue, thread, blocks)) < blocks;) {
    const int t0 = b * T, tb = imin(T, tiles - t0);
    transform_inputs(a, t0, tb, v, (size_t)tb * C, C, GEMM_NR);
    for (int xi = 0; xi < 16; xi++) {
      mm_packed(tb, K, C, v + (size_t)xi * tb * C, C, a->u + (size_t)xi * per_xi, m + (size_t)xi * tb * K, K, 0, 0);
    }
    transform_outputs(a, t0, tb, m);
  }
}

// ---- Filter gradient, F(3×3, 2×2) -------------------------------------------------------------
// dW[i, j, c, o] = Σ_tiles Σ_(r,s ∈ {0,1}) x[2ty − pt + i + r, 2tx − pl + j + s, c] · dy[2ty + r, 2tx + s, o]:
// per tile, the 3×3 result of a 2×2 "filter" (the tile's dy) run over its 4×4 input patch, so
//   dW = Aᵀ [ Σ_tiles (G′ dy_t G′ᵀ) ⊙ (Bᵀ x_t B) ] A,
// Bᵀ as in the forward pass, G′ = [1 0; ½ ½; ½ −½; 0 −1], Aᵀ = [1 1 1 0; 0 1 −1 0; 0 1 1 1] (the
// textbook F(3, 2) has Bᵀ's last row and G's last row negated; the signs cancel in the product).
// The sum over tiles is 16 GEMMs M_ξᵀ [Co × Ci] = D_ξᵀ · V_ξ of depth = tiles: 4·Ci·Co multiply-adds
// per output pixel instead of 9·Ci·Co. As in conv.c, the tiles are cut into fixed chunks summed
// into their own partials and added in chunk order, so any thread count gives the same dW.
// Tiles per block: the depth of the 16 GEMMs. 64, 128 and 256 measured within the host's noise.
#define GRAD_BLOCK_TILES 128

int EXPORT(winograd_filter_grad_work_len)(const winograd_args *a) {
  return 16 * GRAD_BLOCK_TILES * (round_up(a->in_c, GEMM_NR) + a->out_c) + 64;
}

// (G′ g G′ᵀ)[ξ] for tile p's 2×2 output gradient g, four output channels from k, into u[ξ]. dy
// outside the output (odd Ho or Wo) is zero.
static void transform_output_grad(const winograd_args *a, const tile_pos *p, int k, v128_t u[16]) {
  const int K = a->out_c, Wo = a->out_w;
  const float *g0 = a->dy + ((size_t)(p->n * a->out_h + p->oy) * Wo + p->ox) * K + k;
  const float *g1 = g0 + (size_t)Wo * K;
  const v128_t half = wasm_f32x4_splat(0.5f), zero = wasm_f32x4_splat(0.0f);
  const v128_t g[2][2] = {
      {wasm_v128_load(g0), p->has_right ? wasm_v128_load(g0 + K) : zero},
      {p->has_below ? wasm_v128_load(g1) : zero, p->has_below && p->has_right ? wasm_v128_load(g1 + K) : zero},
  };
  v128_t r[4][2];
  for (int j = 0; j < 2; j++) {
    r[0][j] = g[0][j];
    r[1][j] = wasm_f32x4_mul(half, wasm_f32x4_add(g[0][j], g[1][j]));
    r[2][j] = wasm_f32x4_mul(half, wasm_f32x4_sub(g[0][j], g[1][j]));
    r[3][j] = wasm_f32x4_neg(g[1][j]);
  }
  for (int i = 0; i < 4; i++) {
    u[i * 4] = r[i][0];
    u[i * 4 + 1] = wasm_f32x4_mul(half, wasm_f32x4_add(r[i][0], r[i][1]));
    u[i * 4 + 2] = wasm_f32x4_mul(half, wasm_f32x4_sub(r[i][0], r[i][1]));
    u[i * 4 + 3] = wasm_f32x4_neg(r[i][1]);
  }
}

// D_ξᵀ[o, t] = (G′ dy_t G′ᵀ)[ξ][o] for the block's tiles, stored at d + ξ·Co·tb + o·tb + t: rows of
// A for mm_packed, so tile-major. Four tiles at a time, transposed in registers (lanes = channels →
// lanes = tiles), so each store writes 16 bytes of a row instead of one float.
static void transform_output_grads(const winograd_args *a, int t0, int tb, float *d) {
  const int K = a->out_c;
  int t = 0;
  for (; t + 4 <= tb; t += 4) {
    const tile_pos p[4] = {tile_at(a, t0 + t), tile_at(a, t0 + t + 1), tile_at(a, t0 + t + 2), tile_at(a, t0 + t + 3)};
    for (int k = 0; k < K; k += 4) {
      v128_t u[4][16];
      for (int q = 0; q < 4; q++) transform_output_grad(a, &p[q], k, u[q]);
      for (int xi = 0; xi < 16; xi++) {
        const v128_t p0 = wasm_i32x4_shuffle(u[0][xi], u[1][xi], 0, 4, 1, 5);
        const v128_t p1 = wasm_i32x4_shuffle(u[0][xi], u[1][xi], 2, 6, 3, 7);
        const v128_t p2 = wasm_i32x4_shuffle(u[2][xi], u[3][xi], 0, 4, 1, 5);
        const v128_t p3 = wasm_i32x4_shuffle(u[2][xi], u[3][xi], 2, 6, 3, 7);
        float *dst = d + ((size_t)xi * K + k) * tb + t;
        wasm_v128_store(dst, wasm_i32x4_shuffle(p0, p2, 0, 1, 4, 5));
        wasm_v128_store(dst + tb, wasm_i32x4_shuffle(p0, p2, 2, 3, 6, 7));
        wasm_v128_store(dst + 2 * tb, wasm_i32x4_shuffle(p1, p3, 0, 1, 4, 5));
        wasm_v128_store(dst + 3 * tb, wasm_i32x4_shuffle(p1, p3, 2, 3, 6, 7));
      }
    }
  }
  for (; t < tb; t++) {
    const tile_pos p = tile_at(a, t0 + t);
    for (int k = 0; k < K; k += 4) {
      v128_t u[16];
      transform_output_grad(a, &p, k, u);
      for (int xi = 0; xi < 16; xi++) {
        float *dst = d + ((size_t)xi * K + k) * tb + t;
        dst[0] = wasm_f32x4_extract_lane(u[xi], 0);
        dst[tb] = wasm_f32x4_extract_lane(u[xi], 1);
        dst[2 * tb] = wasm_f32x4_extract_lane(u[xi], 2);
        dst[3 * tb] = wasm_f32x4_extract_lane(u[xi], 3);
      }
    }
  }
}

// Sums tiles [t_begin, t_end) into m: 16 matrices M_ξᵀ [Co × Ci] (overwritten).
static void filter_grad_tiles(const winograd_args *a, int t_begin, int t_end, float *m, float *work) {
  const int C = a->in_c, K = a->out_c, c_panels = round_up(C, GEMM_NR);
  float *v = work;
  float *d = v + (size_t)16 * GRAD_BLOCK_TILES * c_panels;
  if (t_end <= t_begin) {
    zero_floats(m, 16 * K * C);
    return;
  }
  for (int t0 = t_begin; t0 < t_end; t0 += GRAD_BLOCK_TILES) {
    const int tb = imin(GRAD_BLOCK_TILES, t_end - t0);
    transform_inputs(a, t0, tb, v, (size_t)tb * c_panels, GEMM_NR, GEMM_NR * tb);
    transform_output_grads(a, t0, tb, d);
    for (int xi = 0; xi < 16; xi++) {
      mm_packed(K, C, tb, d + (size_t)xi * K * tb, tb, v + (size_t)xi * tb * c_panels, m + (size_t)xi * K * C, C, t0 > t_begin, 0);
    }
  }
}

// Chunks of `chunks` (chunk i: tiles [i·T/chunks, (i+1)·T/chunks)) taken from `queue` until none is
// left, each into its own partial, partials + i·16·Co·Ci.
void EXPORT(winograd_filter_grad)(const winograd_args *a, int *queue, int thread, int chunks, float *partials, float *work) {
  const int64_t tiles = (int64_t)a->batch * tiles_h(a) * tiles_w(a);
  const size_t partial_floats = (size_t)16 * a->out_c * a->in_c;
  for (int i; (i = take_unit(queue, thread, chunks)) < chunks;) {
    filter_grad_tiles(a, (int)(tiles * i / chunks), (int)(tiles * (i + 1) / chunks), partials + i * partial_floats, work);
  }
}

// dW [3, 3, Ci, Co] = Aᵀ (Σ_chunks M) A, the partials added in chunk order.
void EXPORT(winograd_filter_grad_finish)(const float *partials, int chunks, int in_c, int out_c, float *dw) {
  const size_t partial_floats = (size_t)16 * out_c * in_c;
  for (int o = 0; o < out_c; o++) {
    for (int c = 0; c < in_c; c++) {
      float m[4][4], s[3][4];
      for (int xi = 0; xi < 16; xi++) {
        const float *p = partials + (size_t)xi * out_c * in_c + (size_t)o * in_c + c;
        float sum = p[0];
        for (int i = 1; i < chunks; i++) sum += p[i * partial_floats];
        m[xi / 4][xi % 4] = sum;
      }
      for (int j = 0; j < 4; j++) {
        s[0][j] = m[0][j] + m[1][j] + m[2][j];
        s[1][j] = m[1][j] - m[2][j];
        s[2][j] = m[1][j] + m[2][j] + m[3][j];
      }
      for (int i = 0; i < 3; i++) {
        float *out = dw + ((size_t)(i * 3) * in_c + c) * out_c + o;
        out[0] = s[i][0] + s[i][1] + s[i][2];
        out[(size_t)in_c * out_c] = s[i][1] - s[i][2];
        out[(size_t)2 * in_c * out_c] = s[i][1] + s[i][2] + s[i][3];
      }
    }
  }
}
