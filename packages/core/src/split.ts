import { createHash } from 'node:crypto';
import { hashString } from './random.js';

export interface Split<T> {
  train: T[];
  validation: T[];
}

export interface FoldOptions {
  /** Number of folds k (default 5: fold 0 is then a 20 % validation split). */
  folds?: number;
  seed?: number;
}

/**
 * The fold of a film, 0…k−1, from a seeded hash of its Id: a film's fold depends only on its own Id,
 * so adding or removing rows elsewhere in the file never moves another film.
 */
export function foldOf(id: string, options: FoldOptions = {}): number {
  const folds = checkFolds(options.folds ?? 5);
  const u = hashString(`${options.seed ?? 0}:${id}`) / 4294967296;
  return Math.min(folds - 1, Math.floor(u * folds));
}

function checkFolds(folds: number): number {
  if (!Number.isInteger(folds) || folds < 2 || folds > 100) throw new RangeError(`folds must be an integer in [2, 100], got ${folds}`);
  return folds;
}

/**
 * What a model records about the films it was trained and validated on, so that models can be
 * checked for compatibility (fusion over members of one split, resume of the same split) and
 * evaluations can tell when they score films a model has seen. `digest` covers every film's Id and
 * fold: two records with the same digest describe exactly the same partition of the same films.
 */
export interface SplitRecord {
  seed: number;
  folds: number;
  /** The fold held out for validation (early stopping, thresholds), or null when cross-fitted over all folds. */
  validationFold: number | null;
  films: number;
  validationFilms: number;
  digest: string;
}

export interface HoldoutSplit<T> extends Split<T> {
  record: SplitRecord;
}

function partitionDigest(ids: readonly string[], options: Required<FoldOptions>): string {
  const lines = [...ids].sort().map((id) => `${id}\t${foldOf(id, options)}`).join('\n');
  return createHash('sha256').update(`folds=${options.folds};seed=${options.seed}\n${lines}`).digest('hex').slice(0, 16);
}

/** Train on every fold but one, validate on that one (fold 0 by default); records the partition. */
export function holdoutSplit<T extends { id: string }>(items: readonly T[], options: FoldOptions & { validationFold?: number } = {}): HoldoutSplit<T> {
  const folds = checkFolds(options.folds ?? 5);
  const seed = options.seed ?? 0;
  const validationFold = options.validationFold ?? 0;
  if (!Number.isInteger(validationFold) || validationFold < 0 || validationFold >= folds) throw new RangeError(`validationFold must be in [0, ${folds}), got ${validationFold}`);
  const train: T[] = [];
  const validation: T[] = [];
  for (const item of items) (foldOf(item.id, { folds, seed }) === validationFold ? validation : train).push(item);
  return {
    train, validation,
    record: { seed, folds, validationFold, films: items.length, validationFilms: validation.length, digest: partitionDigest(items.map((f) => f.id), { folds, seed }) },
  };
}

/** Why two split records differ (first difference, in words), or null when they describe the same split. */
export function splitMismatch(expected: SplitRecord, actual: SplitRecord): string | null {
  if (expected.seed !== actual.seed) return `seed ${actual.seed} instead of ${expected.seed}`;
  if (expected.folds !== actual.folds) return `${actual.folds} folds instead of ${expected.folds}`;
  if (expected.validationFold !== actual.validationFold) return `validation fold ${actual.validationFold} instead of ${expected.validationFold}`;
  if (expected.digest !== actual.digest) return `other films (${actual.films} films, digest ${actual.digest}) than ${expected.films} films, digest ${expected.digest}`;
  return null;
}

export interface FoldPlan<T> {
  items: T[];
  /** The fold of each item, in item order. */
  folds: Int32Array;
  k: number;
  /** validationFold null: every film is held out once (cross-fitting). */
  record: SplitRecord;
}

/** Every item's fold, for cross-fitting: each fold is predicted by models trained on the others. */
export function foldPlan<T extends { id: string }>(items: readonly T[], options: FoldOptions = {}): FoldPlan<T> {
  const k = checkFolds(options.folds ?? 5);
  const seed = options.seed ?? 0;
  const folds = Int32Array.from(items, (item) => foldOf(item.id, { folds: k, seed }));
  return {
    items: [...items], folds, k,
    record: { seed, folds: k, validationFold: null, films: items.length, validationFilms: items.length, digest: partitionDigest(items.map((f) => f.id), { folds: k, seed }) },
  };
}

/** Why two records do not describe the same partition of the same films into folds (ignoring which fold was held out), or null. */
export function partitionMismatch(expected: SplitRecord, actual: SplitRecord): string | null {
  return splitMismatch({ ...expected, validationFold: null }, { ...actual, validationFold: null });
}
