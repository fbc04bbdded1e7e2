import { describe, expect, it } from 'vitest';
import { defaultThresholdGrid, tuneGlobalThreshold, tunePerGenreThresholds } from './thresholds.js';

// Eight films, three genres (columns), worked out by hand on the grid 0.1 … 0.9:
//  A: positives .9 .8 .45 .42, negatives .5 .3 .2 .1 → F1 best at 0.4 (5 predicted, 4 hits: 8/9)
//  B: positives .95 .75 .72, negatives .65 .6 .55 .2 .1 → F1 1 at 0.7
//  C: one positive (.9) → too rare to tune with minSupport 2
const A = { p: [0.9, 0.8, 0.45, 0.42, 0.5, 0.3, 0.2, 0.1], y: [1, 1, 1, 1, 0, 0, 0, 0] };
const B = { p: [0.95, 0.75, 0.72, 0.65, 0.6, 0.55, 0.2, 0.1], y: [1, 1, 1, 0, 0, 0, 0, 0] };
const C = { p: [0.3, 0.2, 0.1, 0.1, 0.6, 0.1, 0.9, 0.1], y: [0, 0, 0, 0, 0, 0, 1, 0] };
const genres = ['A', 'B', 'C'];
const probabilities = A.p.map((_, i) => [A.p[i]!, B.p[i]!, C.p[i]!]);
const labels = A.y.map((_, i) => [A.y[i]!, B.y[i]!, C.y[i]!]);
const grid = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

describe('defaultThresholdGrid', () => {
  it('is 0.05 … 0.95 in steps of 0.05, without float drift', () => {
    const g = defaultThresholdGrid();
    expect(g).toHaveLength(19);
    expect(g[0]).toBe(0.05);
    expect(g[5]).toBe(0.3);
    expect(g.at(-1)).toBe(0.95);
  });
});

describe('tuneGlobalThreshold', () => {
  it('recovers the single-genre optimum', () => {
    const r = tuneGlobalThreshold(A.p.map((p) => [p]), A.y.map((y) => [y]), { grid, genres: ['A'] });
    expect(r.threshold).toBe(0.4);
    expect(r.microF1).toBeCloseTo(8 / 9, 12);
    expect(r.curve.map((c) => c.threshold)).toEqual(grid);
    expect(r.curve[4]!.microF1).toBeCloseTo(4 / 7, 12); // at 0.5: .9 .8 .5 predicted, 2 hits
  });

  it('maximises micro-F1 over all genres: 0.7 here (6 hits, 6 predicted, 8 positives)', () => {
    const r = tuneGlobalThreshold(probabilities, labels, { grid, genres });
    expect(r.threshold).toBe(0.7);
    expect(r.microF1).toBeCloseTo(12 / 14, 12);
    expect(r.curve[3]!.microF1).toBeCloseTo(16 / 21, 12); // at 0.4: 8 hits, 13 predicted
  });

  it('breaks ties towards the lowest threshold and counts p = threshold as predicted', () => {
    // 0.41 and 0.42 predict the same five films (.42 ≥ .42); 0.43 drops the .42 positive.
    const single = { genres: ['A'] };
    const p = A.p.map((v) => [v]);
    const y = A.y.map((v) => [v]);
    expect(tuneGlobalThreshold(p, y, { ...single, grid: [0.42, 0.41, 0.43] }).threshold).toBe(0.41);
    expect(tuneGlobalThreshold(p, y, { ...single, grid: [0.43, 0.42] }).threshold).toBe(0.42);
  });

  it('rejects an empty grid and mismatched inputs', () => {
    expect(() => tuneGlobalThreshold(probabilities, labels, { grid: [], genres })).toThrow(/grid is empty/);
    expect(() => tuneGlobalThreshold(probabilities, labels.slice(1), { grid, genres })).toThrow(/different numbers of rows/);
  });
});

describe('tunePerGenreThresholds', () => {
  it("tunes each genre's F1 and leaves rare genres on the global threshold", () => {
    const r = tunePerGenreThresholds(probabilities, labels, { grid, genres, minSupport: 2 });
    expect(r.fallback).toBe(0.7);
    expect(r.thresholds).toEqual([0.4, 0.7, 0.7]);
    expect(r.perGenre[0]).toMatchObject({ genre: 'A', threshold: 0.4, support: 4, tuned: true });
    expect(r.perGenre[0]!.f1).toBeCloseTo(8 / 9, 12);
    expect(r.perGenre[1]).toEqual({ genre: 'B', threshold: 0.7, f1: 1, support: 3, tuned: true });
    expect(r.perGenre[2]).toEqual({ genre: 'C', threshold: 0.7, f1: 1, support: 1, tuned: false, reason: '1 positive(s) < minSupport 2' });
  });

  it('uses an explicit fallback, even off the grid, and reports its F1', () => {
    const r = tunePerGenreThresholds(probabilities, labels, { grid, genres, minSupport: 2, fallback: 0.25 });
    expect(r.thresholds).toEqual([0.4, 0.7, 0.25]);
    // C at 0.25: .3 .6 .9 predicted, 1 hit, 1 positive → 2/4.
    expect(r.perGenre[2]!.f1).toBe(0.5);
  });

  it('with the default minSupport (20) every genre here falls back', () => {
    const r = tunePerGenreThresholds(probabilities, labels, { grid, genres });
    expect(r.thresholds).toEqual([0.7, 0.7, 0.7]);
    expect(r.perGenre.every((g) => !g.tuned)).toBe(true);
  });

  it('falls back when no grid threshold finds a single positive', () => {
    // Both positives score below the lowest grid point.
    const p = [[0.05], [0.02], [0.6], [0.3]];
    const y = [[1], [1], [0], [0]];
    const r = tunePerGenreThresholds(p, y, { grid, genres: ['X'], minSupport: 1, fallback: 0.5 });
    expect(r.perGenre[0]).toEqual({ genre: 'X', threshold: 0.5, f1: 0, support: 2, tuned: false, reason: 'F1 is 0 at every grid threshold' });
  });
});

describe('numGenres instead of genre names', () => {
  it('tunes the same thresholds and names genres by column', () => {
    const r = tunePerGenreThresholds(new Float32Array(probabilities.flat()), new Uint8Array(labels.flat()), { grid, numGenres: 3, minSupport: 2 });
    expect(r.thresholds).toEqual([0.4, 0.7, 0.7]);
    expect(r.perGenre.map((g) => g.genre)).toEqual(['0', '1', '2']);
    expect(() => tuneGlobalThreshold(probabilities, labels, { grid, genres, numGenres: 4 })).toThrow(/disagrees/);
  });
});
