import { parse, type Options as CsvOptions } from 'csv-parse/sync';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GENRES, NUM_GENRES } from './genres.js';

export const CSV_FILE = 'IMDB_overview_genres.csv';
export const IMAGES_DIR = 'Images';
const ID_PATTERN = /^tt\d{7,8}$/;
const EXPECTED_HEADER = ['Id', 'Genre', ...GENRES, 'Overview'];

export interface Film {
  id: string;
  /** 1-based line of the CSV where the row starts (the header is line 1). */
  line: number;
  overview: string;
  /** 0/1 per genre, in GENRES order. */
  labels: Uint8Array;
  posterPath: string;
}

export interface BadRow {
  line: number;
  id: string;
  reason: string;
}

export interface DatasetSummary {
  rows: number;
  usable: number;
  bad: number;
  /** Positive films per genre among the usable rows, in GENRES order. */
  positivesPerGenre: number[];
}

export interface Dataset {
  dir: string;
  films: Film[];
  badRows: BadRow[];
  summary: DatasetSummary;
}

export interface ReadDatasetOptions {
  /** Keep only the first N usable films (a quick run). */
  limit?: number;
  /**
   * `optional`: a catalogue to score, whose CSV needs only `Id` and `Overview` (any other columns,
   * genre columns included, are ignored; every film's labels are 0). Default `required`: the
   * development dataset's exact header.
   */
  labels?: 'required' | 'optional';
}

/** Where each field sits in a row; genre columns only when labels are read. */
interface Columns {
  count: number;
  id: number;
  overview: number;
  genres?: number[];
}

export class DatasetError extends Error {
  override name = 'DatasetError';
}

/**
 * Reads a dataset directory in the documented layout (CSV + Images/<Id>.jpg). Bad rows are reported,
 * skipped and counted; only a dataset without a single usable row (or an unreadable CSV) throws.
 */
export function readDataset(dir: string, options: ReadDatasetOptions = {}): Dataset {
  const root = resolve(dir);
  const csvPath = join(root, CSV_FILE);
  if (!existsSync(csvPath)) throw new DatasetError(`${csvPath}: dataset CSV not found`);
  const imagesDir = join(root, IMAGES_DIR);
  const posters = existsSync(imagesDir) ? new Set(readdirSync(imagesDir)) : new Set<string>();

  type CsvRecord = { record: string[]; info: { lines: number } };
  let records: CsvRecord[];
  // A malformed record (e.g. an unbalanced quote) is skipped and reported, not fatal to the file.
  const malformed: BadRow[] = [];
  try {
    records = parse(readFileSync(csvPath), {
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      bom: true,
      skip_records_with_error: true,
      on_skip: (error, raw) => {
        const line = (error as { lines?: number } | undefined)?.lines ?? 0;
        malformed.push({ line, id: /^tt\d+/.exec(raw ?? '')?.[0] ?? '', reason: `malformed CSV record: ${error?.message ?? 'unknown error'}` });
      },
    } satisfies CsvOptions) as unknown as CsvRecord[];
  } catch (error) {
    throw new DatasetError(`${csvPath}: not a readable CSV (${(error as Error).message})`);
  }
  const [headerRecord, ...rows] = records;
  const header = (headerRecord?.record ?? []).map((name) => name.trim());
  let columns: Columns;
  if (options.labels === 'optional') {
    const missing = ['Id', 'Overview'].filter((name) => !header.includes(name));
    if (missing.length) throw new DatasetError(`${csvPath}: no ${missing.join(' or ')} column in the header (a catalogue needs Id and Overview; genre columns are optional)`);
    columns = { count: header.length, id: header.indexOf('Id'), overview: header.indexOf('Overview') };
  } else {
    const mismatch = EXPECTED_HEADER.findIndex((name, i) => header[i] !== name);
    if (mismatch >= 0 || header.length !== EXPECTED_HEADER.length) {
      const at = mismatch >= 0 ? mismatch : Math.min(header.length, EXPECTED_HEADER.length);
      throw new DatasetError(
        `${csvPath}: header column ${at + 1} is '${header[at] ?? '(missing)'}', expected '${EXPECTED_HEADER[at] ?? '(none)'}'` +
          ` (expected header: ${EXPECTED_HEADER.join(',')})`,
      );
    }
    columns = { count: EXPECTED_HEADER.length, id: 0, overview: EXPECTED_HEADER.length - 1, genres: GENRES.map((_, g) => 2 + g) };
  }

  const films: Film[] = [];
  const badRows: BadRow[] = [...malformed];
  const seen = new Set<string>();
  const limit = options.limit ?? Infinity;
  for (const { record, info } of rows) {
    if (films.length >= limit) break;
    // info.lines is the line where the record ends; quoted overviews never span lines in this dataset
    // but a corrupted one may, so report where the row ends.
    const line = info.lines;
    const id = (record[columns.id] ?? '').trim();
    const reason = validateRow(record, id, seen, posters, columns);
    if (reason) {
      badRows.push({ line, id, reason });
      continue;
    }
    seen.add(id);
    const labels = new Uint8Array(NUM_GENRES);
    columns.genres?.forEach((column, g) => (labels[g] = record[column]!.trim() === '1' ? 1 : 0));
    films.push({ id, line, overview: record[columns.overview]!.trim(), labels, posterPath: join(imagesDir, `${id}.jpg`) });
  }
  if (films.length === 0) {
    const sample = badRows.slice(0, 3).map((b) => `line ${b.line} (${b.id || 'no id'}): ${b.reason}`).join('; ');
    throw new DatasetError(`${csvPath}: no usable row out of ${rows.length}${sample ? ` — e.g. ${sample}` : ''}`);
  }
  badRows.sort((a, b) => a.line - b.line);
  const positivesPerGenre = new Array<number>(NUM_GENRES).fill(0);
  for (const film of films) for (let g = 0; g < NUM_GENRES; g++) positivesPerGenre[g]! += film.labels[g]!;
  return {
    dir: root,
    films,
    badRows,
    summary: { rows: films.length + badRows.length, usable: films.length, bad: badRows.length, positivesPerGenre },
  };
}

