import { createRng, GENRES, shuffleInPlace } from '@filmgenre/core';
import { rowCount, toProbabilities, type Matrix } from './matrix.js';

export interface GenreScore {
  genre: string;
  probability: number;
}

/**
 * The k most probable genres of one film, highest first. Equal probabilities keep column (genre
 * list) order, so the result never depends on the sort implementation.
 */
export function topK(probabilities: ArrayLike<number>, genres: readonly string[] = GENRES, k = 3): GenreScore[] {
  if (probabilities.length !== genres.length) {
    throw new RangeError(`topK: ${probabilities.length} probabilities for ${genres.length} genres`);
  }
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`topK: k must be a non-negative integer, got ${k}`);
  return Array.from({ length: genres.length }, (_, g) => g)
    .sort((a, b) => probabilities[b]! - probabilities[a]! || a - b)
    .slice(0, k)
    .map((g) => ({ genre: genres[g]!, probability: probabilities[g]! }));
}

export interface TableFilm {
  id: string;
  title?: string;
  /** The film's true genres. */
  truth: readonly string[];
}

export interface PredictedGenre extends GenreScore {
  /** Whether this genre is one of the film's true genres. */
  correct: boolean;
}

export interface FilmsTableRow {
  id: string;
  title?: string;
  truth: string[];
  /** Each model's top-k genres, keyed by model name. */
  predictions: Record<string, PredictedGenre[]>;
}

export interface RandomFilmsTableOptions {
  films: readonly TableFilm[];
  /** Per model name: its n×k probabilities, rows aligned with `films`. */
  predictions: Record<string, Matrix>;
  genres?: readonly string[];
  /** Films to draw (default 10; all of them when there are fewer). */
  count?: number;
  /** Same seed, same films (default 0). */
  seed?: number;
  /** Genres shown per model (default 3). */
  k?: number;
}

/**
 * Draws `count` films at random (seeded) and lists each model's top-k genres with probabilities
 * against the true genres, as the study's Table 1. Rows keep the films' original order.
 */
export function randomFilmsTable(options: RandomFilmsTableOptions): FilmsTableRow[] {
  const genres = options.genres ?? GENRES;
  const kGenres = genres.length;
  const models = Object.keys(options.predictions);
  const n = options.films.length;
  const matrices = models.map((model) => {
    const matrix = options.predictions[model]!;
    const rows = rowCount(matrix, kGenres, `predictions.${model}`);
    if (rows !== n) throw new RangeError(`predictions.${model} has ${rows} rows for ${n} films`);
    return toProbabilities(matrix, kGenres, `predictions.${model}`);
  });
  const count = Math.min(options.count ?? 10, n);
  const picked = shuffleInPlace(Array.from({ length: n }, (_, i) => i), createRng(options.seed ?? 0))
    .slice(0, count)
    .sort((a, b) => a - b);
  return picked.map((i): FilmsTableRow => {
    const film = options.films[i]!;
    const truth = new Set(film.truth);
    const predictions: Record<string, PredictedGenre[]> = {};
    models.forEach((model, m) => {
      const row = matrices[m]!.subarray(i * kGenres, (i + 1) * kGenres);
      predictions[model] = topK(row, genres, options.k ?? 3).map((s) => ({ ...s, correct: truth.has(s.genre) }));
    });
    return { id: film.id, ...(film.title !== undefined ? { title: film.title } : {}), truth: [...film.truth], predictions };
  });
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
