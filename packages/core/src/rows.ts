/** Rows `rows` of a flat row-major n×dim matrix, in that order (outputs and features of n films). */
export function pickRows(source: Float32Array, dim: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(source.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}

/** The inverse of pickRows: writes `values` (rows.length × dim) into rows `rows` of `target` (n × dim). */
export function placeRows(target: Float32Array, dim: number, rows: readonly number[], values: Float32Array): void {
  rows.forEach((r, i) => target.set(values.subarray(i * dim, (i + 1) * dim), r * dim));
}

/** A cross-fitting round: the rows in `fold` (scored) and every other row (fitted on), each in row order. */
export function foldRows(folds: ArrayLike<number>, fold: number): { scored: number[]; rest: number[] } {
  const scored: number[] = [];
  const rest: number[] = [];
  for (let i = 0; i < folds.length; i++) (folds[i] === fold ? scored : rest).push(i);
  return { scored, rest };
}