function validateRow(record: string[], id: string, seen: Set<string>, posters: Set<string>, columns: Columns): string | undefined {
  if (record.length !== columns.count) return `has ${record.length} columns, expected ${columns.count}`;
  if (!ID_PATTERN.test(id)) return `Id '${id}' is not an IMDb title id (tt followed by 7 or 8 digits)`;
  if (seen.has(id)) return `Id ${id} appears twice; the first row is kept`;
  for (const [g, column] of (columns.genres ?? []).entries()) {
    const value = record[column]!.trim();
    if (value !== '0' && value !== '1') return `column ${GENRES[g]} is '${value}', expected 0 or 1`;
  }
  if (!record[columns.overview]!.trim()) return 'Overview is empty';
  if (!posters.has(`${id}.jpg`)) return `poster ${IMAGES_DIR}/${id}.jpg is missing`;
  return undefined;
}

/** One line per bad row plus a count, for logs. */
export function formatBadRows(dataset: Pick<Dataset, 'badRows' | 'summary'>, max = 20): string {
  const lines = dataset.badRows.slice(0, max).map((b) => `  line ${b.line} ${b.id || '(no id)'}: ${b.reason}`);
  if (dataset.badRows.length > max) lines.push(`  … and ${dataset.badRows.length - max} more`);
  return `${dataset.summary.bad} bad row(s) skipped, ${dataset.summary.usable} usable of ${dataset.summary.rows}` +
    (lines.length ? `\n${lines.join('\n')}` : '');
}

export const DATASET_ENV = 'FILMGENRE_DATA';

/** The workspace root: the nearest directory upwards holding nx.json (else the current one). */
export function findWorkspaceRoot(from = process.cwd()): string {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'nx.json'))) return dir;
    const parent = resolve(dir, '..');
    if (parent === dir) return resolve(from);
    dir = parent;
  }
}

/**
 * Where the dataset is when no path is given: $FILMGENRE_DATA, then data/multimodal-imdb in the
 * workspace, then ../shared/datasets/multimodal-imdb beside it. Throws saying where to put it.
 */
export function resolveDatasetDir(explicit?: string, workspaceRoot = findWorkspaceRoot()): string {
  const candidates = explicit
    ? [resolve(explicit)]
    : [
        process.env[DATASET_ENV] ? resolve(process.env[DATASET_ENV]!) : undefined,
        join(workspaceRoot, 'data', 'multimodal-imdb'),
        resolve(workspaceRoot, '..', 'shared', 'datasets', 'multimodal-imdb'),
      ].filter((c): c is string => Boolean(c));
  for (const dir of candidates) {
    if (existsSync(join(dir, CSV_FILE)) && statSync(dir).isDirectory()) return dir;
  }
  throw new DatasetError(
    `no dataset found (looked for ${CSV_FILE} in: ${candidates.join(', ')}). ` +
      `Pass --data <dir>, set ${DATASET_ENV}, or put the dataset (CSV + Images/) in data/multimodal-imdb.`,
  );
}

/** resolveDatasetDir(), or undefined where there is no dataset (tests that need it skip there). */
export function findDatasetDir(): string | undefined {
  try {
    return resolveDatasetDir();
  } catch (error) {
    if (error instanceof DatasetError) return undefined;
    throw error;
  }
}
