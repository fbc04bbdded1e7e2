import * as tf from '@tensorflow/tfjs';
import {
  compileFeatureHeads, METADATA_JSON, ModelDirError, openModelDir, saveModelDir,
  type FeatureHeads, type FilmsRecord, type ModalityOutput, type ModelDir, type ModelKind, type ModelMetadata, type ModelMetadataInput, type TextClassifier,
} from '@filmgenre/model-artifact';
import { NUM_GENRES } from '@filmgenre/core';
import { join } from 'node:path';
import { LONG_TEXT_MODES, SENTENCE_EMBEDDING_DIM, SentenceEncoder, type SentenceEncoderInfo } from './encoder.js';

/** metadata.kind of the directories this package writes and loads. */
export const SENTENCE_CLASSIFIER_KIND = 'sentence-classifier';
/** Sub-directory of a model directory holding the encoder's files, as shipped. */
export const ENCODER_DIR = 'encoder';
/** Overviews per encoder + head pass: bounds memory whatever the number of overviews. */
export const SENTENCE_PREDICT_BATCH = 256;

/** The head the text team trains over the sentence embeddings: dense ReLU → dropout → 25 sigmoids. */
export function createSentenceHead(options: { hiddenUnits: number; dropout: number; seed: number; name: string; numGenres?: number }): tf.LayersModel {
  const at = (layer: string) => `${options.name}_${layer}`;
  const input = tf.input({ shape: [SENTENCE_EMBEDDING_DIM], name: at('embedding') });
  const hidden = tf.layers.dense({
    units: options.hiddenUnits, activation: 'relu', name: at('hidden'), kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed }),
  }).apply(input) as tf.SymbolicTensor;
  const dropped = tf.layers.dropout({ rate: options.dropout, name: at('dropout'), seed: options.seed }).apply(hidden) as tf.SymbolicTensor;
  const out = tf.layers.dense({
    units: options.numGenres ?? NUM_GENRES, activation: 'sigmoid', name: at('genres'), kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed + 1 }),
  }).apply(dropped) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: options.name });
}

/** What a sentence classifier records under metadata.preprocessing. */
export interface SentencePreprocessing {
  /** The encoder's info (its runtime: what computed the embeddings the heads trained on) and its files' directory. */
  encoder: SentenceEncoderInfo & { dir: string };
}

export function sentencePreprocessing(encoder: SentenceEncoder): SentencePreprocessing {
  return { encoder: { dir: ENCODER_DIR, ...encoder.info } };
}

/**
 * Writes a sentence classifier directory atomically: the head (model.json + weights.bin), the
 * encoder's own files under encoder/, films.json and metadata.json: serving needs nothing else.
 */
export async function saveSentenceClassifier(
  dir: string,
  args: { head: tf.LayersModel; encoder: SentenceEncoder; metadata: Omit<ModelMetadataInput, 'kind' | 'modality'>; films: FilmsRecord },
): Promise<ModelMetadata> {
  const metadata: ModelMetadataInput = { ...args.metadata, kind: SENTENCE_CLASSIFIER_KIND, modality: 'text', preprocessing: { ...args.metadata.preprocessing, ...sentencePreprocessing(args.encoder) } };
  const [inDim, outDim] = [args.head.inputs[0]?.shape.at(-1), args.head.outputs[0]?.shape.at(-1)];
  if (args.head.inputs.length !== 1 || inDim !== SENTENCE_EMBEDDING_DIM) throw new ModelDirError(`${dir}: the head takes ${JSON.stringify(args.head.inputs.map((i) => i.shape))}, expected one ${SENTENCE_EMBEDDING_DIM}-d embedding`);
  if (outDim !== metadata.genres.length) throw new ModelDirError(`${dir}: the head outputs ${outDim} genres, metadata lists ${metadata.genres.length}`);
  return saveModelDir(dir, { model: args.head, metadata, films: args.films, writeExtra: (tmp) => args.encoder.save(join(tmp, ENCODER_DIR)) });
}

