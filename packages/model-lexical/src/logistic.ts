import { yieldToEventLoop } from '@filmgenre/core';
import type { SparseRows } from './tfidf.js';

/** One logistic regression per genre over the same sparse rows: z = x·W[:, g] + bias[g]. */
export interface GenreLogistic {
  dim: number;
  numGenres: number;
  /** dim × numGenres, row-major by column of x (one term's weights for every genre are adjacent). */
  weights: Float32Array;
  bias: Float32Array;
}

export interface FitLogisticOptions {
  /** Inverse L2 strength: minimises Σ log-loss + ‖w‖² / (2C) (the bias is not penalised). */
  c: number;
  /** L-BFGS iterations at most, per genre (default 500). */
  maxIterations?: number;
  /** Stop when the largest gradient entry falls below this share of the number of rows (default 1e-4: out of fold as good as 1e-6, at a third of the time). */
  tolerance?: number;
  /** Checked between genres: a stop request ends the fit with `onStop`'s error. */
  signal?: AbortSignal;
  onStop?: () => Error;
  /** Called after each genre, for progress. */
  onGenre?: (done: number, total: number) => void;
}

/** σ(z), without overflow for large |z|. */
export const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
/** log(1 + e^z), without overflow. */
const softplus = (z: number) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));

/** Objective and gradient of one genre's regularised log-loss at θ = (w, b): b is θ[dim]. */
function evaluate(x: SparseRows, y: Float32Array, inverseC: number, theta: Float64Array, gradient: Float64Array): number {
  const { dim, start, columns, values } = x;
  const bias = theta[dim]!;
  gradient.fill(0);
  let loss = 0;
  let biasGradient = 0;
  for (let i = 0; i < x.rows; i++) {
    let z = bias;
    for (let p = start[i]!; p < start[i + 1]!; p++) z += values[p]! * theta[columns[p]!]!;
    loss += softplus(z) - y[i]! * z;
    const residual = sigmoid(z) - y[i]!;
    biasGradient += residual;
    for (let p = start[i]!; p < start[i + 1]!; p++) gradient[columns[p]!]! += residual * values[p]!;
  }
  let penalty = 0;
  for (let j = 0; j < dim; j++) {
    penalty += theta[j]! * theta[j]!;
    gradient[j]! += inverseC * theta[j]!;
  }
  gradient[dim] = biasGradient;
  return loss + 0.5 * inverseC * penalty;
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/**
 * Minimises one genre's convex objective by L-BFGS (10 remembered steps) with a backtracking line
 * search; returns θ = (w, b). It starts from the bias of the genre's base rate and w = 0.
 */
function fitOneGenre(x: SparseRows, y: Float32Array, options: Required<Pick<FitLogisticOptions, 'c' | 'maxIterations' | 'tolerance'>>): Float64Array {
  const n = x.rows;
  const size = x.dim + 1;
  const inverseC = 1 / options.c;
  const theta = new Float64Array(size);
  const positives = y.reduce((s, v) => s + v, 0);
  const rate = Math.min(1 - 1e-3, Math.max(1e-3, positives / n));
  theta[x.dim] = Math.log(rate / (1 - rate));
  // One class only: the unpenalised bias would run off to infinity; the clipped base rate stands.
  if (positives === 0 || positives === n) return theta;
  let gradient = new Float64Array(size);
  let value = evaluate(x, y, inverseC, theta, gradient);
  const memory = 10;
  const steps: Float64Array[] = [];
  const changes: Float64Array[] = [];
  const rhos: number[] = [];
  const direction = new Float64Array(size);
  const candidate = new Float64Array(size);
  let candidateGradient = new Float64Array(size);
  const alphas = new Array<number>(memory);
  const stopAt = options.tolerance * n;
  for (let iteration = 0; iteration < options.maxIterations; iteration++) {
    let largest = 0;
    for (let j = 0; j < size; j++) largest = Math.max(largest, Math.abs(gradient[j]!));
    if (largest <= stopAt) break;
    // Two-loop recursion: direction = −H·gradient.
    for (let j = 0; j < size; j++) direction[j] = -gradient[j]!;
    for (let m = steps.length - 1; m >= 0; m--) {
      alphas[m] = rhos[m]! * dot(steps[m]!, direction);
      const change = changes[m]!;
      for (let j = 0; j < size; j++) direction[j]! -= alphas[m]! * change[j]!;
    }
    const last = steps.length - 1;
    const scale = last >= 0 ? dot(steps[last]!, changes[last]!) / dot(changes[last]!, changes[last]!) : 1 / Math.max(largest, 1);
    for (let j = 0; j < size; j++) direction[j]! *= scale;
    for (let m = 0; m < steps.length; m++) {
      const beta = rhos[m]! * dot(changes[m]!, direction);
      const step = steps[m]!;
      for (let j = 0; j < size; j++) direction[j]! += (alphas[m]! - beta) * step[j]!;
    }
    let slope = dot(gradient, direction);
    if (slope >= 0) {
      // Not a descent direction (curvature lost to rounding): restart from steepest descent.
      steps.length = changes.length = rhos.length = 0;
      for (let j = 0; j < size; j++) direction[j] = -gradient[j]! / Math.max(largest, 1);
      slope = dot(gradient, direction);
    }
    let t = 1;
    let next = value;
    for (let tries = 0; tries < 40; tries++, t /= 2) {
      for (let j = 0; j < size; j++) candidate[j] = theta[j]! + t * direction[j]!;
      next = evaluate(x, y, inverseC, candidate, candidateGradient);
      if (next <= value + 1e-4 * t * slope) break;
    }
    if (!(next < value)) break;
    const step = new Float64Array(size);
    const change = new Float64Array(size);
    for (let j = 0; j < size; j++) {
      step[j] = candidate[j]! - theta[j]!;
      change[j] = candidateGradient[j]! - gradient[j]!;
    }
    const curvature = dot(step, change);
    if (curvature > 1e-12) {
      if (steps.length === memory) {
        steps.shift();
        changes.shift();
        rhos.shift();
      }
      steps.push(step);
      changes.push(change);
      rhos.push(1 / curvature);
    }
    theta.set(candidate);
    [gradient, candidateGradient] = [candidateGradient, gradient];
    const decrease = value - next;
    value = next;
    if (decrease <= 1e-10 * Math.max(1, Math.abs(value))) break;
  }
  return theta;
}

/**
 * One L2-regularised logistic regression per genre on sparse rows (`labels`: rows × numGenres 0/1).
 * A genre without positives (or without negatives) gets w = 0 and the bias of its clipped base rate.
 * Yields to the event loop between genres, so a stop request is seen within one genre's fit.
 */
export async function fitGenreLogistic(x: SparseRows, labels: Float32Array, numGenres: number, options: FitLogisticOptions): Promise<GenreLogistic> {
  if (labels.length !== x.rows * numGenres) throw new RangeError(`labels hold ${labels.length / numGenres} rows, the features ${x.rows}`);
  if (!(options.c > 0)) throw new RangeError(`c must be positive, got ${options.c}`);
  const weights = new Float32Array(x.dim * numGenres);
  const bias = new Float32Array(numGenres);
  const y = new Float32Array(x.rows);
  const settings = { c: options.c, maxIterations: options.maxIterations ?? 500, tolerance: options.tolerance ?? 1e-4 };
  for (let g = 0; g < numGenres; g++) {
    await yieldToEventLoop();
    if (options.signal?.aborted) throw options.onStop?.() ?? new Error('stopped');
    for (let i = 0; i < x.rows; i++) y[i] = labels[i * numGenres + g]!;
    const theta = fitOneGenre(x, y, settings);
    for (let j = 0; j < x.dim; j++) weights[j * numGenres + g] = theta[j]!;
    bias[g] = theta[x.dim]!;
    options.onGenre?.(g + 1, numGenres);
  }
  return { dim: x.dim, numGenres, weights, bias };
}

/** The rows' logits, rows × numGenres. */
export function genreLogits(model: GenreLogistic, x: SparseRows): Float32Array {
  if (x.dim !== model.dim) throw new RangeError(`features have ${x.dim} columns, the model ${model.dim}`);
  const k = model.numGenres;
  const out = new Float32Array(x.rows * k);
  for (let i = 0; i < x.rows; i++) {
    const row = out.subarray(i * k, (i + 1) * k);
    row.set(model.bias);
    for (let p = x.start[i]!; p < x.start[i + 1]!; p++) {
      const v = x.values[p]!;
      const at = x.columns[p]! * k;
      for (let g = 0; g < k; g++) row[g]! += v * model.weights[at + g]!;
    }
  }
  return out;
}

/** The rows' genre probabilities, σ(logits). */
export function genreProbabilities(model: GenreLogistic, x: SparseRows): Float32Array {
  return genreLogits(model, x).map(sigmoid);
}
