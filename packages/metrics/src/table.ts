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

export type TableFormat = 'markdown' | 'text' | 'html';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

// Backslash-escapes what would otherwise break a table cell or turn into markup (CommonMark allows it for all ASCII punctuation).
const escapeMarkdown = (text: string) => text.replace(/[\\|*_`[\]<>]/g, (c) => `\\${c}`);

/**
 * Renders randomFilmsTable() rows, one column per model (in the first row's order). Correct genres
 * are marked: **bold** in markdown, `*` after the genre in plain text, <strong> in HTML (whose text
 * is escaped).
 */
export function formatTable(rows: readonly FilmsTableRow[], format: TableFormat = 'markdown', digits = 2): string {
  const table = { models: rows.length ? Object.keys(rows[0]!.predictions) : [], rows };
  const film = (row: FilmsTableRow) => (row.title ? `${row.title} (${row.id})` : row.id);
  const header = ['Film', 'True genres', ...table.models];
  if (format === 'html') {
    const cells = (row: FilmsTableRow) => [
      escapeHtml(film(row)),
      escapeHtml(row.truth.join(', ')),
      ...table.models.map((model) =>
        (row.predictions[model] ?? [])
          .map((p) => {
            const text = `${escapeHtml(p.genre)} ${p.probability.toFixed(digits)}`;
            return p.correct ? `<strong>${text}</strong>` : text;
          })
          .join(', '),
      ),
    ];
    const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
    const body = table.rows.map((row) => `<tr>${cells(row).map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
    return `<table>\n<thead><tr>${th}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
  }
  if (format === 'markdown') {
    const cells = (row: FilmsTableRow) => [
      escapeMarkdown(film(row)),
      escapeMarkdown(row.truth.join(', ')),
      ...table.models.map((model) =>
        (row.predictions[model] ?? [])
          .map((p) => {
            const genre = escapeMarkdown(p.genre);
            return `${p.correct ? `**${genre}**` : genre} ${p.probability.toFixed(digits)}`;
          })
          .join(', '),
      ),
    ];
    const line = (values: string[]) => `| ${values.join(' | ')} |`;
    return [line(header.map(escapeMarkdown)), line(header.map(() => '---')), ...table.rows.map((row) => line(cells(row)))].join('\n');
  }
  const cells = (row: FilmsTableRow) => [
    film(row),
    row.truth.join(', '),
    ...table.models.map((model) =>
      (row.predictions[model] ?? []).map((p) => `${p.genre}${p.correct ? '*' : ''} ${p.probability.toFixed(digits)}`).join(', '),
    ),
  ];
  const grid = [header, ...table.rows.map(cells)];
  const widths = header.map((_, c) => Math.max(...grid.map((r) => [...r[c]!].length)));
  const line = (values: string[]) => values.map((v, c) => v + ' '.repeat(widths[c]! - [...v].length)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...grid.slice(1).map(line), '(* = a true genre)'].join('\n');
}
