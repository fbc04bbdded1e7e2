import { GENRES, NUM_GENRES } from '@filmgenre/core';
import { evaluateMultiLabel } from './evaluate.js';
import { rowCount, toLabels, toProbabilities, type Matrix } from './matrix.js';

/**
 * The thresholds every tuner chooses among: 0.02, 0.03, …, 0.90. On the default run's out-of-fold
 * predictions (trainer's folds, thresholds tuned on the other folds) it matched or beat 0.05…0.95 by
 * 0.05 for the shared threshold of every model, and every other grid compared (docs/benchmarks/encoders.md).
 */
export const THRESHOLD_GRID: readonly number[] = Array.from({ length: 89 }, (_, i) => (i + 2) / 100);

export interface TuneGlobalOptions {
  /** Candidate thresholds; default THRESHOLD_GRID (tests give small hand-made grids). */
  grid?: readonly number[];
  /** Genre names in column order (their count is k); default GENRES. */
  genres?: readonly string[];
  /** Number of genres k when names are not needed; must agree with `genres` if both are given. */
  numGenres?: number;
}

export interface GlobalThresholdResult {
  threshold: number;
  microF1: number;
  /** micro-F1 at every grid threshold, in ascending threshold order. */
  curve: { threshold: number; microF1: number }[];
}

export interface TunePerGenreOptions extends TuneGlobalOptions {
  /**
   * Genres with fewer positive films than this in the tuning data keep the fallback threshold.
   * Default 20: on the seed-0 validation split (1,059 films) that leaves Western (12), Musical (14),
   * War (17) and the genres without any example on the fallback.
   */
  minSupport?: number;
  /** Threshold of the genres that are not tuned; default: the tuned global threshold (micro-F1) on the same data. */
  fallback?: number;
}

export interface GenreThreshold {
  genre: string;
  threshold: number;
  /** This genre's F1 on the tuning data at `threshold`. */
  f1: number;
  support: number;
  tuned: boolean;
  /** Why the fallback was used, when it was. */
  reason?: string;
}

export interface PerGenreThresholdResult {
  /** One threshold per genre, in column order: pass to evaluateMultiLabel / applyThresholds. */
  thresholds: number[];
  fallback: number;
  perGenre: GenreThreshold[];
}

interface Counts {
  k: number;
  grid: number[];
  /** [gridIndex * k + genre] */
  tp: Int32Array;
  predicted: Int32Array;
  support: Int32Array;
}

function checkGrid(grid: readonly number[]): number[] {
  if (grid.length === 0) throw new RangeError('threshold grid is empty');
  for (const t of grid) if (!Number.isFinite(t)) throw new RangeError(`threshold grid holds ${t}`);
  return [...new Set(grid)].sort((a, b) => a - b);
}

function genreCount(options: TuneGlobalOptions): number {
  const { genres, numGenres } = options;
  if (genres && numGenres !== undefined && genres.length !== numGenres) {
    throw new RangeError(`numGenres ${numGenres} disagrees with the ${genres.length} genres given`);
  }
  const k = genres?.length ?? numGenres ?? GENRES.length;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`numGenres must be a positive integer, got ${k}`);
  return k;
}

function countAtThresholds(probabilities: Matrix, labels: Matrix, options: TuneGlobalOptions, extra: number[] = []): Counts {
  const k = genreCount(options);
  const n = rowCount(probabilities, k, 'probabilities');
  if (rowCount(labels, k, 'labels') !== n) throw new RangeError('probabilities and labels have different numbers of rows');
  if (n === 0) throw new RangeError('threshold tuning needs at least one film');
  const p = toProbabilities(probabilities, k);
  const y = toLabels(labels, k);
  const grid = [...checkGrid(options.grid ?? THRESHOLD_GRID), ...extra];
  // A value counts at every threshold ≤ it: one binary search bins it among the sorted thresholds,
  // then sums from the top give every threshold's counts. O(n·k·log|grid|) rather than one pass over
  // all values per threshold, which made a fusion's cross-validation block the process for seconds.
  const sorted = [...new Set(grid)].sort((a, b) => a - b);
  const m = sorted.length;
  const binPredicted = new Int32Array((m + 1) * k);
  const binTp = new Int32Array((m + 1) * k);
  const support = new Int32Array(k);
  for (let row = 0; row < p.length; row += k) {
    for (let g = 0; g < k; g++) {
      const value = p[row + g]!;
      let lo = 0;
      let hi = m;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid]! <= value) lo = mid + 1;
        else hi = mid;
      }
      // `lo` thresholds are ≤ value.
      binPredicted[lo * k + g]!++;
      binTp[lo * k + g]! += y[row + g]!;
      support[g]! += y[row + g]!;
    }
  }
  // at[j]: counts of values ≥ sorted[j], i.e. in bins j + 1 … m.
  const atPredicted = new Int32Array(m * k);
  const atTp = new Int32Array(m * k);
  for (let j = m - 1; j >= 0; j--) {
    for (let g = 0; g < k; g++) {
      atPredicted[j * k + g] = binPredicted[(j + 1) * k + g]! + (j + 1 < m ? atPredicted[(j + 1) * k + g]! : 0);
      atTp[j * k + g] = binTp[(j + 1) * k + g]! + (j + 1 < m ? atTp[(j + 1) * k + g]! : 0);
    }
  }
  const tp = new Int32Array(grid.length * k);
  const predicted = new Int32Array(grid.length * k);
  grid.forEach((t, j) => {
    const at = sorted.indexOf(t);
    tp.set(atTp.subarray(at * k, (at + 1) * k), j * k);
    predicted.set(atPredicted.subarray(at * k, (at + 1) * k), j * k);
  });
  return { k, grid, tp, predicted, support };
}

