/** Rows `rows` of a flat row-major n×dim matrix, in that order (outputs and features of n films). */
export function pickRows(source: Float32Array, dim: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(source.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}
