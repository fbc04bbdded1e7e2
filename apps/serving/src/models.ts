import type { Inference } from './config.js';
import * as tf from '@tensorflow/tfjs';
import type { FusionClassifier, ImageClassifier, ModelMetadata, TextClassifier } from '@filmgenre/model-artifact';
import { inspectModelsDir as inspectRegistry, loadModel, ModelsDirError } from '@filmgenre/model-registry';
import { join, resolve } from 'node:path';

export { ModelsDirError };

/** What serving needs from each model package (the packages' classifiers satisfy these). */
export interface WithFeatures {
  probabilities: Float32Array;
  features: Float32Array;
  featureDim: number;
}

export interface ImageModel {
  metadata: ModelMetadata;
  imageSize: number;
  /** Batches it can run at once (one per worker); 1 when absent. */
  parallelism?: number;
  predict(posters: Uint8Array[]): Promise<Float32Array>;
  predictWithFeatures(posters: Uint8Array[]): Promise<WithFeatures>;
  dispose(): void;
}

export interface TextModel {
  metadata: ModelMetadata;
  predict(overviews: string[]): Promise<Float32Array>;
  predictWithFeatures(overviews: string[]): Promise<WithFeatures>;
  dispose(): void;
}

export interface ModalityOutput {
  probabilities: Float32Array;
  features: Float32Array;
}

/** One modality's outputs for a batch: n×25 probabilities and n×featureDim features, row-major. */
export interface FusionInput {
  probabilities: Float32Array;
  features: Float32Array;
  featureDim: number;
}

export interface FusionModel {
  metadata: ModelMetadata;
  predict(input: { image: FusionInput; text: FusionInput }): Promise<Float32Array>;
  dispose(): void;
}

export interface ServingModels {
  dir: string;
  cnn: ImageModel;
  lstm: TextModel;
  fusion?: FusionModel;
  /** Where the models run, for /v1/models: in this thread, or one worker thread per model. */
  runtime: { inference: Inference; backend: string; threads: number | null };
  /** Live tensors per runtime (one entry per model worker, or `process`): for leak checks and /metrics. */
  tensorCounts(): Promise<Record<string, number>>;
}


export type ModelKey = 'cnn' | 'lstm' | 'fusion';
export const MODEL_KEYS: readonly ModelKey[] = ['cnn', 'lstm', 'fusion'];
const MODALITY: Record<ModelKey, ModelMetadata['modality']> = { cnn: 'image', lstm: 'text', fusion: 'fusion' };

/**
 * Checks the models directory without loading weights (cheap, so the server can refuse to start
 * with one clear message before it binds a port): the registry's checks (known kinds, the dataset's
 * genres, a fusion pinned to the members present), plus what this server serves: a cnn/ poster
 * model, an lstm/ overview model and, optionally, a fusion/ over those two.
 */
export function inspectModelsDir(dir: string): Record<ModelKey, ModelMetadata | undefined> {
  const plan = inspectRegistry(dir);
  const found: Record<ModelKey, ModelMetadata | undefined> = { cnn: plan.members['cnn'], lstm: plan.members['lstm'], fusion: plan.fusion };
  for (const key of MODEL_KEYS) {
    const metadata = found[key];
    if (!metadata) {
      if (key === 'fusion') continue;
      throw new ModelsDirError(`${join(plan.dir, key)} not found: a models directory must hold cnn/ and lstm/ (fusion/ is optional)`);
    }
    if (metadata.modality !== MODALITY[key]) {
      throw new ModelsDirError(`${join(plan.dir, key)}/metadata.json: modality is '${metadata.modality}', expected '${MODALITY[key]}' for ${key}/`);
    }
  }
  if (plan.fusion && plan.fusion.name !== 'fusion') throw new ModelsDirError(`${join(plan.dir, plan.fusion.name)}: this server serves a fusion model named fusion/`);
  return found;
}

/** The fusion classifier behind serving's {image, text} call shape: its members are this server's cnn and lstm. */
export function asServingFusion(fusion: FusionClassifier): FusionModel {
  const roles = Object.fromEntries(Object.entries(fusion.metadata.members ?? {}).map(([key, m]) => [m.modality, key]));
  return {
    metadata: fusion.metadata,
    predict: ({ image, text }) => fusion.predict({ [roles['image'] ?? 'cnn']: image, [roles['text'] ?? 'lstm']: text }),
    dispose: () => fusion.dispose(),
  };
}

/**
 * Loads every model of the directory into this thread, on the backend already initialised; on any
 * failure disposes what was loaded and throws.
 */
export async function loadModels(dir: string, options: { backendThreads?: number } = {}): Promise<ServingModels> {
  const root = resolve(dir);
  const present = inspectModelsDir(root);
  const loaded: { dispose(): void }[] = [];
  const load = async <T extends { dispose(): void }>(key: ModelKey, loader: (d: string) => Promise<T>): Promise<T> => {
    try {
      const model = await loader(join(root, key));
      loaded.push(model);
      return model;
    } catch (error) {
      throw new ModelsDirError(`${key} model in ${join(root, key)} could not be loaded: ${(error as Error).message}`);
    }
  };
  try {
    const cnn: ImageModel = await load('cnn', async (d) => (await loadModel(d)) as ImageClassifier);
    const lstm: TextModel = await load('lstm', async (d) => (await loadModel(d)) as TextClassifier);
    const fusion: FusionModel | undefined = present.fusion ? await load('fusion', async (d) => asServingFusion((await loadModel(d)) as FusionClassifier)) : undefined;
    return {
      dir: root, cnn, lstm, ...(fusion ? { fusion } : {}),
      runtime: { inference: 'inline', backend: tf.getBackend(), threads: options.backendThreads ?? null },
      tensorCounts: async () => ({ process: tf.memory().numTensors }),
    };
  } catch (error) {
    for (const model of loaded) model.dispose();
    throw error;
  }
}

export function disposeModels(models: ServingModels): void {
  models.cnn.dispose();
  models.lstm.dispose();
  models.fusion?.dispose();
}
