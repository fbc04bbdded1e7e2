import type { Inference } from './config.js';
import * as tf from '@tensorflow/tfjs';
import type { FusionClassifier, ImageClassifier, ModelMetadata, TextClassifier } from '@filmgenre/model-artifact';
import { inspectModelsDir as inspectRegistry, loadModel, ModelsDirError, type ModelsDirPlan } from '@filmgenre/model-registry';
import { encoderRuntimeLabel, resolveEncoderRuntime } from '@filmgenre/onnx-runtime';
import { join, resolve } from 'node:path';

export { ModelsDirError };
export type { ModalityOutput } from '@filmgenre/model-artifact';

/** A poster model as serving runs it: the contract's ImageClassifier, possibly behind several workers. */
export interface ImageModel extends ImageClassifier {
  /** Batches it can run at once (one per worker); 1 when absent. */
  readonly parallelism?: number;
}

/** An overview model as serving runs it, possibly behind several workers. */
export interface TextModel extends TextClassifier {
  /** Calls it can run at once (one per worker); 1 when absent. */
  readonly parallelism?: number;
}

/** One single-modality model of the directory, by its key (its directory name). */
export type MemberModel = { modality: 'image'; model: ImageModel } | { modality: 'text'; model: TextModel };

/** The fusion model: combines its members' outputs, by member key (metadata.members). */
export type FusionModel = FusionClassifier;

export interface ServingModels {
  dir: string;
  /** Single-modality models by key, in the directory's (sorted) order. */
  members: Record<string, MemberModel>;
  /** The fusion model, when the directory holds one; its members are all in `members`. */
  fusion?: FusionModel;
  /** Where the models run, for /v1/models: in this thread, or one worker thread per model. */
  runtime: { inference: Inference; backend: string; threads: number | null; encoders: string };
  /** Live tensors per runtime (one entry per model worker, or `process`): for leak checks and /metrics. */
  tensorCounts(): Promise<Record<string, number>>;
}

/** Every model key served: the members in order, then the fusion. */
export function modelKeys(models: Pick<ServingModels, 'members' | 'fusion'>): string[] {
  return [...Object.keys(models.members), ...(models.fusion ? [models.fusion.metadata.name] : [])];
}

/** The metadata of a served model by key (a member or the fusion). */
export function metadataOf(models: Pick<ServingModels, 'members' | 'fusion'>, key: string): ModelMetadata {
  const member = models.members[key];
  if (member) return member.model.metadata;
  if (models.fusion?.metadata.name === key) return models.fusion.metadata;
  throw new Error(`no model '${key}' is loaded`);
}

/** What a request must carry for this model to answer: a member its own input, the fusion its members' inputs. */
export function inputsNeeded(models: Pick<ServingModels, 'members' | 'fusion'>, key: string): ('poster' | 'overview')[] {
  const keys = models.members[key] ? [key] : (models.fusion?.members ?? []);
  const needs = new Set(keys.map((k) => (models.members[k]?.modality === 'image' ? 'poster' : 'overview') as 'poster' | 'overview'));
  return (['poster', 'overview'] as const).filter((input) => needs.has(input));
}

/** The input size of a poster model, as `decodePoster` takes it. */
export interface PosterSize {
  width: number;
  height: number;
}

/** `128x256`: one key per distinct poster input size (width × height). */
export const sizeKey = (size: PosterSize): string => `${size.width}x${size.height}`;

/** A poster model's input size from its metadata (preprocessing.inputWidth / inputHeight, the contract's fields). */
export function posterSizeFromMetadata(metadata: ModelMetadata, where: string): PosterSize {
  const { inputWidth: width, inputHeight: height } = metadata.preprocessing;
  if (!Number.isInteger(width) || !Number.isInteger(height) || (width as number) < 1 || (height as number) < 1) {
    throw new ModelsDirError(`${where}: preprocessing.inputWidth/inputHeight must be positive integers, got ${JSON.stringify(width)} × ${JSON.stringify(height)}`);
  }
  return { width: width as number, height: height as number };
}

/** One line per model for logs: `cnn:image/pretrained 128x256`, `fusion:fusion/stacked(cnn+sentence)`. */
export function describePlan(plan: ModelsDirPlan): string[] {
  const members = Object.entries(plan.members).map(([key, m]) =>
    `${key}:${m.modality}/${m.variant}${m.modality === 'image' ? ` ${sizeKey(posterSizeFromMetadata(m, key))}` : ''}`);
  const fusion = plan.fusion ? [`${plan.fusion.name}:fusion/${plan.fusion.variant}(${Object.keys(plan.fusion.members ?? {}).join('+')})`] : [];
  return [...members, ...fusion];
}

/**
 * Checks the models directory without loading weights (cheap, so the server can refuse to start
 * with one clear message before it binds a port). The registry checks known kinds, the dataset's
 * genres, at least one member, at most one fusion and a fusion whose members are all present with
 * the very files it was fitted on; serving adds that a poster model states its input size and that
 * a fusion names its members.
 */
export function inspectModelsDir(dir: string): ModelsDirPlan {
  const plan = inspectRegistry(dir);
  for (const [key, metadata] of Object.entries(plan.members)) {
    if (metadata.modality === 'image') posterSizeFromMetadata(metadata, join(plan.dir, key, 'metadata.json'));
  }
  if (plan.fusion && Object.keys(plan.fusion.members ?? {}).length === 0) {
    throw new ModelsDirError(`${join(plan.dir, plan.fusion.name, 'metadata.json')}: a fusion model must name its members (metadata.members)`);
  }
  return plan;
}

/**
 * Loads every model of the directory into this thread, on the backend already initialised; on any
 * failure disposes what was loaded and throws.
 */
export async function loadModels(dir: string, options: { backendThreads?: number } = {}): Promise<ServingModels> {
  const root = resolve(dir);
  const plan = inspectModelsDir(root);
  const loaded: { dispose(): void }[] = [];
  const load = async <T extends { dispose(): void }>(key: string): Promise<T> => {
    try {
      const model = (await loadModel(join(root, key))) as unknown as T;
      loaded.push(model);
      return model;
    } catch (error) {
      throw new ModelsDirError(`${key} model in ${join(root, key)} could not be loaded: ${(error as Error).message}`);
    }
  };
  try {
    const members: Record<string, MemberModel> = {};
    for (const [key, metadata] of Object.entries(plan.members)) {
      members[key] = metadata.modality === 'image' ? { modality: 'image', model: await load<ImageModel>(key) } : { modality: 'text', model: await load<TextModel>(key) };
    }
    const fusion = plan.fusion ? await load<FusionModel>(plan.fusion.name) : undefined;
    return {
      dir: root, members, ...(fusion ? { fusion } : {}),
      runtime: { inference: 'inline', backend: tf.getBackend(), threads: options.backendThreads ?? null, encoders: encoderRuntimeLabel(resolveEncoderRuntime(), tf.getBackend()) },
      tensorCounts: async () => ({ process: tf.memory().numTensors }),
    };
  } catch (error) {
    for (const model of loaded) model.dispose();
    throw error;
  }
}

export function disposeModels(models: ServingModels): void {
  for (const member of Object.values(models.members)) member.model.dispose();
  models.fusion?.dispose();
}
