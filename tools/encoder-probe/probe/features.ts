import type { Film } from '@filmgenre/core';
import { tokenize } from '@filmgenre/data-text';
import { extractPosterFeatures, PosterFeatureExtractor, type FeatureExtractorSpecInput } from '@filmgenre/model-cnn';
import { loadPretrainedEmbeddings } from '@filmgenre/model-lstm';
import { SentenceEncoder } from '@filmgenre/model-sentence-encoder';
import { join } from 'node:path';

/** A row-major n × dim feature matrix. */
export interface FeatureMatrix {
  name: string;
  dim: number;
  data: Float32Array;
}

/**
 * One forward pass of a poster trunk computes several nodes and poolings at once; candidates are
 * column slices of it. The two passes the candidates read have the trainer's own specs
 * (training-image's POSTER_FEATURES), so they share its feature cache; the others are for timing.
 */
export const POSTER_PASSES: Record<string, FeatureExtractorSpecInput> = {
  // The previous default: the 1.4-width graph (fine-tuned whole on NSFW classes), its top, 160×160.
  'mid-160': { trunk: 'mobilenet_v2_mid', nodes: ['Conv_1'], pooling: ['mean'], inputWidth: 160, inputHeight: 160 },
  // Keras MobileNetV2 1.0, ImageNet-pure up to block_10, at several sizes (W×H).
  'v2-128x256': { trunk: 'mobilenet_v2', nodes: ['block_10_expand_relu', 'block_10'], pooling: ['mean', 'max'], inputWidth: 128, inputHeight: 256 },
  'v2-112x224': { trunk: 'mobilenet_v2', nodes: ['block_10_expand_relu', 'block_10'], pooling: ['mean', 'max'], inputWidth: 112, inputHeight: 224 },
  'v2-224': { trunk: 'mobilenet_v2', nodes: ['block_10_expand_relu', 'block_10'], pooling: ['mean', 'max'], inputWidth: 224, inputHeight: 224 },
  // InceptionV3, ImageNet-pure up to mixed5, at the posters' own size.
  'inc-150x300': { trunk: 'inception_v3', nodes: ['mixed5'], pooling: ['mean', 'max'], inputWidth: 150, inputHeight: 300 },
};

export interface PassResult {
  matrix: FeatureMatrix;
  /** Column ranges per `${node}:${pooling}`. */
  columns: Map<string, [number, number]>;
  /** Seconds spent computing rows not in the cache (0 on a warm cache), and how many were computed. */
  seconds: number;
  computed: number;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** `cacheDir` undefined: no cache (to time a cold computation). */
export async function posterPass(name: string, films: readonly Film[], cacheDir: string | undefined): Promise<PassResult> {
  const spec = POSTER_PASSES[name];
  if (!spec) throw new Error(`unknown poster pass '${name}' (known: ${Object.keys(POSTER_PASSES).join(', ')})`);
  const extractor = await PosterFeatureExtractor.create(spec);
  try {
    let computed = 0;
    const start = performance.now();
    let last = 0;
    const data = await extractPosterFeatures(extractor, films.map((f) => f.posterPath), {
      ...(cacheDir ? { cacheDir: join(cacheDir, 'features') } : {}),
      onProgress: (done, total) => {
        computed = total;
        if (performance.now() - last > 30_000 || done === total) {
          last = performance.now();
          log(`[features] ${name}: ${done}/${total} posters (${((performance.now() - start) / 1000).toFixed(0)} s)`);
        }
      },
    });
    const seconds = computed > 0 ? (performance.now() - start) / 1000 : 0;
    // Column layout: per node, per pooling, that node's channels.
    const columns = new Map<string, [number, number]>();
    let offset = 0;
    for (const [i, node] of extractor.spec.nodes.entries()) {
      const channels = extractor.nodeDims[i]!;
      for (const pooling of extractor.spec.pooling) {
        columns.set(`${node}:${pooling}`, [offset, offset + channels]);
        offset += channels;
      }
    }
    if (offset !== extractor.featureDim) throw new Error(`column layout ${offset} ≠ featureDim ${extractor.featureDim}`);
    return { matrix: { name, dim: extractor.featureDim, data }, columns, seconds, computed };
  } finally {
    extractor.dispose();
  }
}

/** Keeps the given column ranges of a matrix, in order. */
export function selectColumns(m: FeatureMatrix, ranges: readonly [number, number][], name: string): FeatureMatrix {
  const dim = ranges.reduce((s, [a, b]) => s + (b - a), 0);
  const n = m.data.length / m.dim;
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let at = i * dim;
    for (const [a, b] of ranges) {
      data.set(m.data.subarray(i * m.dim + a, i * m.dim + b), at);
      at += b - a;
    }
  }
  return { name, dim, data };
}

