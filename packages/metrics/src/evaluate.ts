import { GENRES } from '@filmgenre/core';
import { expandThresholds, rowCount, toLabels, toProbabilities, type Matrix } from './matrix.js';

/** Clipping of probabilities in the loss, as Keras' and tfjs-layers' backend epsilon. */
export const LOSS_EPSILON = 1e-7;
export const DEFAULT_THRESHOLD = 0.5;

/** The value of a ratio whose denominator is 0, as scikit-learn's `zero_division` (0 by default). */
export type ZeroDivision = 0 | 1;

export interface GenreMetrics {
  genre: string;
  threshold: number;
  precision: number;
  recall: number;
  f1: number;
  /** Films whose label for this genre is 1. */
  support: number;
  /** Films predicted positive (probability ≥ threshold). */
  predictedPositives: number;
  truePositives: number;
  /** Area under the precision–recall step curve, threshold-free (scikit-learn's definition); 0 when support is 0. */
  averagePrecision: number;
}

export interface AveragedMetrics {
  precision: number;
  recall: number;
  f1: number;
}

export interface MultiLabelReport {
  films: number;
  genres: string[];
  thresholds: number[];
  perGenre: GenreMetrics[];
  /** From the true/false positive counts summed over all genres. */
  micro: AveragedMetrics & { averagePrecision: number };
  /** Unweighted mean over the genres with at least one positive label in the evaluated films (`genresAveraged`). */
  /** Mean over the genres with at least one positive among the evaluated films. */
  macro: AveragedMetrics & { averagePrecision: number; genresAveraged: number };
  /**
   * Mean over all k genres, as scikit-learn's average='macro': a genre with no positive example
   * scores its zero-division value (0 by default), so this is never above `macro` with the default.
   */
  macroAllGenres: AveragedMetrics;
  /** Mean over genres weighted by support. */
  weighted: AveragedMetrics;
  /** Per-film precision/recall/F1, averaged over films. */
  samples: AveragedMetrics;
  /** Share of films whose predicted genre set equals the true set exactly. */
  subsetAccuracy: number;
  /** Share of film×genre cells predicted wrong. */
  hammingLoss: number;
  /** Mean binary cross-entropy over all film×genre cells, probabilities clipped to [1e-7, 1 − 1e-7]. */
  loss: number;
}

export interface EvaluateOptions {
  /** n×k probabilities (sigmoid outputs), genres in `genres` order. */
  probabilities: Matrix;
  /** n×k 0/1 labels. */
  labels: Matrix;
  /** A genre is predicted when its probability is ≥ its threshold. One for all genres, or one per genre. Default 0.5. */
  thresholds?: number | readonly number[];
  /** Genre names in column order; their count is k. Default: the dataset's 25 GENRES. */
  genres?: readonly string[];
  /** Value of 0/0 ratios (precision with nothing predicted, etc.). Default 0, as scikit-learn's zero_division=0. */
  zeroDivision?: ZeroDivision;
}

const ratio = (num: number, den: number, zd: ZeroDivision) => (den === 0 ? zd : num / den);
// scikit-learn ≥ 1.3: F1 = 2·tp / (|true| + |predicted|), zero_division only when both sets are empty.
const f1Of = (tp: number, support: number, predicted: number, zd: ZeroDivision) => ratio(2 * tp, support + predicted, zd);

/**
 * Average precision of one score column, as scikit-learn's `average_precision_score`:
 * Σ (Rₙ − Rₙ₋₁)·Pₙ over the distinct scores from highest to lowest (tied scores form one step).
 * 0 when there is no positive.
 */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  if (labels.length !== n) throw new RangeError(`averagePrecision: ${n} scores but ${labels.length} labels`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i] === 1 ? 1 : 0;
  if (positives === 0) return 0;
  let tp = 0;
  let seen = 0;
  let previousRecall = 0;
  let ap = 0;
  for (let i = 0; i < n; ) {
    const score = scores[order[i]!]!;
    for (; i < n && scores[order[i]!]! === score; i++) {
      seen++;
      if (labels[order[i]!] === 1) tp++;
    }
    const recall = tp / positives;
    ap += (recall - previousRecall) * (tp / seen);
    previousRecall = recall;
  }
  return ap;
}

/** 0/1 predictions (flat, row-major n×k) from probabilities and thresholds: 1 when p ≥ threshold. */
export function applyThresholds(
  probabilities: Matrix,
  thresholds: number | readonly number[] = DEFAULT_THRESHOLD,
  genres: readonly string[] = GENRES,
): Uint8Array {
  const k = genres.length;
  const p = toProbabilities(probabilities, k);
  const t = expandThresholds(thresholds, k);
  const out = new Uint8Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = p[i]! >= t[i % k]! ? 1 : 0;
  return out;
}

/**
 * Multi-label evaluation of probabilities against 0/1 labels at the given thresholds.
 *
 * Conventions (scikit-learn with zero_division=0 unless `zeroDivision` says otherwise): a genre never
 * predicted has precision 0; a genre without positives has recall 0 and F1 0 (so it is left out of
 * the macro average, see below); F1 is 2·tp / (support + predicted), 0/0 → zeroDivision. Per-film
 * (samples) scores follow the same rule, so a film with no true and no predicted genre scores 0
 * (1 with zeroDivision: 1), as scikit-learn does.
 *
 * Macro averages differ from scikit-learn on purpose: they average only over genres with at least
 * one positive among the evaluated films. Genres with no example at all (four in this dataset)
 * would otherwise add a constant 0 and make scores incomparable across datasets.
 */
