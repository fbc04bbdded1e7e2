import { trimTrailingPadding } from './trim.js';
import * as tf from '@tensorflow/tfjs';
import { TextVectorizer } from '@filmgenre/data-text';
import {
  ModelDirError, openModelDir, saveModelDir,
  type FilmsRecord, type ModelKind, type ModelMetadata, type ModelMetadataInput, type TextClassifier,
} from '@filmgenre/model-artifact';
import { join } from 'node:path';
import { FEATURE_LAYER } from './model.js';

export const VOCABULARY_FILE = 'vocabulary.json';
/** Films per forward pass inside predict: bounds memory whatever the number of overviews. */
export const PREDICT_BATCH = 128;
/** metadata.kind of the directories this package writes and loads. */
export const OVERVIEW_CLASSIFIER_KIND = 'overview-classifier';

export interface OverviewClassifier extends TextClassifier {
  readonly vectorizer: TextVectorizer;
}

/** The model's fixed input length, or null when it accepts any length (the BiLSTM). */
function sequenceLengthOf(model: tf.LayersModel): number | null {
  const shape = model.inputs[0]?.shape;
  const length = shape?.[1];
  if (model.inputs.length !== 1 || shape?.length !== 2 || (typeof length !== 'number' && length !== null)) {
    throw new Error(`expected a model with one [batch, sequenceLength] input, got ${JSON.stringify(model.inputs.map((i) => i.shape))}`);
  }
  return length ?? null;
}

function featureDimOf(model: tf.LayersModel): number {
  const dim = model.getLayer(FEATURE_LAYER).outputShape.at(-1);
  if (typeof dim !== 'number') throw new Error(`layer '${FEATURE_LAYER}' has no fixed output size`);
  return dim;
}

/**
 * Writes the model, its vocabulary and metadata as one model directory (atomic swap). The
 * vectorizer's settings are recorded in metadata.preprocessing; values passed there must agree.
 */
export async function saveOverviewClassifier(
  dir: string,
  args: { model: tf.LayersModel; vectorizer: TextVectorizer; metadata: Omit<ModelMetadataInput, 'kind' | 'modality'>; films: FilmsRecord },
): Promise<ModelMetadata> {
  const { model, vectorizer } = args;
  const metadata: ModelMetadataInput = { ...args.metadata, kind: OVERVIEW_CLASSIFIER_KIND, modality: 'text' };
  const sequenceLength = sequenceLengthOf(model);
  const settings = vectorizer.settings;
  const vocabularyFile = (metadata.preprocessing.vocabularyFile as string | undefined) ?? VOCABULARY_FILE;
  const derived: Record<string, unknown> = {
    vocabularyFile,
    sequenceLength: settings.sequenceLength,
    maxTokens: settings.maxTokens,
    minCount: settings.minCount,
    vocabularySize: vectorizer.vocabularySize,
    featureLayer: FEATURE_LAYER,
    featureDim: featureDimOf(model),
  };
  for (const [key, value] of Object.entries(derived)) {
    const given = metadata.preprocessing[key];
    if (given !== undefined && given !== value) {
      throw new ModelDirError(`${dir}: metadata.preprocessing.${key} is ${JSON.stringify(given)} but the model/vectorizer has ${JSON.stringify(value)}`);
    }
  }
  if (sequenceLength !== null && settings.sequenceLength !== sequenceLength) {
    throw new ModelDirError(`${dir}: the vectorizer makes sequences of ${settings.sequenceLength} tokens, the model expects ${sequenceLength}`);
  }
  const outputs = model.outputs[0]?.shape.at(-1);
  if (outputs !== metadata.genres.length) {
    throw new ModelDirError(`${dir}: the model outputs ${outputs} genres, metadata lists ${metadata.genres.length}`);
  }
  return saveModelDir(dir, {
    model,
    metadata: { ...metadata, preprocessing: { ...metadata.preprocessing, ...derived } },
    films: args.films,
    files: { [vocabularyFile]: `${JSON.stringify(vectorizer.toJSON())}\n` },
  });
}