/** Side-by-side concatenation of matrices with the same rows. */
export function concatColumns(parts: readonly FeatureMatrix[], name: string): FeatureMatrix {
  const n = parts[0]!.data.length / parts[0]!.dim;
  const dim = parts.reduce((s, p) => s + p.dim, 0);
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let at = i * dim;
    for (const p of parts) {
      data.set(p.data.subarray(i * p.dim, (i + 1) * p.dim), at);
      at += p.dim;
    }
  }
  return { name, dim, data };
}

export async function useLiteFeatures(films: readonly Film[], cacheDir: string | undefined):
  Promise<{ matrix: FeatureMatrix; seconds: number; computed: number; multiWindow: number }> {
  const encoder = await SentenceEncoder.load(cacheDir ? { cacheDir: join(cacheDir, 'embeddings') } : {});
  try {
    const texts = films.map((f) => f.overview);
    const multiWindow = texts.filter((t) => encoder.windows(t).length > 1).length;
    let computed = 0;
    let last = 0;
    const start = performance.now();
    const data = await encoder.embed(texts, {
      onProgress: (done, total) => {
        computed = total;
        if (performance.now() - last > 30_000 || done === total) {
          last = performance.now();
          log(`[features] use-lite: ${done}/${total} windows (${((performance.now() - start) / 1000).toFixed(0)} s)`);
        }
      },
    });
    return { matrix: { name: 'use-lite', dim: encoder.dim, data }, seconds: computed > 0 ? (performance.now() - start) / 1000 : 0, computed, multiWindow };
  } finally {
    encoder.dispose();
  }
}

/** Mean of the wink-100d vectors of an overview's words (words without a vector are skipped). */
export async function winkMeanFeatures(films: readonly Film[]): Promise<{ matrix: FeatureMatrix; seconds: number }> {
  const start = performance.now();
  const tokens = films.map((f) => tokenize(f.overview));
  const vocabulary = ['', '[UNK]', ...new Set(tokens.flat())];
  const index = new Map(vocabulary.map((w, i) => [w, i]));
  // scale 0: words without a pretrained vector get a zero row, recognisable and skipped below.
  const { matrix } = await loadPretrainedEmbeddings(vocabulary, { scale: 0 });
  const dim = 100;
  const data = new Float32Array(films.length * dim);
  tokens.forEach((words, i) => {
    let count = 0;
    for (const word of words) {
      const row = index.get(word)!;
      const v = matrix.subarray(row * dim, (row + 1) * dim);
      if (!v.some((x) => x !== 0)) continue;
      for (let d = 0; d < dim; d++) data[i * dim + d]! += v[d]!;
      count++;
    }
    if (count > 0) for (let d = 0; d < dim; d++) data[i * dim + d]! /= count;
  });
  return { matrix: { name: 'wink-mean', dim, data }, seconds: (performance.now() - start) / 1000 };
}

/**
 * TF-IDF bag of words: the `maxFeatures` words with the highest document frequency (≥ 2) among all
 * the films' overviews (no labels involved, so every fold's head may share it), sublinear tf, idf
 * smoothed, rows L2-normalised.
 */
export function tfidfFeatures(films: readonly Film[], maxFeatures = 5000): FeatureMatrix {
  const tokens = films.map((f) => tokenize(f.overview));
  const df = new Map<string, number>();
  for (const ws of tokens) for (const w of new Set(ws)) df.set(w, (df.get(w) ?? 0) + 1);
  const words = [...df.entries()].filter(([, c]) => c >= 2).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, maxFeatures);
  const column = new Map(words.map(([w], j) => [w, j]));
  const idf = words.map(([, c]) => Math.log((1 + films.length) / (1 + c)) + 1);
  const dim = words.length;
  const data = new Float32Array(films.length * dim);
  tokens.forEach((ws, i) => {
    const counts = new Map<number, number>();
    for (const w of ws) {
      const j = column.get(w);
      if (j !== undefined) counts.set(j, (counts.get(j) ?? 0) + 1);
    }
    let norm = 0;
    for (const [j, c] of counts) {
      const v = (1 + Math.log(c)) * idf[j]!;
      data[i * dim + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    if (norm > 0) for (const j of counts.keys()) data[i * dim + j]! /= norm;
  });
  return { name: 'tfidf', dim, data };
}