export function evaluateMultiLabel(options: EvaluateOptions): MultiLabelReport {
  const genres = [...(options.genres ?? GENRES)];
  const k = genres.length;
  const zd = options.zeroDivision ?? 0;
  const n = rowCount(options.probabilities, k, 'probabilities');
  const labelRows = rowCount(options.labels, k, 'labels');
  if (labelRows !== n) throw new RangeError(`probabilities have ${n} rows but labels have ${labelRows}`);
  if (n === 0) throw new RangeError('evaluateMultiLabel: no films to evaluate');
  const p = toProbabilities(options.probabilities, k);
  const y = toLabels(options.labels, k);
  const thresholds = expandThresholds(options.thresholds ?? DEFAULT_THRESHOLD, k);

  const tp = new Array<number>(k).fill(0);
  const predicted = new Array<number>(k).fill(0);
  const support = new Array<number>(k).fill(0);
  let exactRows = 0;
  let wrongCells = 0;
  const samples = { precision: 0, recall: 0, f1: 0 };
  for (let i = 0; i < n; i++) {
    let rowTp = 0;
    let rowTrue = 0;
    let rowPred = 0;
    for (let g = 0; g < k; g++) {
      const prob = p[i * k + g]!;
      const truth = y[i * k + g]!;
      const pred = prob >= thresholds[g]! ? 1 : 0;
      rowTrue += truth;
      rowPred += pred;
      if (pred && truth) rowTp++;
      if (pred !== truth) wrongCells++;
      support[g]! += truth;
      predicted[g]! += pred;
      tp[g]! += pred & truth;
    }
    if (rowTp === rowTrue && rowTp === rowPred) exactRows++;
    samples.precision += ratio(rowTp, rowPred, zd);
    samples.recall += ratio(rowTp, rowTrue, zd);
    samples.f1 += f1Of(rowTp, rowTrue, rowPred, zd);
  }

  const column = (g: number) => {
    const scores = new Float64Array(n);
    const truth = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      scores[i] = p[i * k + g]!;
      truth[i] = y[i * k + g]!;
    }
    return averagePrecision(scores, truth);
  };
  const perGenre: GenreMetrics[] = genres.map((genre, g) => ({
    genre,
    threshold: thresholds[g]!,
    precision: ratio(tp[g]!, predicted[g]!, zd),
    recall: ratio(tp[g]!, support[g]!, zd),
    f1: f1Of(tp[g]!, support[g]!, predicted[g]!, zd),
    support: support[g]!,
    predictedPositives: predicted[g]!,
    truePositives: tp[g]!,
    averagePrecision: column(g),
  }));

  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const tpAll = sum(tp);
  const predAll = sum(predicted);
  const supportAll = sum(support);
  const present = perGenre.filter((m) => m.support > 0);
  const mean = (key: 'precision' | 'recall' | 'f1' | 'averagePrecision') =>
    present.length ? sum(present.map((m) => m[key])) / present.length : zd;
  const weightedMean = (key: 'precision' | 'recall' | 'f1') =>
    supportAll ? sum(perGenre.map((m) => m[key] * m.support)) / supportAll : zd;

  return {
    films: n,
    genres,
    thresholds,
    perGenre,
    micro: {
      precision: ratio(tpAll, predAll, zd),
      recall: ratio(tpAll, supportAll, zd),
      f1: f1Of(tpAll, supportAll, predAll, zd),
      averagePrecision: averagePrecision(p, y),
    },
    macro: {
      precision: mean('precision'),
      recall: mean('recall'),
      f1: mean('f1'),
      averagePrecision: mean('averagePrecision'),
      genresAveraged: present.length,
    },
    macroAllGenres: {
      precision: sum(perGenre.map((m) => m.precision)) / k,
      recall: sum(perGenre.map((m) => m.recall)) / k,
      f1: sum(perGenre.map((m) => m.f1)) / k,
    },
    weighted: { precision: weightedMean('precision'), recall: weightedMean('recall'), f1: weightedMean('f1') },
    samples: { precision: samples.precision / n, recall: samples.recall / n, f1: samples.f1 / n },
    subsetAccuracy: exactRows / n,
    hammingLoss: wrongCells / (n * k),
    loss: binaryCrossEntropy(p, y),
  };
}

/**
 * Mean binary cross-entropy over every cell of flat n×k probabilities and 0/1 labels, probabilities
 * clipped to [ε, 1 − ε] as Keras does; with positiveWeights (one per column), each positive term is
 * scaled by its genre's weight (the class-weighted training objective).
 */
export function binaryCrossEntropy(probabilities: ArrayLike<number>, labels: ArrayLike<number>, positiveWeights?: readonly number[]): number {
  if (probabilities.length !== labels.length) throw new RangeError(`binaryCrossEntropy: ${probabilities.length} probabilities for ${labels.length} labels`);
  if (probabilities.length === 0) throw new RangeError('binaryCrossEntropy: no values');
  const k = positiveWeights?.length ?? 1;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(Math.max(probabilities[i]!, LOSS_EPSILON), 1 - LOSS_EPSILON);
    sum -= labels[i] ? Math.log(p) * (positiveWeights?.[i % k] ?? 1) : Math.log(1 - p);
  }
  return sum / labels.length;
}
