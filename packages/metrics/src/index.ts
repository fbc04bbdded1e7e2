export { type Matrix, toFlat } from './matrix.js';
export {
  evaluateMultiLabel, applyThresholds, averagePrecision, binaryCrossEntropy, LOSS_EPSILON, DEFAULT_THRESHOLD,
  type EvaluateOptions, type MultiLabelReport, type GenreMetrics, type AveragedMetrics, type ZeroDivision,
} from './evaluate.js';
export {
  tuneGlobalThreshold, tunePerGenreThresholds, tuneThresholdsForMicroF1, tuneShrunkThresholds, tuneThresholds, crossFittedEvaluation, THRESHOLD_GRID, THRESHOLD_STRATEGIES, THRESHOLD_SHRINKAGE,
  type TuneGlobalOptions, type TunePerGenreOptions, type GlobalThresholdResult, type PerGenreThresholdResult, type GenreThreshold,
  type MicroF1ThresholdResult, type ThresholdStrategy,
} from './thresholds.js';
export {
  topK, randomFilmsTable, escapeHtml,
  type GenreScore, type TableFilm, type PredictedGenre, type FilmsTableRow, type RandomFilmsTableOptions,
} from './table.js';
export { precisionMetric, recallMetric, TRAINING_METRIC_THRESHOLD } from './tf-metrics.js';
