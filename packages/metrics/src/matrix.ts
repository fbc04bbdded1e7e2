/**
 * An n×k matrix, either flat and row-major (Float32Array from model.predict().data(), Uint8Array…)
 * or as n rows of length k (number[][], the Uint8Array labels of each Film…).
 */
export type Matrix = ArrayLike<number> | readonly ArrayLike<number>[];

function isRows(matrix: Matrix): matrix is readonly ArrayLike<number>[] {
  return matrix.length > 0 && typeof (matrix as ArrayLike<unknown>)[0] === 'object';
}

/** Number of rows of an n×k matrix; throws when a flat one's length is not a multiple of k. */
export function rowCount(matrix: Matrix, k: number, name: string): number {
  if (isRows(matrix)) return matrix.length;
  if (matrix.length % k !== 0) throw new RangeError(`${name}: flat length ${matrix.length} is not a multiple of ${k} genres`);
  return matrix.length / k;
}

/** Copies a matrix into a flat row-major Float64Array, checking its shape. */
export function toFlat(matrix: Matrix, k: number, name: string): Float64Array {
  const n = rowCount(matrix, k, name);
  const out = new Float64Array(n * k);
  if (isRows(matrix)) {
    matrix.forEach((row, i) => {
      if (row.length !== k) throw new RangeError(`${name}: row ${i} has ${row.length} values, expected ${k}`);
      for (let g = 0; g < k; g++) out[i * k + g] = row[g]!;
    });
  } else {
    for (let i = 0; i < out.length; i++) out[i] = matrix[i]!;
  }
  return out;
}

/** Probabilities: finite and within [0, 1]. */
export function toProbabilities(matrix: Matrix, k: number, name = 'probabilities'): Float64Array {
  const flat = toFlat(matrix, k, name);
  for (let i = 0; i < flat.length; i++) {
    const p = flat[i]!;
    if (!(p >= 0 && p <= 1)) throw new RangeError(`${name}: row ${Math.floor(i / k)}, genre ${i % k} is ${p}, expected a probability in [0, 1]`);
  }
  return flat;
}

/** Labels: exactly 0 or 1. */
export function toLabels(matrix: Matrix, k: number, name = 'labels'): Uint8Array {
  const flat = toFlat(matrix, k, name);
  const out = new Uint8Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const y = flat[i]!;
    if (y !== 0 && y !== 1) throw new RangeError(`${name}: row ${Math.floor(i / k)}, genre ${i % k} is ${y}, expected 0 or 1`);
    out[i] = y;
  }
  return out;
}

/** One threshold per genre from a single number or a list of k. */
export function expandThresholds(thresholds: number | readonly number[], k: number): number[] {
  const list = typeof thresholds === 'number' ? new Array<number>(k).fill(thresholds) : [...thresholds];
  if (list.length !== k) throw new RangeError(`thresholds: got ${list.length} values, expected 1 or ${k}`);
  list.forEach((t, g) => {
    if (!Number.isFinite(t)) throw new RangeError(`thresholds: genre ${g} has threshold ${t}`);
  });
  return list;
}
