import { NUM_GENRES } from '@filmgenre/core';
import { tunePerGenreThresholds, tuneThresholdsForMicroF1 } from '@filmgenre/metrics';

export const THRESHOLD_STRATEGIES = ['micro', 'per-genre'] as const;
export type ThresholdStrategy = (typeof THRESHOLD_STRATEGIES)[number];

/**
 * Per-genre decision thresholds from validation probabilities. 'micro' (default) maximises pooled
 * micro-F1; 'per-genre' maximises each genre's own F1 (higher macro-F1, but weak genres end up
 * predicted for most films, which costs micro-F1).
 */
export function tuneThresholds(probabilities: Float32Array, labels: Float32Array, strategy: ThresholdStrategy): number[] {
  return strategy === 'micro'
    ? tuneThresholdsForMicroF1(probabilities, labels, { numGenres: NUM_GENRES }).thresholds
    : tunePerGenreThresholds(probabilities, labels, { numGenres: NUM_GENRES }).thresholds;
}
