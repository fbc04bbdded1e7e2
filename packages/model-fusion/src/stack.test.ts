import { describe, expect, it } from 'vitest';
import { evaluateMultiLabel, tuneThresholdsForMicroF1 } from '@filmgenre/metrics';
import { applyStackedFusion, fitStackedFusion, StackedFusionParamsSchema } from './stack.js';

/** Deterministic LCG so the synthetic data is the same on every run. */
function rng(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** Genre 0: only member a knows; genre 1: only b; genre 2: both, independently; genre 3: never occurs. */
function task(n: number, seed: number) {
  const rand = rng(seed);
  const k = 4;
  const labels = new Float32Array(n * k);
  const a = new Float32Array(n * k);
  const b = new Float32Array(n * k);
  const clamp = (v: number) => Math.min(0.999, Math.max(0.001, v));
  for (let i = 0; i < n; i++) {
    for (let g = 0; g < k; g++) {
      const y = g < 3 && rand() < 0.3 ? 1 : 0;
      labels[i * k + g] = y;
      const signal = () => clamp(0.3 + 0.4 * y + (rand() - 0.5) * 0.5);
      a[i * k + g] = g === 1 ? rand() : signal();
      b[i * k + g] = g === 0 ? rand() : signal();
    }
  }
  return { labels, members: { a, b }, k };
}

function microF1(p: Float32Array, labels: Float32Array, k: number, fitP = p, fitLabels = labels): number {
  const thresholds = tuneThresholdsForMicroF1(fitP, fitLabels, { numGenres: k }).thresholds;
  return evaluateMultiLabel({ probabilities: p, labels, thresholds, genres: Array.from({ length: k }, (_, g) => String(g)) }).micro.f1;
}

describe('stacked fusion', () => {
  it('learns which member to trust per genre and beats both members and their average on unseen films', () => {
    const fit = task(1500, 1);
    const test = task(1500, 2);
    const params = StackedFusionParamsSchema.parse(fitStackedFusion({ members: fit.members, labels: fit.labels, numGenres: fit.k }));
    expect(params.weights[0]![0]!).toBeGreaterThan(5 * Math.abs(params.weights[0]![1]!));
    expect(params.weights[1]![1]!).toBeGreaterThan(5 * Math.abs(params.weights[1]![0]!));
    expect(params.weights[2]![0]!).toBeGreaterThan(0.2);
    expect(params.weights[2]![1]!).toBeGreaterThan(0.2);
    expect(params.weights[3]).toEqual([0, 0]);

    const stacked = applyStackedFusion(params, test.members);
    const fitStacked = applyStackedFusion(params, fit.members);
    const average = test.members.a.map((v, i) => (v + test.members.b[i]!) / 2);
    const fitAverage = fit.members.a.map((v, i) => (v + fit.members.b[i]!) / 2);
    const score = microF1(stacked, test.labels, test.k, fitStacked, fit.labels);
    expect(score).toBeGreaterThan(microF1(average, test.labels, test.k, fitAverage, fit.labels) + 0.03);
    expect(score).toBeGreaterThan(microF1(test.members.a, test.labels, test.k, fit.members.a, fit.labels) + 0.03);
    expect(score).toBeGreaterThan(microF1(test.members.b, test.labels, test.k, fit.members.b, fit.labels) + 0.03);
  });

  it('names a missing member and mismatched films', () => {
    const fit = task(50, 3);
    const params = fitStackedFusion({ members: fit.members, labels: fit.labels, numGenres: fit.k });
    expect(() => applyStackedFusion(params, { a: fit.members.a })).toThrow(/needs the probabilities of b/);
    expect(() => applyStackedFusion(params, { a: fit.members.a, b: fit.members.b.subarray(4) })).toThrow(/b probabilities cover 49 films/);
    expect(() => fitStackedFusion({ members: { a: fit.members.a.subarray(4) }, labels: fit.labels, numGenres: fit.k })).toThrow(/member a: 49 films, labels 50/);
  });

  it('stays finite on a rare genre its members separate perfectly (Newton steps are damped)', () => {
    const k = 1;
    const n = 200;
    const labels = Float32Array.from({ length: n }, (_, i) => (i < 3 ? 1 : 0));
    const a = Float32Array.from({ length: n }, (_, i) => (i < 3 ? 0.9 : 0.05 + (i % 7) / 100));
    const b = Float32Array.from({ length: n }, (_, i) => 0.1 + (i % 5) / 50);
    const params = fitStackedFusion({ members: { a, b }, labels, numGenres: k });
    expect([...params.weights[0]!, params.bias[0]!].every((v) => Number.isFinite(v) && Math.abs(v) < 100)).toBe(true);
    const p = applyStackedFusion(params, { a, b });
    expect(p[0]!).toBeGreaterThan(p[10]!);
  });
});
