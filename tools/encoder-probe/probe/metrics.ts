/**
 * Multi-label scores of out-of-fold probabilities and threshold choices, all on plain Float32Arrays
 * (n × k, row-major). Macro-F1 is given two ways: over the genres with at least one positive film in
 * the scored rows ("present"), and over all k genres, where a genre with no positives and no
 * predictions scores 0 (scikit-learn's `average='macro'`).
 */
export interface Scores {
  microF1: number;
  macroF1Present: number;
  macroF1All: number;
  microPrecision: number;
  microRecall: number;
  /** F1 per genre (NaN where the genre has no positive film in the rows). */
  perGenre: number[];
}

export function score(probabilities: Float32Array, labels: Uint8Array, k: number, thresholds: ArrayLike<number>, rows?: readonly number[]): Scores {
  const n = labels.length / k;
  const tp = new Float64Array(k);
  const fp = new Float64Array(k);
  const fn = new Float64Array(k);
  const visit = (i: number) => {
    for (let g = 0; g < k; g++) {
      const p = probabilities[i * k + g]! >= thresholds[g]!;
      const y = labels[i * k + g] === 1;
      if (p && y) tp[g]++;
      else if (p) fp[g]++;
      else if (y) fn[g]++;
    }
  };
  if (rows) for (const i of rows) visit(i);
  else for (let i = 0; i < n; i++) visit(i);
  let TP = 0;
  let FP = 0;
  let FN = 0;
  const perGenre: number[] = [];
  let presentSum = 0;
  let present = 0;
  let allSum = 0;
  for (let g = 0; g < k; g++) {
    TP += tp[g]!;
    FP += fp[g]!;
    FN += fn[g]!;
    const denom = 2 * tp[g]! + fp[g]! + fn[g]!;
    const f1 = denom > 0 ? (2 * tp[g]!) / denom : 0;
    allSum += f1;
    if (tp[g]! + fn[g]! > 0) {
      presentSum += f1;
      present++;
      perGenre.push(f1);
    } else perGenre.push(Number.NaN);
  }
  return {
    microF1: TP + FP + FN > 0 ? (2 * TP) / (2 * TP + FP + FN) : 0,
    microPrecision: TP + FP > 0 ? TP / (TP + FP) : 0,
    microRecall: TP + FN > 0 ? TP / (TP + FN) : 0,
    macroF1Present: present > 0 ? presentSum / present : 0,
    macroF1All: allSum / k,
    perGenre,
  };
}

export const SHARED_GRID = Array.from({ length: 69 }, (_, i) => Math.round((0.02 + i * 0.01) * 100) / 100);
export const GENRE_GRID = Array.from({ length: 19 }, (_, i) => Math.round((0.05 + i * 0.05) * 100) / 100);

/** The shared threshold with the best micro-F1 on the rows. */
export function tuneShared(probabilities: Float32Array, labels: Uint8Array, k: number, rows: readonly number[]): number {
  let best = 0.3;
  let bestF1 = -1;
  for (const t of SHARED_GRID) {
    const f1 = score(probabilities, labels, k, new Array(k).fill(t), rows).microF1;
    if (f1 > bestF1) {
      bestF1 = f1;
      best = t;
    }
  }
  return best;
}

/**
 * Per-genre thresholds. 'f1': each genre's own F1 (helps macro-F1), genres with fewer than
 * `minSupport` positives keep the shared threshold. 'micro': coordinate ascent on pooled micro-F1
 * from the shared threshold (two rounds).
 */
export function tunePerGenre(probabilities: Float32Array, labels: Uint8Array, k: number, rows: readonly number[],
  objective: 'f1' | 'micro', minSupport = 10): number[] {
  const shared = tuneShared(probabilities, labels, k, rows);
  const thresholds = new Array<number>(k).fill(shared);
  if (objective === 'f1') {
    for (let g = 0; g < k; g++) {
      let support = 0;
      for (const i of rows) support += labels[i * k + g]!;
      if (support < minSupport) continue;
      let bestF1 = -1;
      for (const t of GENRE_GRID) {
        let tp = 0;
        let fp = 0;
        let fn = 0;
        for (const i of rows) {
          const p = probabilities[i * k + g]! >= t;
          const y = labels[i * k + g] === 1;
          if (p && y) tp++;
          else if (p) fp++;
          else if (y) fn++;
        }
        const f1 = (2 * tp) / Math.max(1, 2 * tp + fp + fn);
        if (f1 > bestF1) {
          bestF1 = f1;
          thresholds[g] = t;
        }
      }
    }
    return thresholds;
  }
  for (let round = 0; round < 2; round++) {
    for (let g = 0; g < k; g++) {
      let best = thresholds[g]!;
      let bestF1 = score(probabilities, labels, k, thresholds, rows).microF1;
      for (const t of GENRE_GRID) {
        thresholds[g] = t;
        const f1 = score(probabilities, labels, k, thresholds, rows).microF1;
        if (f1 > bestF1 + 1e-9) {
          bestF1 = f1;
          best = t;
        }
      }
      thresholds[g] = best;
    }
  }
  return thresholds;
}

export const THRESHOLD_MODES = ['shared', 'per-genre-f1', 'per-genre-micro'] as const;
export type ThresholdMode = (typeof THRESHOLD_MODES)[number];

/**
 * Nested threshold choice: each fold's films are thresholded with values tuned on the other folds'
 * out-of-fold probabilities, so no film is scored with a threshold fitted on itself. Returns the 0/1
 * decisions encoded as probabilities ≥ 0.5 (1) or 0, so `score(…, 0.5)` scores them.
 */
export function nestedThresholdDecisions(probabilities: Float32Array, labels: Uint8Array, k: number, folds: Int32Array, mode: ThresholdMode): Float32Array {
  const n = folds.length;
  const numFolds = Math.max(...folds) + 1;
  const out = new Float32Array(n * k);
  for (let f = 0; f < numFolds; f++) {
    const tuneRows: number[] = [];
    const scoreRows: number[] = [];
    for (let i = 0; i < n; i++) (folds[i] === f ? scoreRows : tuneRows).push(i);
    const thresholds = mode === 'shared'
      ? new Array<number>(k).fill(tuneShared(probabilities, labels, k, tuneRows))
      : tunePerGenre(probabilities, labels, k, tuneRows, mode === 'per-genre-f1' ? 'f1' : 'micro');
    for (const i of scoreRows) for (let g = 0; g < k; g++) out[i * k + g] = probabilities[i * k + g]! >= thresholds[g]! ? 1 : 0;
  }
  return out;
}

/** Scores under every threshold mode (nested), plus the shared threshold tuned on all rows (in-sample, 1 parameter). */
export function scoreAllModes(probabilities: Float32Array, labels: Uint8Array, k: number, folds: Int32Array):
  Record<ThresholdMode | 'shared-in-sample', Scores> & { sharedThreshold: number } {
  const all = Array.from({ length: folds.length }, (_, i) => i);
  const sharedThreshold = tuneShared(probabilities, labels, k, all);
  const half = new Array<number>(k).fill(0.5);
  return {
    sharedThreshold,
    'shared-in-sample': score(probabilities, labels, k, new Array<number>(k).fill(sharedThreshold)),
    shared: score(nestedThresholdDecisions(probabilities, labels, k, folds, 'shared'), labels, k, half),
    'per-genre-f1': score(nestedThresholdDecisions(probabilities, labels, k, folds, 'per-genre-f1'), labels, k, half),
    'per-genre-micro': score(nestedThresholdDecisions(probabilities, labels, k, folds, 'per-genre-micro'), labels, k, half),
  };
}
