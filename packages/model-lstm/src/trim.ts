/**
 * Drops the trailing columns that are padding (id 0) in every row of a [rows, length] batch, keeping
 * at least one column. With padding masked, a BiLSTM gives identical outputs on the trimmed batch,
 * and it runs one step per column: overviews average ~30 tokens of the 100-token sequences.
 */
export function trimTrailingPadding(ids: Int32Array, rows: number, length: number): { ids: Int32Array; length: number } {
  let used = 1;
  for (let r = 0; r < rows; r++) {
    for (let c = length - 1; c >= used; c--) {
      if (ids[r * length + c] !== 0) {
        used = c + 1;
        break;
      }
    }
  }
  if (used === length) return { ids, length };
  const out = new Int32Array(rows * used);
  for (let r = 0; r < rows; r++) out.set(ids.subarray(r * length, r * length + used), r * used);
  return { ids: out, length: used };
}
