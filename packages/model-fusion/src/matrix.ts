/** n×k values, flat row-major or as rows (the shapes @filmgenre/metrics accepts). */
export type Matrix = ArrayLike<number> | readonly ArrayLike<number>[];

export function toFlat(matrix: Matrix, k: number, name: string): Float32Array {
  if (matrix.length > 0 && typeof (matrix as ArrayLike<unknown>)[0] === 'object') {
    const rows = matrix as readonly ArrayLike<number>[];
    const out = new Float32Array(rows.length * k);
    rows.forEach((row, i) => {
      if (row.length !== k) throw new RangeError(`${name}: row ${i} has ${row.length} values, expected ${k}`);
      for (let g = 0; g < k; g++) out[i * k + g] = row[g]!;
    });
    return out;
  }
  const flat = matrix as ArrayLike<number>;
  if (flat.length % k !== 0) throw new RangeError(`${name}: ${flat.length} values is not a multiple of ${k}`);
  return Float32Array.from(flat);
}