const f1 = (tp: number, support: number, predicted: number) => (support + predicted === 0 ? 0 : (2 * tp) / (support + predicted));

/**
 * The grid threshold, shared by all genres, that maximises micro-F1 on these films (e.g. validation).
 * Ties go to the lowest threshold.
 */
export function tuneGlobalThreshold(probabilities: Matrix, labels: Matrix, options: TuneGlobalOptions = {}): GlobalThresholdResult {
  const { k, grid, tp, predicted, support } = countAtThresholds(probabilities, labels, options);
  const supportAll = support.reduce((a, b) => a + b, 0);
  const curve = grid.map((threshold, j) => {
    let tpAll = 0;
    let predAll = 0;
    for (let g = 0; g < k; g++) {
      tpAll += tp[j * k + g]!;
      predAll += predicted[j * k + g]!;
    }
    return { threshold, microF1: f1(tpAll, supportAll, predAll) };
  });
  const best = curve.reduce((a, b) => (b.microF1 > a.microF1 ? b : a));
  return { threshold: best.threshold, microF1: best.microF1, curve };
}

/**
 * One threshold per genre, each maximising that genre's F1 on these films (ties → lowest threshold).
 * Rare genres overfit badly when tuned on a handful of positives, so genres with fewer than
 * `minSupport` positives, or whose best F1 is 0, keep the fallback (by default the global
 * micro-F1 threshold).
 */
export function tunePerGenreThresholds(
  probabilities: Matrix,
  labels: Matrix,
  options: TunePerGenreOptions = {},
): PerGenreThresholdResult {
  const k = genreCount(options);
  // Without names (numGenres only) genres are reported by column number.
  const genres = options.genres ?? (k === GENRES.length ? GENRES : Array.from({ length: k }, (_, g) => String(g)));
  const minSupport = options.minSupport ?? 20;
  if (!(minSupport >= 1)) throw new RangeError(`minSupport must be at least 1, got ${minSupport}`);
  const fallback = options.fallback ?? tuneGlobalThreshold(probabilities, labels, options).threshold;
  if (!Number.isFinite(fallback)) throw new RangeError(`fallback threshold is ${fallback}`);
  // The fallback need not lie on the grid: count it as one more (last) threshold, searched by nobody.
  const { grid, tp, predicted, support } = countAtThresholds(probabilities, labels, options, [fallback]);
  const searched = grid.length - 1;
  const fallbackF1 = (g: number) => f1(tp[searched * k + g]!, support[g]!, predicted[searched * k + g]!);
  const perGenre: GenreThreshold[] = genres.map((genre, g) => {
    const s = support[g]!;
    if (s < minSupport) {
      return { genre, threshold: fallback, f1: fallbackF1(g), support: s, tuned: false, reason: `${s} positive(s) < minSupport ${minSupport}` };
    }
    let bestJ = 0;
    let bestF1 = -1;
    for (let j = 0; j < searched; j++) {
      const score = f1(tp[j * k + g]!, s, predicted[j * k + g]!);
      if (score > bestF1) {
        bestF1 = score;
        bestJ = j;
      }
    }
    if (bestF1 <= 0) {
      return { genre, threshold: fallback, f1: fallbackF1(g), support: s, tuned: false, reason: 'F1 is 0 at every grid threshold' };
    }
    return { genre, threshold: grid[bestJ]!, f1: bestF1, support: s, tuned: true };
  });
  return { thresholds: perGenre.map((t) => t.threshold), fallback, perGenre };
}

export interface MicroF1ThresholdResult {
  thresholds: number[];
  /** Micro-F1 on the tuning data with these thresholds. */
  microF1: number;
  /** Micro-F1 with the best shared threshold, where the search started. */
  startMicroF1: number;
}

/**
 * Per-genre thresholds that maximise micro-F1 (not each genre's own F1): coordinate ascent from the
 * best shared threshold, each genre moved to the grid value that most improves the pooled F1 given
 * the others. Maximising each genre's F1 instead pushes weak genres' thresholds down until they
 * predict nearly everything, which costs micro-F1 and generalises poorly from a small validation split.
 * Genres with fewer than `minSupport` positives keep the shared threshold.
 */
