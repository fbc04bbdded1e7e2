import {
  assertFinite, ModelDirError, openModelDir, saveModelDir,
  type FilmsRecord, type ModalityOutput, type ModelKind, type ModelMetadata, type ModelMetadataInput, type TextClassifier,
} from '@filmgenre/model-artifact';
import { join } from 'node:path';
import { z } from 'zod';
import { genreLogits, sigmoid, type GenreLogistic } from './logistic.js';
import { TfidfVectorizer } from './tfidf.js';

/** metadata.kind of the directories this package writes and loads. */
export const LEXICAL_CLASSIFIER_KIND = 'lexical-classifier';
/** The vectorizer: vocabulary, idf and settings (JSON). */
export const TFIDF_FILE = 'tfidf.json';
/** The regressions: dim × genres weights (row-major by term), then one bias per genre; float32, little-endian. */
export const GENRE_WEIGHTS_FILE = 'genre-weights.bin';

/** What a lexical classifier records under metadata.preprocessing. */
const LexicalPreprocessingSchema = z.object({
  tfidfFile: z.string().min(1),
  weightsFile: z.string().min(1),
  /** Vocabulary size: the weights file must hold (dim + 1) × genres floats. */
  dim: z.int().positive(),
});
export type LexicalPreprocessing = z.output<typeof LexicalPreprocessingSchema>;

/** A fitted lexical model: the vectorizer and one logistic regression per genre over its columns. */
export interface LexicalModel {
  vectorizer: TfidfVectorizer;
  regression: GenreLogistic;
}

function encodeWeights(regression: GenreLogistic): Uint8Array {
  const all = new Float32Array(regression.weights.length + regression.bias.length);
  all.set(regression.weights);
  all.set(regression.bias, regression.weights.length);
  return new Uint8Array(all.buffer);
}

/**
 * Writes a lexical classifier directory atomically: tfidf.json, genre-weights.bin, films.json and
 * metadata.json (with every file's sha256): serving needs nothing else.
 */
export async function saveLexicalClassifier(
  dir: string,
  args: { model: LexicalModel; metadata: Omit<ModelMetadataInput, 'kind' | 'modality'>; films: FilmsRecord },
): Promise<ModelMetadata> {
  const { vectorizer, regression } = args.model;
  if (regression.dim !== vectorizer.dim) throw new ModelDirError(`${dir}: the regressions take ${regression.dim} columns, the vocabulary has ${vectorizer.dim}`);
  if (regression.numGenres !== args.metadata.genres.length) throw new ModelDirError(`${dir}: ${regression.numGenres} regressions, metadata lists ${args.metadata.genres.length} genres`);
  assertFinite(regression.weights, regression.numGenres, `${dir} weights`);
  const preprocessing: LexicalPreprocessing = { tfidfFile: TFIDF_FILE, weightsFile: GENRE_WEIGHTS_FILE, dim: vectorizer.dim };
  return saveModelDir(dir, {
    metadata: { ...args.metadata, kind: LEXICAL_CLASSIFIER_KIND, modality: 'text', preprocessing: { ...args.metadata.preprocessing, ...preprocessing } },
    films: args.films,
    files: { [TFIDF_FILE]: `${JSON.stringify(vectorizer.toJson())}\n`, [GENRE_WEIGHTS_FILE]: encodeWeights(regression) },
  });
}

/** Loads a directory written by saveLexicalClassifier, after verifying every file against its sha256. */
export async function loadLexicalClassifier(dir: string): Promise<TextClassifier> {
  const artifact = openModelDir(dir, { kind: LEXICAL_CLASSIFIER_KIND });
  const { metadata } = artifact;
  const { tfidfFile, weightsFile, dim } = artifact.preprocessing(LexicalPreprocessingSchema);
  const vectorizer = artifact.readJson(tfidfFile, (raw) => TfidfVectorizer.fromJson(raw, join(dir, tfidfFile)));
  if (vectorizer.dim !== dim) throw new ModelDirError(`${join(dir, tfidfFile)}: ${vectorizer.dim} terms, metadata says ${dim}`);
  const k = metadata.genres.length;
  const all = artifact.readFloat32(weightsFile, (dim + 1) * k, `(${dim} terms + 1) × ${k} genres`);
  for (let i = 0; i < all.length; i++) {
    if (!Number.isFinite(all[i]!)) throw new ModelDirError(`${join(dir, weightsFile)}: holds ${all[i]} at index ${i}: the weights are damaged (restore the directory or retrain)`);
  }
  const regression: GenreLogistic = { dim, numGenres: k, weights: all.subarray(0, dim * k), bias: all.subarray(dim * k) };
  return new LoadedLexicalClassifier(metadata, { vectorizer, regression });
}

/**
 * Overviews → TF-IDF rows → each genre's logit and probability. Its features (what a joint fusion
 * would read) are the 25 logits: the TF-IDF rows themselves are sparse and tens of thousands wide.
 */
class LoadedLexicalClassifier implements TextClassifier {
  private disposed = false;

  constructor(readonly metadata: ModelMetadata, private readonly model: LexicalModel) {}

  async predict(overviews: string[]): Promise<Float32Array> {
    return (await this.predictWithFeatures(overviews)).probabilities;
  }

  async predictWithFeatures(overviews: string[]): Promise<ModalityOutput> {
    if (this.disposed) throw new Error('this lexical classifier has been disposed');
    const logits = genreLogits(this.model.regression, this.model.vectorizer.transform(overviews));
    const probabilities = logits.map(sigmoid);
    return { probabilities, features: logits, featureDim: this.model.regression.numGenres };
  }

  dispose(): void {
    this.disposed = true;
  }
}

/** Registers this package's directories with the models-directory loader. */
export const lexicalClassifierKind: ModelKind<'text'> = { kind: LEXICAL_CLASSIFIER_KIND, modality: 'text', load: loadLexicalClassifier };