/**
 * The encoder a model directory ships under `recorded.dir`, refused unless it is the one the model
 * was trained with (the network's and the tokenizer's fingerprints recorded in its metadata).
 */
export async function openShippedEncoder(artifact: ModelDir, recorded: SentencePreprocessing['encoder'], dir: string): Promise<SentenceEncoder> {
  const encoder = await SentenceEncoder.fromFiles((name) => artifact.readBytes(`${recorded.dir}/${name}`), join(dir, recorded.dir), { longText: recorded.longText });
  if (encoder.info.modelSha256 !== recorded.modelSha256 || encoder.tokenizer.fingerprint !== recorded.tokenizer.fingerprint) {
    encoder.dispose();
    throw new ModelDirError(`${join(dir, recorded.dir)}: encoder ${encoder.info.modelSha256} / tokenizer ${encoder.tokenizer.fingerprint} is not the one the model was trained on (${recorded.modelSha256} / ${recorded.tokenizer.fingerprint})`);
  }
  return encoder;
}

/** Loads a directory written by saveSentenceClassifier, after verifying every file (the encoder's too). */
export async function loadSentenceClassifier(dir: string): Promise<TextClassifier> {
  const artifact = openModelDir(dir, { kind: SENTENCE_CLASSIFIER_KIND });
  const { metadata } = artifact;
  const where = join(dir, METADATA_JSON);
  const recorded = (metadata.preprocessing as Partial<SentencePreprocessing>).encoder;
  if (!recorded || !LONG_TEXT_MODES.includes(recorded.longText)) throw new ModelDirError(`${where}: preprocessing.encoder is missing or invalid`);
  const head = await artifact.loadLayersModel();
  if (!head) throw new ModelDirError(`${join(dir, 'model.json')}: not found (the sentence classifier directory is incomplete)`);
  let encoder: SentenceEncoder | undefined;
  try {
    encoder = await openShippedEncoder(artifact, recorded, dir);
    if (head.outputs[0]?.shape.at(-1) !== metadata.genres.length) throw new ModelDirError(`${dir}: the head outputs ${head.outputs[0]?.shape.at(-1)} genres, metadata lists ${metadata.genres.length}`);
    return new LoadedSentenceClassifier(metadata, encoder, head, await compileFeatureHeads(head));
  } catch (error) {
    head.dispose();
    encoder?.dispose();
    throw error;
  }
}

/** Overviews → sentence embeddings (the features fusion reads) → the head's genre probabilities. */
class LoadedSentenceClassifier implements TextClassifier {
  private disposed = false;

  constructor(
    readonly metadata: ModelMetadata,
    private readonly encoder: SentenceEncoder,
    private readonly head: tf.LayersModel,
    /** The head compiled for scoring (onnxruntime where it loads). */
    private readonly heads: FeatureHeads,
  ) {}

  async predict(overviews: string[]): Promise<Float32Array> {
    return (await this.predictWithFeatures(overviews)).probabilities;
  }

  async predictWithFeatures(overviews: string[]): Promise<ModalityOutput> {
    if (this.disposed) throw new Error('this sentence classifier has been disposed');
    const k = this.metadata.genres.length;
    const dim = SENTENCE_EMBEDDING_DIM;
    const features = new Float32Array(overviews.length * dim);
    const probabilities = new Float32Array(overviews.length * k);
    for (let start = 0; start < overviews.length; start += SENTENCE_PREDICT_BATCH) {
      const texts = overviews.slice(start, start + SENTENCE_PREDICT_BATCH);
      const embedded = await this.encoder.embed(texts);
      features.set(embedded, start * dim);
      probabilities.set(await this.heads.predict(embedded, texts.length), start * k);
    }
    return { probabilities, features, featureDim: dim };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.heads.dispose();
    this.head.dispose();
    this.encoder.dispose();
  }
}

/** Registers this package's directories with the models-directory loader. */
export const sentenceClassifierKind: ModelKind<'text'> = { kind: SENTENCE_CLASSIFIER_KIND, modality: 'text', load: loadSentenceClassifier };
