import type { Inference } from './config.js';
import * as tf from '@tensorflow/tfjs';
import type { FusionClassifier, ImageClassifier, ModelMetadata, TextClassifier } from '@filmgenre/model-artifact';
import { inspectModelsDir, ModelsDirError, openModelsDir, posterSizeOf, type ModelsDirPlan } from '@filmgenre/model-registry';
import { encoderRuntimeLabel, resolveEncoderRuntime } from '@filmgenre/onnx-runtime';
import { workerHost, type WorkerModelsOptions } from './inference/worker-models.js';

export { inspectModelsDir, ModelsDirError };
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
  /** The fusion model, when the directory holds one fitted on these members. */
  fusion?: FusionModel;
  /** Models of the directory not served, with the reason (a fusion fitted on a member since retrained): /v1/models and /readyz say so. */
  unavailable: Record<string, string>;
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

/** One line per model for logs: `cnn:image/pretrained 128x256`, `fusion:fusion/stacked(cnn+sentence)`. */
export function describePlan(plan: ModelsDirPlan): string[] {
  const members = Object.entries(plan.members).map(([key, m]) =>
    `${key}:${m.modality}/${m.variant}${m.modality === 'image' ? ` ${sizeKey(posterSizeOf(m, key))}` : ''}`);
  const fusion = plan.fusion ? [`${plan.fusion.name}:fusion/${plan.fusion.variant}(${Object.keys(plan.fusion.members ?? {}).join('+')})`] : [];
  const unavailable = Object.keys(plan.unavailable).map((key) => `${key}: unavailable`);
  return [...members, ...fusion, ...unavailable];
}

export interface LoadModelsOptions {
  /** Each model in its own worker thread(s) (serving's `workers` inference); absent: in this thread, on the backend already initialised. */
  workers?: WorkerModelsOptions;
  /** XNNPACK threads of this thread's backend, for /v1/models (in this thread only). */
  backendThreads?: number;
  /** Refuse to start when a model of the directory cannot be served (a stale fusion) instead of serving the others. */
  requireAll?: boolean;
}

/**
 * Opens the models directory with model-registry's opener (every file verified, every model warmed
 * up), in this thread or in worker threads; on any failure disposes what was loaded and throws.
 */
export async function loadModels(dir: string, options: LoadModelsOptions = {}): Promise<ServingModels> {
  const workers = options.workers ? workerHost(options.workers) : undefined;
  const opened = await openModelsDir(dir, { ...(workers ? { host: workers.host } : {}), ...(options.requireAll ? { requireAll: true } : {}) });
  const members = Object.fromEntries(Object.entries(opened.members).map(([key, model]): [string, MemberModel] =>
    model.metadata.modality === 'image' ? [key, { modality: 'image', model: model as ImageModel }] : [key, { modality: 'text', model: model as TextModel }]));
  const backend = tf.getBackend();
  return {
    dir: opened.dir, members, ...(opened.fusion ? { fusion: opened.fusion } : {}), unavailable: opened.unavailable,
    runtime: workers?.runtime() ?? { inference: 'inline', backend, threads: options.backendThreads ?? null, encoders: encoderRuntimeLabel(resolveEncoderRuntime(), backend) },
    tensorCounts: workers?.tensorCounts ?? (async () => ({ process: tf.memory().numTensors })),
  };
}

export function disposeModels(models: ServingModels): void {
  for (const member of Object.values(models.members)) member.model.dispose();
  models.fusion?.dispose();
}
