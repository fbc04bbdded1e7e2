import { createRng } from '@filmgenre/core';
import { describe, expect, it } from 'vitest';
import { fitGenreLogistic, genreLogits, genreProbabilities, sigmoid } from './logistic.js';
import type { SparseRows } from './tfidf.js';

/** n rows over `dim` columns, each with 3 random columns of value 1/√3. */
function randomRows(n: number, dim: number, seed: number): SparseRows {
  const rng = createRng(seed);
  const start = new Int32Array(n + 1);
  const columns: number[] = [];
  for (let i = 0; i < n; i++) {
    const picked = [...new Set([0, 1, 2].map(() => Math.floor(rng() * dim)))].sort((a, b) => a - b);
    columns.push(...picked);
    start[i + 1] = columns.length;
  }
  return { rows: n, dim, start, columns: Int32Array.from(columns), values: new Float32Array(columns.length).fill(1 / Math.sqrt(3)) };
}

describe('per-genre logistic regression on sparse rows', () => {
  it('reaches the optimum: the gradient of the regularised loss vanishes, and it predicts its genres', async () => {
    const n = 400;
    const dim = 30;
    const x = randomRows(n, dim, 1);
    // Genre 0: column 0 or 1 present; genre 1: the opposite of genre 0; genre 2: never.
    const labels = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const hit = Array.from(x.columns.subarray(x.start[i]!, x.start[i + 1]!)).some((c) => c < 2);
      labels[i * 3] = hit ? 1 : 0;
      labels[i * 3 + 1] = hit ? 0 : 1;
    }
    const c = 4;
    const model = await fitGenreLogistic(x, labels, 3, { c, tolerance: 1e-9, maxIterations: 2000 });
    const logits = genreLogits(model, x);
    for (const g of [0, 1]) {
      const gradient = new Float64Array(dim + 1);
      for (let i = 0; i < n; i++) {
        const residual = sigmoid(logits[i * 3 + g]!) - labels[i * 3 + g]!;
        gradient[dim]! += residual;
        for (let p = x.start[i]!; p < x.start[i + 1]!; p++) gradient[x.columns[p]!]! += residual * x.values[p]!;
      }
      for (let j = 0; j < dim; j++) gradient[j]! += model.weights[j * 3 + g]! / c;
      expect(Math.max(...gradient.map(Math.abs))).toBeLessThan(1e-3);
    }
    const p = genreProbabilities(model, x);
    let correct = 0;
    for (let i = 0; i < n; i++) correct += (p[i * 3]! >= 0.5 ? 1 : 0) === labels[i * 3] ? 1 : 0;
    expect(correct / n).toBeGreaterThan(0.95);
    expect(model.weights[0]).toBeGreaterThan(0);
    expect(model.weights[1]).toBeLessThan(0);
    // Without positives: no weights, a bias at the clipped base rate.
    expect(model.weights.filter((_, i) => i % 3 === 2).every((w) => w === 0)).toBe(true);
    expect(p[2]).toBeLessThan(0.01);
  });

  it('a stronger penalty gives smaller weights; a stop request ends the fit with its error', async () => {
    const x = randomRows(200, 20, 2);
    const labels = Float32Array.from({ length: 200 }, (_, i) => (x.columns[x.start[i]!]! < 5 ? 1 : 0));
    const norm = (w: Float32Array) => Math.sqrt(w.reduce((s, v) => s + v * v, 0));
    const loose = await fitGenreLogistic(x, labels, 1, { c: 10 });
    const tight = await fitGenreLogistic(x, labels, 1, { c: 0.1 });
    expect(norm(tight.weights)).toBeLessThan(norm(loose.weights));
    const controller = new AbortController();
    controller.abort();
    await expect(fitGenreLogistic(x, labels, 1, { c: 1, signal: controller.signal, onStop: () => new Error('stopped here') })).rejects.toThrow('stopped here');
    await expect(fitGenreLogistic(x, labels.subarray(1), 1, { c: 1 })).rejects.toThrow(/labels hold/);
  });
});
