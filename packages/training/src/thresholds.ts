import { NUM_GENRES } from '@filmgenre/core';
import { pickRows } from './rows.js';
import { evaluateMultiLabel, tuneGlobalThreshold, tunePerGenreThresholds, tuneThresholdsForMicroF1 } from '@filmgenre/metrics';

export const THRESHOLD_STRATEGIES = ['shared', 'micro', 'per-genre'] as const;
/** One threshold has room for a fine grid: 0.02 … 0.90 by 0.01. */
const SHARED_GRID = Array.from({ length: 89 }, (_, i) => Math.round((i + 2)) / 100);
export type ThresholdStrategy = (typeof THRESHOLD_STRATEGIES)[number];

/**
 * Per-genre decision thresholds from held-out probabilities. 'shared': one threshold for every
 * genre, the best pooled micro-F1 (the cross-validated evidence's best for micro-F1, and the hardest
 * to overfit); 'micro': one per genre, tuned together for pooled micro-F1; 'per-genre': each genre's
 * own F1 (higher macro-F1, but weak genres end up predicted for many films, which costs micro-F1).
 */
export function tuneThresholds(probabilities: Float32Array, labels: Float32Array, strategy: ThresholdStrategy): number[] {
  if (strategy === 'shared') return new Array<number>(NUM_GENRES).fill(tuneGlobalThreshold(probabilities, labels, { numGenres: NUM_GENRES, grid: SHARED_GRID }).threshold);
  return strategy === 'micro'
    ? tuneThresholdsForMicroF1(probabilities, labels, { numGenres: NUM_GENRES }).thresholds
    : tunePerGenreThresholds(probabilities, labels, { numGenres: NUM_GENRES }).thresholds;
}

/**
 * Honest scores of out-of-fold predictions: each fold's decisions use thresholds tuned on the other
 * folds only, so no film is scored with a threshold fitted on itself. Returns the report and the
 * thresholds tuned on all folds (what the model ships).
 */
export function crossFittedEvaluation(probabilities: Float32Array, labels: Float32Array, folds: Int32Array, strategy: ThresholdStrategy) {
  const k = NUM_GENRES;
  const K = Math.max(...folds) + 1;
  // Shift each film's probabilities by its fold's thresholds so one rule (p ≥ 0.5) gives its decisions.
  const shifted = new Float32Array(probabilities.length);
  for (let fold = 0; fold < K; fold++) {
    const rest = Array.from(folds.keys()).filter((i) => folds[i] !== fold);
    const thresholds = tuneThresholds(pickRows(probabilities, k, rest), pickRows(labels, k, rest), strategy);
    folds.forEach((f, i) => {
      if (f !== fold) return;
      for (let g = 0; g < k; g++) shifted[i * k + g] = Math.min(1, Math.max(0, probabilities[i * k + g]! - thresholds[g]! + 0.5));
    });
  }
  const decisions = evaluateMultiLabel({ probabilities: shifted, labels, thresholds: 0.5 });
  const thresholds = tuneThresholds(probabilities, labels, strategy);
  // Ranking metrics and loss need the raw probabilities (the shift differs by fold and clips).
  const raw = evaluateMultiLabel({ probabilities, labels, thresholds });
  return {
    /**
     * Counts, precision, recall and F1 from the cross-fitted thresholds; loss and average precision
     * from the raw probabilities; `thresholds` (report and per genre) are the ones shipped, tuned on
     * every film, not the per-fold ones the decisions used.
     */
    report: {
      ...decisions,
      thresholds: raw.thresholds,
      loss: raw.loss,
      micro: { ...decisions.micro, averagePrecision: raw.micro.averagePrecision },
      macro: { ...decisions.macro, averagePrecision: raw.macro.averagePrecision },
      perGenre: decisions.perGenre.map((g, i) => ({ ...g, threshold: raw.perGenre[i]!.threshold, averagePrecision: raw.perGenre[i]!.averagePrecision })),
    },
    thresholds,
  };
}
