import * as tf from '@tensorflow/tfjs';
import {
  ModelDirError, openModelDir, saveModelDir,
  type FilmsRecord, type ModalityOutput, type ModelKind, type ModelMetadata, type ModelMetadataInput, type TextClassifier,
} from '@filmgenre/model-artifact';
import { join } from 'node:path';
import { z } from 'zod';
import { ENCODER_DIR, openShippedEncoder, SENTENCE_PREDICT_BATCH, sentencePreprocessing, type SentencePreprocessing } from './classifier.js';
import { LONG_TEXT_MODES, SENTENCE_EMBEDDING_DIM, type SentenceEncoder } from './encoder.js';

/** metadata.kind of the directories this module writes and loads. */
export const SENTENCE_NEIGHBOURS_KIND = 'sentence-neighbours';
/** The training films' embeddings, each row of unit length: rows × dim float32, little-endian. */
export const NEIGHBOUR_EMBEDDINGS_FILE = 'neighbour-embeddings.bin';
/** The training films' genres: rows × genres bytes, 0 or 1. */
export const NEIGHBOUR_LABELS_FILE = 'neighbour-labels.bin';

export const NeighbourSettingsSchema = z.object({
  /** How many nearest training films vote. */
  k: z.int().positive(),
  /** Softness of the votes: a neighbour's weight is exp((similarity − the nearest's similarity) / temperature). */
  temperature: z.number().positive(),
  /** Pseudo-votes for the genres' base rates, against the nearest neighbour's weight of 1: no genre gets probability 0. */
  priorWeight: z.number().nonnegative(),
}).strict();
export type NeighbourSettings = z.output<typeof NeighbourSettingsSchema>;

/** Training films to vote: unit-length embeddings, their 0/1 genres, and the genres' (smoothed) base rates among them. */
export interface NeighbourIndex {
  rows: number;
  dim: number;
  numGenres: number;
  embeddings: Float32Array;
  labels: Uint8Array;
  baseRates: Float64Array;
}

function unitRows(embeddings: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(embeddings.length);
  for (let start = 0; start < embeddings.length; start += dim) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += embeddings[start + d]! ** 2;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let d = 0; d < dim; d++) out[start + d] = embeddings[start + d]! * scale;
  }
  return out;
}

/** The index of training films `embeddings` (rows × dim, any length: they are normalised here) with `labels` (rows × numGenres, 0/1). */
export function neighbourIndex(embeddings: Float32Array, labels: ArrayLike<number>, dim: number, numGenres: number): NeighbourIndex {
  const rows = embeddings.length / dim;
  if (!Number.isInteger(rows) || rows < 1) throw new RangeError(`${embeddings.length} values are not rows of ${dim}`);
  if (labels.length !== rows * numGenres) throw new RangeError(`labels hold ${labels.length / numGenres} films, the embeddings ${rows}`);
  const bytes = Uint8Array.from(labels, (v) => {
    if (v !== 0 && v !== 1) throw new RangeError(`labels must be 0 or 1, got ${v}`);
    return v;
  });
  // Laplace-smoothed (one positive and one negative film more), so a genre no indexed film has is unlikely, not impossible.
  const baseRates = new Float64Array(numGenres).fill(1 / (rows + 2));
  for (let i = 0; i < bytes.length; i++) baseRates[i % numGenres]! += bytes[i]! / (rows + 2);
  return { rows, dim, numGenres, embeddings: unitRows(embeddings, dim), labels: bytes, baseRates };
}

/**
 * Each query's genre probabilities from its k most similar training films (cosine similarity):
 * p_g = (Σ w_j·y_jg + priorWeight·rate_g) / (Σ w_j + priorWeight), w_j = exp((s_j − s_1) / temperature).
 * Similarities come from tfjs' matMul, in blocks of queries (bounded memory, the backend's speed).
 * `indexTensor`: the index's embeddings already as a [rows, dim] tensor (a loaded model keeps one:
 * copying the 11 MB into the backend cost 0.4–0.9 ms of a 2.5–5 ms vote for one overview); else made per call.
 */