export function tuneThresholdsForMicroF1(probabilities: Matrix, labels: Matrix, options: TunePerGenreOptions & { rounds?: number } = {}): MicroF1ThresholdResult {
  const { k, grid, tp, predicted, support } = countAtThresholds(probabilities, labels, options);
  const minSupport = options.minSupport ?? 20;
  const totalSupport = support.reduce((a, b) => a + b, 0);
  const microF1 = (tpSum: number, predictedSum: number) => (totalSupport + predictedSum === 0 ? 0 : (2 * tpSum) / (totalSupport + predictedSum));
  // Start: the shared threshold with the best micro-F1 (lowest on ties).
  let startJ = 0;
  let startScore = -1;
  for (let j = 0; j < grid.length; j++) {
    let tpSum = 0;
    let predictedSum = 0;
    for (let g = 0; g < k; g++) {
      tpSum += tp[j * k + g]!;
      predictedSum += predicted[j * k + g]!;
    }
    const score = microF1(tpSum, predictedSum);
    if (score > startScore) {
      startScore = score;
      startJ = j;
    }
  }
  const chosen = new Array<number>(k).fill(startJ);
  let tpSum = chosen.reduce((s, j, g) => s + tp[j * k + g]!, 0);
  let predictedSum = chosen.reduce((s, j, g) => s + predicted[j * k + g]!, 0);
  for (let round = 0; round < (options.rounds ?? 3); round++) {
    let changed = false;
    for (let g = 0; g < k; g++) {
      if (support[g]! < minSupport) continue;
      const current = chosen[g]!;
      const baseTp = tpSum - tp[current * k + g]!;
      const basePredicted = predictedSum - predicted[current * k + g]!;
      let bestJ = current;
      let bestScore = microF1(tpSum, predictedSum);
      for (let j = 0; j < grid.length; j++) {
        const score = microF1(baseTp + tp[j * k + g]!, basePredicted + predicted[j * k + g]!);
        if (score > bestScore + 1e-12) {
          bestScore = score;
          bestJ = j;
        }
      }
      if (bestJ !== current) {
        chosen[g] = bestJ;
        tpSum = baseTp + tp[bestJ * k + g]!;
        predictedSum = basePredicted + predicted[bestJ * k + g]!;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return { thresholds: chosen.map((j) => grid[j]!), microF1: microF1(tpSum, predictedSum), startMicroF1: startScore };
}

/**
 * How far 'shrunk' moves each genre from the shared threshold toward its own best: 0.25. Chosen by
 * cross-validation on the default stack's out-of-fold predictions (trainer's folds, thresholds tuned
 * on the other folds) among 0, 0.125, …, 1: micro-F1 as the shared threshold's, most of per-genre's
 * macro-F1 gain (docs/benchmarks/encoders.md).
 */
export const THRESHOLD_SHRINKAGE = 0.25;

/**
 * Per-genre thresholds shrunk toward the shared one: t_g = t + λ·(t_g* − t), with t the best shared
 * threshold (micro-F1) and t_g* the genre's own best (as tunePerGenreThresholds, rare genres on t).
 * λ = 0 is the shared threshold, λ = 1 the per-genre ones; in between, a genre's threshold moves
 * toward its F1 optimum by a share small enough that its noise does not cost micro-F1.
 */
export function tuneShrunkThresholds(probabilities: Matrix, labels: Matrix, options: TunePerGenreOptions & { shrinkage?: number } = {}): number[] {
  const shrinkage = options.shrinkage ?? THRESHOLD_SHRINKAGE;
  if (!(shrinkage >= 0 && shrinkage <= 1)) throw new RangeError(`shrinkage must lie in [0, 1], got ${shrinkage}`);
  const { thresholds, fallback } = tunePerGenreThresholds(probabilities, labels, options);
  return thresholds.map((t) => fallback + shrinkage * (t - fallback));
}

export const THRESHOLD_STRATEGIES = ['shared', 'micro', 'per-genre', 'shrunk'] as const;
export type ThresholdStrategy = (typeof THRESHOLD_STRATEGIES)[number];

/**
 * Per-genre decision thresholds from held-out probabilities (n × 25). 'shared': one threshold for
 * every genre, the best pooled micro-F1 (the cross-validated evidence's best for micro-F1, and the
 * hardest to overfit); 'micro': one per genre, tuned together for pooled micro-F1; 'per-genre': each
 * genre's own F1 (higher macro-F1, but weak genres end up predicted for many films, which costs
 * micro-F1); 'shrunk': per-genre pulled most of the way back to shared (tuneShrunkThresholds).
 */
export function tuneThresholds(probabilities: Float32Array, labels: Float32Array, strategy: ThresholdStrategy): number[] {
  const options = { numGenres: NUM_GENRES };
  if (strategy === 'shared') return new Array<number>(NUM_GENRES).fill(tuneGlobalThreshold(probabilities, labels, options).threshold);
  if (strategy === 'shrunk') return tuneShrunkThresholds(probabilities, labels, options);
  return (strategy === 'micro' ? tuneThresholdsForMicroF1 : tunePerGenreThresholds)(probabilities, labels, options).thresholds;
}

function pickRows(source: Float32Array, k: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * k);
  rows.forEach((r, i) => out.set(source.subarray(r * k, (r + 1) * k), i * k));
  return out;
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
