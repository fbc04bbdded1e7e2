import { score, SHARED_GRID } from './metrics.js';

/**
 * Fusion of members' out-of-fold probabilities, each fold's combination fitted on the other folds
 * only (nested), so no film's fused probability comes from weights fitted on that film.
 */

const logit = (p: number) => {
  const q = Math.min(1 - 1e-6, Math.max(1e-6, p));
  return Math.log(q / (1 - q));
};
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

function foldRows(folds: Int32Array, f: number): { fit: number[]; held: number[] } {
  const fit: number[] = [];
  const held: number[] = [];
  for (let i = 0; i < folds.length; i++) (folds[i] === f ? held : fit).push(i);
  return { fit, held };
}

/**
 * Late fusion of two members: w·a + (1 − w)·b, w on a 0.05 grid; per outer fold, w (with its best
 * shared threshold) maximises micro-F1 on the other folds. Returns the fused probabilities and the
 * weight chosen for each fold.
 */
export function lateFusion(a: Float32Array, b: Float32Array, labels: Uint8Array, k: number, folds: Int32Array): { fused: Float32Array; weights: number[] } {
  const fused = new Float32Array(a.length);
  const weights: number[] = [];
  const numFolds = Math.max(...folds) + 1;
  const grid = Array.from({ length: 21 }, (_, i) => i / 20);
  const mix = new Float32Array(a.length);
  for (let f = 0; f < numFolds; f++) {
    const { fit, held } = foldRows(folds, f);
    let bestW = 0.5;
    let bestF1 = -1;
    for (const w of grid) {
      for (const i of fit) for (let g = 0; g < k; g++) mix[i * k + g] = w * a[i * k + g]! + (1 - w) * b[i * k + g]!;
      for (const t of SHARED_GRID) {
        const f1 = score(mix, labels, k, new Array<number>(k).fill(t), fit).microF1;
        if (f1 > bestF1) {
          bestF1 = f1;
          bestW = w;
        }
      }
    }
    weights.push(bestW);
    for (const i of held) for (let g = 0; g < k; g++) fused[i * k + g] = bestW * a[i * k + g]! + (1 - bestW) * b[i * k + g]!;
  }
  return { fused, weights };
}

/** L2-regularised logistic regression by Newton's method (IRLS); returns [bias, w…]. */
export function fitLogistic(x: Float64Array, y: Float64Array, rows: number, dim: number, l2: number, iterations = 25): Float64Array {
  const p = dim + 1;
  const beta = new Float64Array(p);
  for (let it = 0; it < iterations; it++) {
    const grad = new Float64Array(p);
    const hess = new Float64Array(p * p);
    for (let r = 0; r < rows; r++) {
      let z = beta[0]!;
      for (let d = 0; d < dim; d++) z += beta[d + 1]! * x[r * dim + d]!;
      const mu = sigmoid(z);
      const wgt = Math.max(mu * (1 - mu), 1e-9);
      const err = mu - y[r]!;
      for (let a = 0; a < p; a++) {
        const xa = a === 0 ? 1 : x[r * dim + a - 1]!;
        grad[a]! += err * xa;
        for (let b = a; b < p; b++) hess[a * p + b]! += wgt * xa * (b === 0 ? 1 : x[r * dim + b - 1]!);
      }
    }
    for (let a = 1; a < p; a++) {
      grad[a]! += l2 * beta[a]!;
      hess[a * p + a]! += l2;
    }
    for (let a = 0; a < p; a++) for (let b = 0; b < a; b++) hess[a * p + b] = hess[b * p + a]!;
    hess[0]! += 1e-9;
    const step = solve(hess, grad, p);
    let change = 0;
    for (let a = 0; a < p; a++) {
      beta[a]! -= step[a]!;
      change = Math.max(change, Math.abs(step[a]!));
    }
    if (change < 1e-6) break;
  }
  return beta;
}

/** Gaussian elimination with partial pivoting (small dense systems). */
function solve(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const v = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]!) > Math.abs(m[pivot * n + c]!)) pivot = r;
    if (pivot !== c) {
      for (let j = 0; j < n; j++) [m[c * n + j], m[pivot * n + j]] = [m[pivot * n + j]!, m[c * n + j]!];
      [v[c], v[pivot]] = [v[pivot]!, v[c]!];
    }
    const d = m[c * n + c]! || 1e-12;
    for (let r = c + 1; r < n; r++) {
      const factor = m[r * n + c]! / d;
      if (factor === 0) continue;
      for (let j = c; j < n; j++) m[r * n + j]! -= factor * m[c * n + j]!;
      v[r]! -= factor * v[c]!;
    }
  }
  const out = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let s = v[r]!;
    for (let j = r + 1; j < n; j++) s -= m[r * n + j]! * out[j]!;
    out[r] = s / (m[r * n + r]! || 1e-12);
  }
  return out;
}

/**
 * Stacking: per genre, a logistic regression over the members' out-of-fold logits — of that genre
 * only ('genre'), or of all genres ('all', lets one genre's score inform another) — fitted per outer
 * fold on the other folds' rows.
 */
export function stack(members: readonly Float32Array[], labels: Uint8Array, k: number, folds: Int32Array, inputs: 'genre' | 'all', l2 = 1): Float32Array {
  const n = folds.length;
  const dim = inputs === 'genre' ? members.length : members.length * k;
  const numFolds = Math.max(...folds) + 1;
  const out = new Float32Array(n * k);
  const features = (i: number, g: number, into: Float64Array, at: number) => {
    if (inputs === 'genre') members.forEach((m, j) => (into[at + j] = logit(m[i * k + g]!)));
    else members.forEach((m, j) => {
      for (let h = 0; h < k; h++) into[at + j * k + h] = logit(m[i * k + h]!);
    });
  };
  for (let f = 0; f < numFolds; f++) {
    const { fit, held } = foldRows(folds, f);
    for (let g = 0; g < k; g++) {
      const x = new Float64Array(fit.length * dim);
      const y = new Float64Array(fit.length);
      let positives = 0;
      fit.forEach((i, r) => {
        features(i, g, x, r * dim);
        y[r] = labels[i * k + g]!;
        positives += y[r]!;
      });
      if (positives === 0) {
        // No positive to learn from: keep the members' mean, which is ≈ 0 for such a genre.
        for (const i of held) out[i * k + g] = members.reduce((s, m) => s + m[i * k + g]!, 0) / members.length;
        continue;
      }
      const beta = fitLogistic(x, y, fit.length, dim, l2);
      const row = new Float64Array(dim);
      for (const i of held) {
        features(i, g, row, 0);
        let z = beta[0]!;
        for (let d = 0; d < dim; d++) z += beta[d + 1]! * row[d]!;
        out[i * k + g] = sigmoid(z);
      }
    }
  }
  return out;
}

/** Plain average of members' probabilities (no fitted weight). */
export function average(members: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(members[0]!.length);
  for (const m of members) for (let i = 0; i < out.length; i++) out[i]! += m[i]! / members.length;
  return out;
}
