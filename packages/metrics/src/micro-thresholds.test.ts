import { describe, expect, it } from 'vitest';
import { evaluateMultiLabel } from './evaluate.js';
import { tunePerGenreThresholds, tuneThresholdsForMicroF1 } from './thresholds.js';

// Worked by hand: genre A is separable (films 1–2 positive); genre B is weak (only film 4 positive, with
// the lowest score). B's own best F1 (0.4) predicts B for every film: micro-F1 = 2·3/(3+6) = 0.667.
// Predicting no B keeps micro-F1 = 2·2/(3+2) = 0.8.
const probabilities = [
  [0.9, 0.6],
  [0.8, 0.5],
  [0.2, 0.4],
  [0.1, 0.3],
];
const labels = [
  [1, 0],
  [1, 0],
  [0, 0],
  [0, 1],
];

describe('tuneThresholdsForMicroF1', () => {
  it('keeps a weak genre from flooding predictions where per-genre F1 tuning does not', () => {
    const perGenre = tunePerGenreThresholds(probabilities, labels, { numGenres: 2, minSupport: 1 });
    expect(perGenre.thresholds[1]).toBeLessThanOrEqual(0.3); // every film predicted B (ties go to the lowest)
    expect(evaluateMultiLabel({ probabilities, labels, thresholds: perGenre.thresholds, genres: ['A', 'B'] }).micro.f1).toBeCloseTo(6 / 9, 10);

    const micro = tuneThresholdsForMicroF1(probabilities, labels, { numGenres: 2, minSupport: 1 });
    expect(micro.microF1).toBeCloseTo(0.8, 10);
    expect(micro.startMicroF1).toBeCloseTo(0.8, 10);
    // Lowest shared grid threshold (0.01 steps) with the best micro-F1: above B's top score 0.6, at most A's 0.8.
    expect(micro.thresholds).toEqual([0.61, 0.61]);
    expect(evaluateMultiLabel({ probabilities, labels, thresholds: micro.thresholds, genres: ['A', 'B'] }).micro.f1).toBeCloseTo(0.8, 10);
  });

  it('moves a genre off the shared threshold when that raises micro-F1', () => {
    // A needs a low threshold (positives score 0.3), B a high one (negatives score up to 0.7).
    const p = [[0.3, 0.9], [0.3, 0.7], [0.1, 0.8], [0.1, 0.2]];
    const y = [[1, 1], [1, 0], [0, 1], [0, 0]];
    const result = tuneThresholdsForMicroF1(p, y, { numGenres: 2, minSupport: 1 });
    expect(result.microF1).toBe(1);
    expect(result.microF1).toBeGreaterThan(result.startMicroF1);
    expect(result.thresholds[0]).toBeLessThanOrEqual(0.3);
    expect(result.thresholds[1]).toBeGreaterThan(0.7);
  });
});
