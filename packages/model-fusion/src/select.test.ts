import { describe, expect, it } from 'vitest';
import { selectLateFusion } from './select.js';

/** Deterministic LCG so the synthetic data is the same on every run. */
function rng(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/**
 * n films × k genres, positives with p = 0.3. `informative(g)` says which modalities carry signal for
 * genre g; a modality without signal outputs uniform noise.
 */
function synthetic(n: number, k: number, informative: (g: number) => { image: boolean; text: boolean }, seed: number) {
  const rand = rng(seed);
  const labels = new Float32Array(n * k);
  const image = new Float32Array(n * k);
  const text = new Float32Array(n * k);
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  for (let i = 0; i < n; i++) {
    for (let g = 0; g < k; g++) {
      const y = rand() < 0.3 ? 1 : 0;
      labels[i * k + g] = y;
      const view = (signal: boolean) => (signal ? clamp(0.25 + 0.5 * y + (rand() - 0.5) * 0.7) : rand());
      image[i * k + g] = view(informative(g).image);
      text[i * k + g] = view(informative(g).text);
    }
  }
  return { imageProbs: image, textProbs: text, labels };
}

describe('selectLateFusion', () => {
  it('picks per-genre weights when each genre is decided by a different modality', () => {
    const data = synthetic(1_000, 4, (g) => ({ image: g % 2 === 0, text: g % 2 === 1 }), 3);
    const selection = selectLateFusion({ ...data, numGenres: 4 });
    expect(selection.weighting).toBe('per-genre');
    expect(selection.crossValidatedMicroF1['per-genre']!).toBeGreaterThan(selection.crossValidatedMicroF1['equal']! + 0.05);
    expect(selection.params.weights[0]).toBeGreaterThanOrEqual(0.8);
    expect(selection.params.weights[1]).toBeLessThanOrEqual(0.2);
  });

  it('falls back to the informative modality alone when the other one is noise for every genre', () => {
    const data = synthetic(1_000, 4, () => ({ image: false, text: true }), 4);
    const selection = selectLateFusion({ ...data, numGenres: 4 });
    expect(selection.weighting).not.toBe('equal');
    expect(Math.max(...selection.params.weights)).toBeLessThanOrEqual(0.2);
    expect(selection.crossValidatedMicroF1['equal']!).toBeLessThan(selection.crossValidatedMicroF1[selection.weighting]!);
  });

  it('prefers the simpler weighting when both modalities are equally good everywhere', () => {
    const data = synthetic(1_000, 4, () => ({ image: true, text: true }), 5);
    const selection = selectLateFusion({ ...data, numGenres: 4 });
    // 25 free weights fitted on noise do not generalise better than one average.
    expect(selection.crossValidatedMicroF1['per-genre']!).toBeLessThanOrEqual(selection.crossValidatedMicroF1['equal']! + 0.01);
    expect(selection.params.weights.every((w) => w >= 0.3 && w <= 0.7)).toBe(true);
  });

  it('fits only the requested weighting, and checks shapes', () => {
    const data = synthetic(200, 3, () => ({ image: true, text: true }), 6);
    const selection = selectLateFusion({ ...data, numGenres: 3, candidates: ['equal'] });
    expect(selection.weighting).toBe('equal');
    expect(Object.keys(selection.crossValidatedMicroF1)).toEqual(['equal']);
    expect(selection.params.weights).toEqual([0.5, 0.5, 0.5]);
    expect(selection.params.thresholds).toHaveLength(3);
    expect(() => selectLateFusion({ ...data, textProbs: data.textProbs.subarray(3), numGenres: 3 })).toThrow(/disagree/);
    expect(() => selectLateFusion({ ...data, numGenres: 3, candidates: [] })).toThrow(/at least one candidate/);
  });
});