export async function neighbourVotes(index: NeighbourIndex, queries: Float32Array, settings: NeighbourSettings, indexTensor?: tf.Tensor2D): Promise<Float32Array> {
  const { rows, dim, numGenres: k } = index;
  const n = queries.length / dim;
  if (!Number.isInteger(n)) throw new RangeError(`${queries.length} query values are not rows of ${dim}`);
  const nearest = Math.min(settings.k, rows);
  const out = new Float32Array(n * k);
  const unit = unitRows(queries, dim);
  const embeddings = indexTensor ?? tf.tensor2d(index.embeddings, [rows, dim]);
  try {
    for (let start = 0; start < n; start += SENTENCE_PREDICT_BATCH) {
      const count = Math.min(SENTENCE_PREDICT_BATCH, n - start);
      const product = tf.tidy(() => tf.matMul(tf.tensor2d(unit.subarray(start * dim, (start + count) * dim), [count, dim]), embeddings, false, true));
      let similarities: Float32Array;
      try {
        similarities = (await product.data()) as Float32Array;
      } finally {
        product.dispose();
      }
      const sorted = new Float32Array(rows);
      for (let q = 0; q < count; q++) {
        const row = similarities.subarray(q * rows, (q + 1) * rows);
        sorted.set(row);
        sorted.sort();
        const cutoff = sorted[rows - nearest]!;
        const top = sorted[rows - 1]!;
        const votes = out.subarray((start + q) * k, (start + q + 1) * k);
        let total = settings.priorWeight;
        for (let g = 0; g < k; g++) votes[g] = settings.priorWeight * index.baseRates[g]!;
        // Ties at the cutoff: the first ones in index order, so exactly `nearest` films vote.
        let taken = 0;
        for (let j = 0; j < rows && taken < nearest; j++) {
          if (row[j]! < cutoff) continue;
          taken++;
          const weight = Math.exp((row[j]! - top) / settings.temperature);
          total += weight;
          for (let g = 0; g < k; g++) if (index.labels[j * k + g]) votes[g]! += weight;
        }
        for (let g = 0; g < k; g++) votes[g]! /= total;
      }
    }
  } finally {
    if (!indexTensor) embeddings.dispose();
  }
  return out;
}

const NeighboursPreprocessingSchema = z.object({
  encoder: z.object({ dir: z.string().min(1), longText: z.enum(LONG_TEXT_MODES) }).passthrough(),
  neighbours: NeighbourSettingsSchema.extend({
    embeddingsFile: z.string().min(1),
    labelsFile: z.string().min(1),
    rows: z.int().positive(),
    dim: z.literal(SENTENCE_EMBEDDING_DIM),
  }).strict(),
});
/** What a sentence-neighbours directory records under metadata.preprocessing: the encoder as the sentence classifier records it, and the index. */
export type NeighboursPreprocessing = SentencePreprocessing & { neighbours: z.output<typeof NeighboursPreprocessingSchema>['neighbours'] };

/**
 * Writes a sentence-neighbours directory atomically: the index (every training film's embedding and
 * genres), the encoder's own files under encoder/, films.json and metadata.json: serving needs nothing else.
 */
export async function saveSentenceNeighbours(
  dir: string,
  args: { index: NeighbourIndex; settings: NeighbourSettings; encoder: SentenceEncoder; metadata: Omit<ModelMetadataInput, 'kind' | 'modality'>; films: FilmsRecord },
): Promise<ModelMetadata> {
  const { index } = args;
  if (index.dim !== SENTENCE_EMBEDDING_DIM) throw new ModelDirError(`${dir}: the index holds ${index.dim}-d embeddings, the encoder gives ${SENTENCE_EMBEDDING_DIM}`);
  if (index.numGenres !== args.metadata.genres.length) throw new ModelDirError(`${dir}: the index votes for ${index.numGenres} genres, metadata lists ${args.metadata.genres.length}`);
  const settings = NeighbourSettingsSchema.parse(args.settings);
  const preprocessing: NeighboursPreprocessing = {
    ...sentencePreprocessing(args.encoder),
    neighbours: { ...settings, embeddingsFile: NEIGHBOUR_EMBEDDINGS_FILE, labelsFile: NEIGHBOUR_LABELS_FILE, rows: index.rows, dim: index.dim },
  };
  return saveModelDir(dir, {
    metadata: { ...args.metadata, kind: SENTENCE_NEIGHBOURS_KIND, modality: 'text', preprocessing: { ...args.metadata.preprocessing, ...preprocessing } },
    films: args.films,
    files: {
      [NEIGHBOUR_EMBEDDINGS_FILE]: new Uint8Array(index.embeddings.buffer, index.embeddings.byteOffset, index.embeddings.byteLength),
      [NEIGHBOUR_LABELS_FILE]: index.labels,
    },
    writeExtra: (tmp) => args.encoder.save(join(tmp, ENCODER_DIR)),
  });
}

