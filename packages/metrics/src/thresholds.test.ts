import { describe, expect, it } from 'vitest';
import { createRng, NUM_GENRES } from '@filmgenre/core';
import { evaluateMultiLabel } from './evaluate.js';
import { crossFittedEvaluation, THRESHOLD_GRID, THRESHOLD_SHRINKAGE, tuneGlobalThreshold, tunePerGenreThresholds, tuneShrunkThresholds, tuneThresholds } from './thresholds.js';

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

describe('THRESHOLD_GRID', () => {
  it('is 0.02 … 0.90 in steps of 0.01, without float drift', () => {
    expect(THRESHOLD_GRID).toHaveLength(89);
    expect(THRESHOLD_GRID[0]).toBe(0.02);
    expect(THRESHOLD_GRID[28]).toBe(0.3);
    expect(THRESHOLD_GRID.at(-1)).toBe(0.9);
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

describe('tuneShrunkThresholds', () => {
  it("moves each genre from the shared threshold toward its own best by the shrinkage; rare genres stay on the shared one", () => {
    // Shared 0.7; A's own best 0.4, B's 0.7, C too rare (see tunePerGenreThresholds).
    const half = tuneShrunkThresholds(probabilities, labels, { grid, genres, minSupport: 2, shrinkage: 0.5 });
    expect(half.map((t) => Number(t.toFixed(12)))).toEqual([0.55, 0.7, 0.7]);
    expect(tuneShrunkThresholds(probabilities, labels, { grid, genres, minSupport: 2, shrinkage: 0 })).toEqual([0.7, 0.7, 0.7]);
    expect(tuneShrunkThresholds(probabilities, labels, { grid, genres, minSupport: 2, shrinkage: 1 })).toEqual([0.4, 0.7, 0.7]);
    const byDefault = tuneShrunkThresholds(probabilities, labels, { grid, genres, minSupport: 2 });
    expect(byDefault[0]).toBeCloseTo(0.7 - THRESHOLD_SHRINKAGE * 0.3, 12);
    expect(() => tuneShrunkThresholds(probabilities, labels, { grid, genres, shrinkage: 1.5 })).toThrow(/shrinkage must lie in \[0, 1\], got 1.5/);
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

describe('crossFittedEvaluation', () => {
  it('scores each fold with thresholds tuned on the other folds only, and ships the ones tuned on every film', () => {
    const k = NUM_GENRES;
    const rng = createRng(3);
    const n = 300;
    const labels = Float32Array.from({ length: n * k }, (_, i) => (rng() < (i % k) / 60 ? 1 : 0));
    const probabilities = labels.map((y) => Math.min(1, Math.max(0, 0.3 * y + rng() * 0.7)));
    const folds = Int32Array.from({ length: n }, (_, i) => i % 3);
    for (const strategy of ['shared', 'micro', 'per-genre'] as const) {
      const { report, thresholds } = crossFittedEvaluation(probabilities, labels, folds, strategy);
      let tp = 0;
      let predicted = 0;
      for (let fold = 0; fold < 3; fold++) {
        const rest = [...folds.keys()].filter((i) => folds[i] !== fold);
        const pick = (m: Float32Array) => Float32Array.from(rest.flatMap((i) => [...m.subarray(i * k, (i + 1) * k)]));
        const t = tuneThresholds(pick(probabilities), pick(labels), strategy);
        folds.forEach((f, i) => {
          if (f !== fold) return;
          for (let g = 0; g < k; g++) {
            const yes = probabilities[i * k + g]! >= t[g]!;
            predicted += yes ? 1 : 0;
            tp += yes && labels[i * k + g] === 1 ? 1 : 0;
          }
        });
      }
      const positives = labels.reduce((s, y) => s + y, 0);
      expect(report.micro.f1, strategy).toBeCloseTo((2 * tp) / (positives + predicted), 10);
      expect(thresholds, strategy).toEqual(tuneThresholds(probabilities, labels, strategy));
      expect(report.thresholds, strategy).toEqual(thresholds);
      expect(report.loss, strategy).toBe(evaluateMultiLabel({ probabilities, labels, thresholds }).loss);
    }
  });
});

describe('counts at every threshold', () => {
  it('agree with counting each threshold on its own, values on a threshold included, in any grid order', () => {
    let s = 7;
    const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const n = 300;
    const k = 4;
    // Half the values sit exactly on a grid value, where `p ≥ t` must count them.
    const p = Array.from({ length: n * k }, () => (next() < 0.5 ? Math.round(next() * 20) / 20 : next()));
    const y = Array.from({ length: n * k }, () => (next() < 0.3 ? 1 : 0));
    const shuffled = [0.9, 0.05, 0.5, 0.35, 0.6, 0.05, 0.15];
    const numGenres = k;
    const f1At = (t: number, g?: number) => {
      let tp = 0;
      let predicted = 0;
      let support = 0;
      p.forEach((v, i) => {
        if (g !== undefined && i % k !== g) return;
        support += y[i]!;
        if (v >= t) {
          predicted++;
          tp += y[i]!;
        }
      });
      return support + predicted === 0 ? 0 : (2 * tp) / (support + predicted);
    };
    const curve = tuneGlobalThreshold(p, y, { grid: shuffled, numGenres }).curve;
    expect(curve.map((c) => c.threshold)).toEqual([0.05, 0.15, 0.35, 0.5, 0.6, 0.9]);
    for (const c of curve) expect(c.microF1).toBeCloseTo(f1At(c.threshold), 12);
    // A fallback off the grid is counted as one more threshold.
    const perGenre = tunePerGenreThresholds(p, y, { grid: shuffled, numGenres, minSupport: 1000, fallback: 0.425 }).perGenre;
    perGenre.forEach((g, i) => expect(g.f1).toBeCloseTo(f1At(0.425, i), 12));
  });
});
