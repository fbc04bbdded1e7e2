import { describe, expect, it } from 'vitest';
import { foldRows, pickRows, placeRows } from './rows.js';

describe('rows of a flat n × dim matrix', () => {
  it('foldRows splits the rows of one fold from the rest, each in row order; placeRows undoes pickRows', () => {
    const folds = [2, 0, 1, 0, 2];
    expect(foldRows(folds, 0)).toEqual({ scored: [1, 3], rest: [0, 2, 4] });
    expect(foldRows(folds, 3)).toEqual({ scored: [], rest: [0, 1, 2, 3, 4] });
    const matrix = Float32Array.from({ length: 10 }, (_, i) => i); // 5 rows of 2
    const { scored } = foldRows(folds, 2);
    const picked = pickRows(matrix, 2, scored);
    expect([...picked]).toEqual([0, 1, 8, 9]);
    const target = new Float32Array(10);
    placeRows(target, 2, scored, picked);
    expect([...target]).toEqual([0, 1, 0, 0, 0, 0, 0, 0, 8, 9]);
  });
});