/** Loads a directory written by saveSentenceNeighbours, after verifying every file (the encoder's too) and the index's values. */
export async function loadSentenceNeighbours(dir: string): Promise<TextClassifier> {
  const artifact = openModelDir(dir, { kind: SENTENCE_NEIGHBOURS_KIND });
  const { metadata } = artifact;
  const { rows, dim, embeddingsFile, labelsFile, ...rest } = artifact.preprocessing(NeighboursPreprocessingSchema).neighbours;
  const settings = NeighbourSettingsSchema.parse(rest);
  const k = metadata.genres.length;
  const embeddings = artifact.readFloat32(embeddingsFile, rows * dim, `${rows} films × ${dim}`);
  for (let i = 0; i < rows; i++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += embeddings[i * dim + d]! ** 2;
    // Unit rows as saved (an all-zero row: an empty overview's); anything else is damage.
    if (!(Math.abs(norm - 1) < 1e-3 || norm === 0)) throw new ModelDirError(`${join(dir, embeddingsFile)}: film ${i}'s embedding has squared length ${norm}, not 1: the index is damaged (restore the directory or retrain)`);
  }
  const labels = artifact.readBytes(labelsFile);
  if (labels.byteLength !== rows * k) throw new ModelDirError(`${join(dir, labelsFile)}: ${labels.byteLength} bytes, expected ${rows} films × ${k} genres`);
  const notBinary = labels.findIndex((v) => v > 1);
  if (notBinary >= 0) throw new ModelDirError(`${join(dir, labelsFile)}: byte ${notBinary} is ${labels[notBinary]}, labels are 0 or 1`);
  const encoder = await openShippedEncoder(artifact, (metadata.preprocessing as unknown as SentencePreprocessing).encoder, dir);
  return new LoadedSentenceNeighbours(metadata, encoder, neighbourIndex(embeddings, labels, dim, k), settings);
}

/**
 * Overviews → sentence embeddings → votes of the most similar training films. Its features (what a
 * joint fusion would read) are the genres' logits: the index is the model, there is no hidden layer.
 */
class LoadedSentenceNeighbours implements TextClassifier {
  private disposed = false;
  private readonly indexTensor: tf.Tensor2D;

  constructor(readonly metadata: ModelMetadata, private readonly encoder: SentenceEncoder, private readonly index: NeighbourIndex, private readonly settings: NeighbourSettings) {
    this.indexTensor = tf.tensor2d(index.embeddings, [index.rows, index.dim]);
  }

  async predict(overviews: string[]): Promise<Float32Array> {
    return (await this.predictWithFeatures(overviews)).probabilities;
  }

  async predictWithFeatures(overviews: string[]): Promise<ModalityOutput> {
    if (this.disposed) throw new Error('this sentence-neighbours model has been disposed');
    const probabilities = await neighbourVotes(this.index, await this.encoder.embed(overviews), this.settings, this.indexTensor);
    const features = probabilities.map((p) => Math.log(Math.max(p, 1e-7) / Math.max(1 - p, 1e-7)));
    return { probabilities, features, featureDim: this.index.numGenres };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.encoder.dispose();
    this.indexTensor.dispose();
  }
}

/** Registers this module's directories with the models-directory loader. */
export const sentenceNeighboursKind: ModelKind<'text'> = { kind: SENTENCE_NEIGHBOURS_KIND, modality: 'text', load: loadSentenceNeighbours };
