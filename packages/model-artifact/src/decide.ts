import type { ModelMetadata } from './metadata.js';

/** A model produced NaN, ±Infinity or (for probabilities) a value outside [0, 1]: its weights or inputs are broken; never answer with it. */
export class NonFiniteOutputError extends Error {
  override name = 'NonFiniteOutputError';
  constructor(
    message: string,
    /** How many values are invalid, the first of them and its row (the item of the batch). */
    readonly invalid: number,
    readonly example: number,
    readonly row: number,
  ) {
    super(message);
  }
}

/**
 * The one check of a model's outputs (warm-up, evaluation, batch prediction and every served
 * request): throws NonFiniteOutputError naming the first invalid value (row and column of an n×k
 * output) and counting them. `probabilities`: values must also lie in [0, 1].
 */
export function assertFinite(values: ArrayLike<number>, k: number, what: string, options: { probabilities?: boolean } = {}): void {
  let invalid = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (options.probabilities ? v >= 0 && v <= 1 : Number.isFinite(v)) continue;
    if (invalid++ === 0) first = i;
  }
  if (invalid === 0) return;
  const example = values[first]!;
  const row = Math.floor(first / k);
  throw new NonFiniteOutputError(`${what}: output ${example} at row ${row}, column ${first % k}${invalid > 1 ? ` (${invalid} invalid values)` : ''}`, invalid, example, row);
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
  assertFinite(probabilities, model.genres.length, 'decide', { probabilities: true });
  return model.genres.map((genre, g) => {
    const probability = probabilities[g]!;
    const threshold = model.thresholds[g]!;
    return { genre, probability, threshold, predicted: probability >= threshold };
  });
}
