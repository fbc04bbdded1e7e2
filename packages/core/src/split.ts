import { hashString } from './random.js';

export interface SplitOptions {
  /** Fraction of films that go to validation (default 0.2, as in the original study). */
  validationFraction?: number;
  seed?: number;
}

export interface Split<T> {
  train: T[];
  validation: T[];
}

/**
 * Deterministic train/validation split by hashing each film's Id with the seed. A film's side depends
 * only on its own Id, so adding or removing rows elsewhere in the file never moves another film.
 */
export function splitTrainValidation<T extends { id: string }>(items: readonly T[], options: SplitOptions = {}): Split<T> {
  const fraction = options.validationFraction ?? 0.2;
  const seed = options.seed ?? 0;
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`validationFraction must be in (0, 1), got ${fraction}`);
  const train: T[] = [];
  const validation: T[] = [];
  for (const item of items) {
    const u = hashString(`${seed}:${item.id}`) / 4294967296;
    (u < fraction ? validation : train).push(item);
  }
  return { train, validation };
}
