import { GENRES } from '@filmgenre/core';
import { fixtureMetadata } from '@filmgenre/model-artifact/testing';

/** Minimal valid metadata for tests (the trainer fills in the real values). */
export function testMetadata(overrides: Record<string, unknown> = {}, numGenres: number = GENRES.length) {
  const genres = numGenres === GENRES.length ? [...GENRES] : Array.from({ length: numGenres }, (_, g) => `genre${g}`);
  return fixtureMetadata({ name: 'test-overview', variant: 'bilstm', genres, thresholds: genres.map(() => 0.5), ...overrides });
}

/**
 * Synthetic separable overviews: genre g is present iff its keyword appears; filler words carry no
 * signal. Returns texts and flat n×k 0/1 labels.
 */
export function keywordTask(n: number, numGenres: number, seed = 1): { texts: string[]; labels: Float32Array; keywords: string[] } {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const keywords = Array.from({ length: numGenres }, (_, g) => `key${String.fromCharCode(97 + g)}word`);
  const filler = Array.from({ length: 30 }, (_, i) => `filler${String.fromCharCode(97 + (i % 26))}${i}`);
  const texts: string[] = [];
  const labels = new Float32Array(n * numGenres);
  for (let i = 0; i < n; i++) {
    const words: string[] = [];
    const length = 3 + Math.floor(rand() * 6);
    for (let w = 0; w < length; w++) words.push(filler[Math.floor(rand() * filler.length)]!);
    for (let g = 0; g < numGenres; g++) {
      if (rand() < 0.35) {
        labels[i * numGenres + g] = 1;
        words.splice(Math.floor(rand() * (words.length + 1)), 0, keywords[g]!);
      }
    }
    texts.push(words.join(' '));
  }
  return { texts, labels, keywords };
}

export function microF1(probabilities: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = probabilities[i]! >= threshold;
    if (p && labels[i] === 1) tp++;
    else if (p) fp++;
    else if (labels[i] === 1) fn++;
  }
  return (2 * tp) / Math.max(1, 2 * tp + fp + fn);
}
