import type { ModelMetadata } from './metadata.js';

/** A model produced NaN or ±Infinity: its weights or inputs are broken; never answer with it. */
export class NonFiniteOutputError extends Error {
  override name = 'NonFiniteOutputError';
}

/** Throws NonFiniteOutputError naming the first non-finite value (row and column of an n×k output). */
export function assertFinite(values: ArrayLike<number>, k: number, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new NonFiniteOutputError(`${what}: output ${values[i]} at row ${Math.floor(i / k)}, column ${i % k}`);
  }
}

export interface GenreDecision {
  genre: string;
  probability: number;
  threshold: number;
  /** probability ≥ threshold: the genre is predicted. */
  predicted: boolean;
}

/** The decision rule every consumer applies: one film's probabilities against the stored per-genre thresholds. */
export function decide(probabilities: ArrayLike<number>, model: Pick<ModelMetadata, 'genres' | 'thresholds'>): GenreDecision[] {
  if (probabilities.length !== model.genres.length) throw new RangeError(`got ${probabilities.length} probabilities for ${model.genres.length} genres`);
  assertFinite(probabilities, model.genres.length, 'decide');
  return model.genres.map((genre, g) => {
    const probability = probabilities[g]!;
    const threshold = model.thresholds[g]!;
    return { genre, probability, threshold, predicted: probability >= threshold };
  });
}
