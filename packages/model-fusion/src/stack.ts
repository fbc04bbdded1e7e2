import { z } from 'zod';

/**
 * Stacked fusion: for each genre, a logistic regression over the members' logits for that genre,
 * p_g = σ(b_g + Σ_m w_{g,m} · logit(p_{m,g})). One weight per member and genre (plus a bias) is few
 * enough to fit on a few thousand out-of-fold predictions; it learns which member to trust for which
 * genre, and recalibrates their joint confidence.
 */
export const StackedFusionParamsSchema = z.object({
  numGenres: z.int().positive(),
  /** Member keys, in the order of each genre's weights. */
  members: z.array(z.string()).min(1),
  /** numGenres rows of members.length weights. */
  weights: z.array(z.array(z.number())),
  bias: z.array(z.number()),
  /** Ridge penalty on the weights it was fitted with. */
  l2: z.number().nonnegative(),
}).refine((p) => p.weights.length === p.numGenres && p.bias.length === p.numGenres && p.weights.every((w) => w.length === p.members.length), {
  message: 'one bias and one weight per member for every genre',
});
export type StackedFusionParams = z.infer<typeof StackedFusionParamsSchema>;

const EPS = 1e-6;
const logit = (p: number) => {
  const q = Math.min(1 - EPS, Math.max(EPS, p));
  return Math.log(q / (1 - q));
};
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Solves the small symmetric positive-definite system A x = b (Gaussian elimination with partial pivoting). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[pivot]![c]!)) pivot = r;
    [m[c], m[pivot]] = [m[pivot]!, m[c]!];
    const d = m[c]![c]!;
    if (Math.abs(d) < 1e-12) continue;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / d;
      for (let j = c; j <= n; j++) m[r]![j]! -= f * m[c]![j]!;
    }
  }
  return m.map((row, i) => (Math.abs(row[i]!) < 1e-12 ? 0 : row[n]! / row[i]!));
}

export interface FitStackedFusionArgs {
  /** Member key → its n×numGenres probabilities for the same films (out of fold). */
  members: Readonly<Record<string, Float32Array>>;
  /** n×numGenres 0/1. */
  labels: Float32Array;
  numGenres: number;
  /** Ridge penalty on the weights, in units of the number of films (default 1). */
  l2?: number;
}

/** Fits each genre's logistic regression by Newton's method (a handful of iterations: it is convex and tiny). */
export function fitStackedFusion(args: FitStackedFusionArgs): StackedFusionParams {
  const k = args.numGenres;
  const keys = Object.keys(args.members);
  if (keys.length === 0) throw new RangeError('stacked fusion needs at least one member');
  const n = args.labels.length / k;
  for (const key of keys) {
    if (args.members[key]!.length !== n * k) throw new RangeError(`member ${key}: ${args.members[key]!.length / k} films, labels ${n}`);
  }
  const l2 = args.l2 ?? 1;
  const m = keys.length;
  const x = keys.map((key) => Float64Array.from(args.members[key]!, logit));
  const weights: number[][] = [];
  const bias: number[] = [];
  for (let g = 0; g < k; g++) {
    let positives = 0;
    for (let i = 0; i < n; i++) positives += args.labels[i * k + g]!;
    // theta = [bias, w_1..w_m]; start from "trust every member equally".
    const theta = [logit(Math.min(0.999, Math.max(0.001, positives / n))), ...new Array<number>(m).fill(positives > 0 ? 1 / m : 0)];
    if (positives > 0 && positives < n) {
      // One buffer for every row: a fresh array per row and pass made a fit of 5,000 films take seconds.
      const row = new Float64Array(m + 1);
      const rowOf = (i: number) => {
        row[0] = 1;
        for (let j = 0; j < m; j++) row[j + 1] = x[j]![i * k + g]!;
        return row;
      };
      // Penalised negative log-likelihood: what each Newton step must decrease (rare genres are
      // nearly separable, and a full step can then run off to huge weights).
      const objective = (t: number[]) => {
        let loss = 0;
        for (let i = 0; i < n; i++) {
          const f = rowOf(i);
          let z = 0;
          for (let j = 0; j <= m; j++) z += t[j]! * f[j]!;
          // log(1 + e^z) − y·z, stably.
          loss += Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - args.labels[i * k + g]! * z;
        }
        for (let j = 1; j <= m; j++) loss += 0.5 * l2 * t[j]! ** 2;
        return loss;
      };
      let current = objective(theta);
      for (let iteration = 0; iteration < 50; iteration++) {
        const grad = new Array<number>(m + 1).fill(0);
        const hess = Array.from({ length: m + 1 }, () => new Array<number>(m + 1).fill(0));
        for (let i = 0; i < n; i++) {
          const features = rowOf(i);
          let z = 0;
          for (let j = 0; j <= m; j++) z += theta[j]! * features[j]!;
          const p = sigmoid(z);
          const r = p - args.labels[i * k + g]!;
          const w = Math.max(p * (1 - p), 1e-9);
          for (let a = 0; a <= m; a++) {
            grad[a]! += r * features[a]!;
            for (let b = 0; b <= m; b++) hess[a]![b]! += w * features[a]! * features[b]!;
          }
        }
        for (let j = 0; j <= m; j++) hess[j]![j]! += j === 0 ? 1e-6 * n : l2;
        for (let j = 1; j <= m; j++) grad[j]! += l2 * theta[j]!;
        const step = solve(hess, grad);
        // Backtracking: halve the step until the objective decreases.
        let scale = 1;
        let next = theta;
        let value = current;
        for (let tries = 0; tries < 30; tries++, scale /= 2) {
          const candidate = theta.map((t, j) => t - scale * step[j]!);
          const v = objective(candidate);
          if (v <= current) {
            next = candidate;
            value = v;
            break;
          }
        }
        const change = Math.max(...next.map((t, j) => Math.abs(t - theta[j]!)));
        theta.splice(0, theta.length, ...next);
        if (current - value < 1e-9 * Math.max(1, current) || change < 1e-7) break;
        current = value;
      }
    }
    bias.push(theta[0]!);
    weights.push(theta.slice(1));
  }
  return { numGenres: k, members: keys, weights, bias, l2 };
}

/** The stacked probabilities for n films from each member's n×numGenres probabilities. */
export function applyStackedFusion(params: StackedFusionParams, members: Readonly<Record<string, Float32Array>>): Float32Array {
  const k = params.numGenres;
  const inputs = params.members.map((key) => {
    const p = members[key];
    if (!p) throw new RangeError(`stacked fusion needs the probabilities of ${key}, got ${Object.keys(members).join(', ') || 'none'}`);
    return p;
  });
  const n = inputs[0]!.length / k;
  inputs.forEach((p, j) => {
    if (p.length !== n * k) throw new RangeError(`${params.members[j]} probabilities cover ${p.length / k} films, ${params.members[0]} ${n}`);
  });
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let g = 0; g < k; g++) {
      let z = params.bias[g]!;
      for (let j = 0; j < inputs.length; j++) z += params.weights[g]![j]! * logit(inputs[j]![i * k + g]!);
      out[i * k + g] = sigmoid(z);
    }
  }
  return out;
}
