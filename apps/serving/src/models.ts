import { GENRES } from '@filmgenre/core';
import type { Inference } from './config.js';
import * as tf from '@tensorflow/tfjs';
import { loadPosterClassifier } from '@filmgenre/model-cnn';
import { loadFusionClassifier } from '@filmgenre/model-fusion';
import { loadOverviewClassifier } from '@filmgenre/model-lstm';
import { readModelMetadata, type ModelMetadata } from '@filmgenre/tf-runtime';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

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

export class ModelsDirError extends Error {
  override name = 'ModelsDirError';
}

/**
 * Checks the models directory without loading weights (cheap, so the server can refuse to start
 * with one clear message before it binds a port): cnn/ and lstm/ must exist, fusion/ is optional,
 * and each metadata.json must be valid, of the right modality, and list the dataset's 25 genres in order.
 */
export function inspectModelsDir(dir: string): Record<ModelKey, ModelMetadata | undefined> {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new ModelsDirError(`models directory ${root} not found: train models first (npx nx train trainer) or pass --models-dir <dir>`);
  }
  const found = {} as Record<ModelKey, ModelMetadata | undefined>;
  for (const key of MODEL_KEYS) {
    const modelDir = join(root, key);
    if (!existsSync(modelDir)) {
      if (key === 'fusion') {
        found[key] = undefined;
        continue;
      }
      throw new ModelsDirError(`${modelDir} not found: a models directory must hold cnn/ and lstm/ (fusion/ is optional)`);
    }
    let metadata: ModelMetadata;
    try {
      metadata = readModelMetadata(modelDir);
    } catch (error) {
      throw new ModelsDirError(`${key} model is invalid: ${(error as Error).message}`);
    }
    if (metadata.modality !== MODALITY[key]) {
      throw new ModelsDirError(`${modelDir}/metadata.json: modality is '${metadata.modality}', expected '${MODALITY[key]}' for ${key}/`);
    }
    const mismatch = GENRES.findIndex((g, i) => metadata.genres[i] !== g);
    if (mismatch >= 0 || metadata.genres.length !== GENRES.length) {
      throw new ModelsDirError(`${modelDir}/metadata.json: genres do not match the dataset's ${GENRES.length} genres in order (first difference at position ${mismatch >= 0 ? mismatch + 1 : GENRES.length + 1})`);
    }
    found[key] = metadata;
  }
  return found;
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
    const cnn: ImageModel = await load('cnn', loadPosterClassifier);
    const lstm: TextModel = await load('lstm', loadOverviewClassifier);
    const fusion: FusionModel | undefined = present.fusion ? await load('fusion', loadFusionClassifier) : undefined;
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
