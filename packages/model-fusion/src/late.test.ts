import { describe, expect, it } from 'vitest';
import { applyLateFusion, fitLateFusion } from './late.js';

/** Deterministic LCG so the synthetic data is the same on every run. */
function rng(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

describe('late fusion', () => {
  it('recovers which modality predicts each genre', () => {
    const n = 800;
    const k = 3;
    const rand = rng(5);
    const labels = new Float32Array(n * k);
    const image = new Float32Array(n * k);
    const text = new Float32Array(n * k);
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    for (let i = 0; i < n; i++) {
      for (let g = 0; g < k; g++) {
        const y = rand() < 0.3 ? 1 : 0;
        labels[i * k + g] = y;
        const signal = () => clamp(0.25 + 0.5 * y + (rand() - 0.5) * 0.6);
        const noise = () => rand();
        // genre 0: only the poster model knows; genre 1: only the overview model; genre 2: both, independently
        image[i * k + g] = g === 1 ? noise() : signal();
        text[i * k + g] = g === 0 ? noise() : signal();
      }
    }
    const params = fitLateFusion({ imageProbs: image, textProbs: text, labels, numGenres: k });
    expect(params.weights[0]).toBeGreaterThanOrEqual(0.8);
    expect(params.weights[1]).toBeLessThanOrEqual(0.2);
    expect(params.weights[2]).toBeGreaterThanOrEqual(0.3);
    expect(params.weights[2]).toBeLessThanOrEqual(0.7);
    expect(params.tuned).toEqual([true, true, true]);
    expect(params.f1.every((f) => f > 0.8)).toBe(true);
    // averaging two independent noisy views beats either alone
    const fitImageOnly = fitLateFusion({ imageProbs: image, textProbs: text, labels, numGenres: k, grid: [1] });
    expect(params.f1[2]).toBeGreaterThan(fitImageOnly.f1[2]!);

    const fused = applyLateFusion(params, image, text);
    expect(fused).toHaveLength(n * k);
    const w = params.weights[2]!;
    expect(fused[2]).toBeCloseTo(w * image[2]! + (1 - w) * text[2]!, 6);
  });

  it('keeps w = 0.5 for genres without enough positives, and validates shapes', () => {
    const labels = [[1, 0], [0, 0], [1, 0], [0, 0]];
    const probs = [[0.9, 0.1], [0.1, 0.2], [0.8, 0.1], [0.2, 0.3]];
    const params = fitLateFusion({ imageProbs: probs, textProbs: probs, labels, numGenres: 2, minSupport: 1 });
    expect(params.tuned).toEqual([true, false]);
    expect(params.weights[1]).toBe(0.5);
    expect(() => fitLateFusion({ imageProbs: probs, textProbs: probs.slice(1), labels, numGenres: 2 })).toThrow(/disagree/);
    expect(() => fitLateFusion({ imageProbs: probs, textProbs: probs, labels, numGenres: 2, grid: [1.5] })).toThrow(/weight grid/);
  });
});