/** Loads a directory written by saveOverviewClassifier (the custom layers of this package included). */
export async function loadOverviewClassifier(dir: string): Promise<OverviewClassifier> {
  const loaded = openModelDir(dir, { kind: OVERVIEW_CLASSIFIER_KIND });
  const { metadata } = loaded;
  const model = await loaded.loadLayersModel();
  if (!model) throw new ModelDirError(`${join(dir, 'model.json')}: not found (the model directory is incomplete)`);
  try {
    const vocabularyFile = metadata.preprocessing.vocabularyFile;
    if (typeof vocabularyFile !== 'string') throw new ModelDirError(`${join(dir, 'metadata.json')}: preprocessing.vocabularyFile is missing`);
    const vectorizer = loaded.readJson(vocabularyFile, (raw) => TextVectorizer.fromJSON(raw as Parameters<typeof TextVectorizer.fromJSON>[0]));
    const sequenceLength = sequenceLengthOf(model);
    if (sequenceLength !== null && vectorizer.settings.sequenceLength !== sequenceLength) {
      throw new ModelDirError(`${join(dir, vocabularyFile)}: sequenceLength ${vectorizer.settings.sequenceLength} does not match the model's input length ${sequenceLength}`);
    }
    const outputs = model.outputs[0]?.shape.at(-1);
    if (outputs !== metadata.genres.length) throw new ModelDirError(`${dir}: the model outputs ${outputs} genres, metadata lists ${metadata.genres.length}`);
    return new LoadedOverviewClassifier(metadata, vectorizer, model);
  } catch (error) {
    model.dispose();
    throw error;
  }
}

class LoadedOverviewClassifier implements OverviewClassifier {
  private readonly withFeatures: tf.LayersModel;
  private readonly numGenres: number;
  private readonly featureDim: number;
  private readonly acceptsAnyLength: boolean;
  private disposed = false;

  constructor(readonly metadata: ModelMetadata, readonly vectorizer: TextVectorizer, private readonly model: tf.LayersModel) {
    this.acceptsAnyLength = sequenceLengthOf(model) === null;
    // Same layers and weights, two outputs: no copy of the weights is made.
    this.withFeatures = tf.model({ inputs: model.inputs, outputs: [model.getLayer(FEATURE_LAYER).output as tf.SymbolicTensor, ...model.outputs] });
    this.numGenres = metadata.genres.length;
    this.featureDim = featureDimOf(model);
  }

  async predict(overviews: string[]): Promise<Float32Array> {
    return (await this.run(overviews, false)).probabilities;
  }

  async predictWithFeatures(overviews: string[]) {
    const { probabilities, features } = await this.run(overviews, true);
    return { probabilities, features: features!, featureDim: this.featureDim };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }

  private async run(overviews: string[], wantFeatures: boolean): Promise<{ probabilities: Float32Array; features?: Float32Array }> {
    if (this.disposed) throw new Error('this OverviewClassifier has been disposed');
    const n = overviews.length;
    const probabilities = new Float32Array(n * this.numGenres);
    const features = wantFeatures ? new Float32Array(n * this.featureDim) : undefined;
    const length = this.vectorizer.settings.sequenceLength;
    for (let start = 0; start < n; start += PREDICT_BATCH) {
      const texts = overviews.slice(start, start + PREDICT_BATCH);
      const encoded = this.vectorizer.encodeBatch(texts);
      const batch = this.acceptsAnyLength ? trimTrailingPadding(encoded, texts.length, length) : { ids: encoded, length };
      const outs = tf.tidy(() => {
        const x = tf.tensor2d(batch.ids, [texts.length, batch.length], 'int32');
        if (!wantFeatures) return [this.model.predict(x) as tf.Tensor];
        return this.withFeatures.predict(x) as tf.Tensor[];
      });
      try {
        const values = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
        if (wantFeatures) {
          features!.set(values[0]!, start * this.featureDim);
          probabilities.set(values[1]!, start * this.numGenres);
        } else {
          probabilities.set(values[0]!, start * this.numGenres);
        }
      } finally {
        outs.forEach((t) => t.dispose());
      }
    }
    return { probabilities, features };
  }
}

/** Registers this package's directories with the models-directory loader. */
export const overviewClassifierKind: ModelKind<'text'> = { kind: OVERVIEW_CLASSIFIER_KIND, modality: 'text', load: loadOverviewClassifier };
