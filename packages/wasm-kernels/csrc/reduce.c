// Column sums of x viewed as [rows, cols] (the bias gradients: dy summed over batch, height and
// width), accumulated in double precision like the JavaScript path of src/kernels/Sum.ts. The rows
// are cut into fixed chunks, each summed into its own partial; the caller adds the partials in
// chunk order, so the result does not depend on which thread summed which chunk.
#include "kernels.h"

typedef struct {
  int rows, cols;
  const float *x;    // [rows, cols]
  double *partials;  // [chunks, cols]
} column_sum_args;

static void column_sums_range(const column_sum_args *a, int r_begin, int r_end, double *acc) {
  const int cols = a->cols;
  for (int c = 0; c < cols; c++) acc[c] = 0.0;
  for (int r = r_begin; r < r_end; r++) {
    const float *row = a->x + (size_t)r * cols;
    int c = 0;
    for (; c + 4 <= cols; c += 4) {
      const v128_t v = wasm_v128_load(row + c);
      wasm_v128_store(acc + c, wasm_f64x2_add(wasm_v128_load(acc + c), wasm_f64x2_promote_low_f32x4(v)));
      wasm_v128_store(acc + c + 2, wasm_f64x2_add(wasm_v128_load(acc + c + 2),
                                                   wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1))));
    }
    for (; c < cols; c++) acc[c] += (double)row[c];
  }
}

// Chunks of `chunks` (chunk i: rows [i·R/chunks, (i+1)·R/chunks)) taken from `queue` until none is
// left, each into partials + i·cols.
void EXPORT(column_sums)(const column_sum_args *a, int *queue, int thread, int chunks) {
  for (int i; (i = take_unit(queue, thread, chunks)) < chunks;) {
    column_sums_range(a, (int)((int64_t)a->rows * i / chunks), (int)((int64_t)a->rows * (i + 1) / chunks), a->partials + (size_t)i * a->cols);
  }
}
