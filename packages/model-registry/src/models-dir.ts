import { GENRES, yieldToEventLoop } from '@filmgenre/core';
import {
  artifactDigest, assertFinite, METADATA_JSON, ModelDirError, readModelMetadata,
  type AnyClassifier, type FusionClassifier, type ImageClassifier, type ModalityOutput, type ModelKind, type ModelMetadata, type TextClassifier,
} from '@filmgenre/model-artifact';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MODEL_KINDS } from './kinds.js';

/** A models directory that cannot be served or evaluated as it is; the message says what to do. */
export class ModelsDirError extends Error {
  override name = 'ModelsDirError';
}

export function kindOf(metadata: ModelMetadata, where: string, kinds: readonly ModelKind[] = MODEL_KINDS): ModelKind {
  const kind = kinds.find((k) => k.kind === metadata.kind);
  if (!kind) throw new ModelDirError(`${where}: kind '${metadata.kind}' is not one of ${kinds.map((k) => k.kind).join(', ')}`);
  if (kind.modality !== metadata.modality) throw new ModelDirError(`${where}: a '${metadata.kind}' model must have modality '${kind.modality}', got '${metadata.modality}'`);
  return kind;
}

/** What a models directory holds, from metadata alone (cheap: no weights are read). */
export interface ModelsDirPlan {
  dir: string;
  /** Single-modality models by key (directory name). */
  members: Record<string, ModelMetadata>;
  /** The fusion model, when there is one whose members are all present and unchanged. */
  fusion?: ModelMetadata;
  /**
   * Models of the directory that cannot be served as they are, by key, with the reason: a fusion
   * fitted on other members than those present (one was retrained or removed since).
   */
  unavailable: Record<string, string>;
}

/** A poster model's input size, from the contract's preprocessing.inputWidth / inputHeight. */
export function posterSizeOf(metadata: ModelMetadata, where: string): { width: number; height: number } {
  const { inputWidth: width, inputHeight: height } = metadata.preprocessing;
  if (!Number.isInteger(width) || !Number.isInteger(height) || (width as number) < 1 || (height as number) < 1) {
    throw new ModelsDirError(`${where}: preprocessing.inputWidth/inputHeight must be positive integers, got ${JSON.stringify(width)} × ${JSON.stringify(height)}`);
  }
  return { width: width as number, height: height as number };
}

/** Why a fusion cannot combine the members present (undefined: it can). */
function staleFusionReason(root: string, fusion: ModelMetadata, members: Readonly<Record<string, ModelMetadata>>): string | undefined {
  for (const [key, record] of Object.entries(fusion.members ?? {})) {
    const member = members[key];
    if (!member) return `${join(root, fusion.name)}: fusion needs member ${key}/, which is missing from ${root}`;
    const digest = artifactDigest(member);
    if (digest !== record.digest) {
      return `${join(root, fusion.name)}: fusion was fitted on ${key} ${record.digest} (${record.createdAt}) but ${join(root, key)} is ${digest} (${member.createdAt}): ` +
        'refit the fusion on the current members (npx nx train trainer --model fusion)';
    }
  }
  return undefined;
}

/**
 * Checks a models directory without loading weights, so a server can refuse to start with one clear
 * message before it binds a port: every sub-directory (but hidden ones such as .checkpoints) is a
 * model named after it, with intact metadata, of a known kind, over the dataset's genres in order; a
 * poster model states its input size; at most one fusion model, naming its members. A fusion whose
 * members are not the very ones it was fitted on (a member retrained alone) is listed in
 * `unavailable` with the reason, and its members stay servable. A sub-directory that is not a model
 * is an error, not a skip: a fusion whose metadata.json was deleted must not silently stop serving.
 */
export function inspectModelsDir(dir: string, kinds: readonly ModelKind[] = MODEL_KINDS): ModelsDirPlan {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new ModelsDirError(`models directory ${root} not found: train models first (npx nx train trainer) or pass the directory that holds them`);
  }
  const members: Record<string, ModelMetadata> = {};
  const fusions: ModelMetadata[] = [];
  for (const name of readdirSync(root).sort()) {
    const modelDir = join(root, name);
    if (name.startsWith('.') || !statSync(modelDir).isDirectory()) continue;
    const where = join(modelDir, METADATA_JSON);
    if (!existsSync(where)) {
      throw new ModelsDirError(`${modelDir}: not a model directory (no ${METADATA_JSON}): restore it, or move it out of the models directory ${root}`);
    }
    let metadata: ModelMetadata;
    try {
      metadata = readModelMetadata(modelDir);
      kindOf(metadata, where, kinds);
    } catch (error) {
      throw new ModelsDirError(`${name} model is invalid: ${(error as Error).message}`);
    }
    if (metadata.name !== name) throw new ModelsDirError(`${where}: the model is named '${metadata.name}' but sits in ${name}/`);
    const mismatch = GENRES.findIndex((g, i) => metadata.genres[i] !== g);
    if (mismatch >= 0 || metadata.genres.length !== GENRES.length) {
      throw new ModelsDirError(`${where}: genres do not match the dataset's ${GENRES.length} genres in order (first difference at position ${mismatch >= 0 ? mismatch + 1 : GENRES.length + 1})`);
    }
    if (metadata.modality === 'image') posterSizeOf(metadata, where);
    if (metadata.modality === 'fusion' && Object.keys(metadata.members ?? {}).length === 0) throw new ModelsDirError(`${where}: a fusion model must name its members (metadata.members)`);
    if (metadata.modality === 'fusion') fusions.push(metadata);
    else members[name] = metadata;
  }
  if (Object.keys(members).length === 0) throw new ModelsDirError(`${root} holds no model directory (train models first: npx nx train trainer)`);
  if (fusions.length > 1) throw new ModelsDirError(`${root} holds several fusion models (${fusions.map((f) => f.name).join(', ')}); keep one`);
  const fusion = fusions[0];
  const stale = fusion && staleFusionReason(root, fusion, members);
  return { dir: root, members, ...(fusion && !stale ? { fusion } : {}), unavailable: fusion && stale ? { [fusion.name]: stale } : {} };
}

export type MemberClassifier = ImageClassifier | TextClassifier;

/** Loads one model directory with the loader its metadata names. */
export async function loadModel(dir: string, kinds: readonly ModelKind[] = MODEL_KINDS): Promise<AnyClassifier> {
  const metadata = readModelMetadata(dir);
  return kindOf(metadata, join(dir, METADATA_JSON), kinds).load(dir);
}

/** Two inputs of the model's modality that any working model tells apart: a blank one and another. */
function warmUpInputs(model: MemberClassifier): (Uint8Array | string)[] {
  if (model.metadata.modality !== 'image') return ['a film', 'Two detectives hunt a killer through a snowed-in mountain town.'];
  const { inputWidth, inputHeight } = model as ImageClassifier;
  const blank = new Uint8Array(inputWidth * inputHeight * 3).fill(128);
  const ramp = Uint8Array.from(blank, (_, i) => Math.floor(((Math.floor(i / 3) % inputWidth) * 255) / inputWidth));
  return [blank, ramp];
}

/**
 * One forward pass on two different inputs: pays tfjs's first-call set-up before any client waits,
 * and refuses a model whose weights give NaN, infinite or out-of-range outputs, or the same answer
 * whatever the input (a corrupted or badly trained artifact: e.g. an encoder whose NaNs come out as
 * zero vectors).
 */
export async function warmUpMember(model: MemberClassifier): Promise<ModalityOutput> {
  const output = await (model.predictWithFeatures as (inputs: (Uint8Array | string)[]) => Promise<ModalityOutput>)(warmUpInputs(model));
  const { name, genres } = model.metadata;
  try {
    assertFinite(output.probabilities, genres.length, `${name} warm-up`, { probabilities: true });
    assertFinite(output.features, Math.max(1, output.featureDim), `${name} warm-up features`);
  } catch (error) {
    throw new ModelsDirError(`${name} model gives invalid outputs on a blank input (${(error as Error).message}): its weights are broken; retrain it`);
  }
  const k = genres.length;
  if (output.probabilities.subarray(0, k).every((p, g) => p === output.probabilities[k + g])) {
    throw new ModelsDirError(`${name} model gives the same probabilities (${Array.from(output.probabilities.subarray(0, 3), (p) => p.toFixed(4)).join(', ')}, …) for two different inputs: its weights are broken; retrain it`);
  }
  return output;
}

async function warmUpFusion(fusion: FusionClassifier, memberOutputs: Readonly<Record<string, ModalityOutput>>): Promise<void> {
  const probabilities = await fusion.predict(memberOutputs);
  try {
    assertFinite(probabilities, fusion.metadata.genres.length, `${fusion.metadata.name} warm-up`, { probabilities: true });
  } catch (error) {
    throw new ModelsDirError(`${fusion.metadata.name} model gives invalid outputs on a blank input (${(error as Error).message}): retrain it`);
  }
}

/** A model as its host runs it: the contract, and how many calls it can run at once (one per worker). */
export type HostedModel = AnyClassifier & { readonly parallelism?: number };
type HostedMember = MemberClassifier & { readonly parallelism?: number };

/**
 * Where the models of a directory run. In this thread by default (`IN_PROCESS`); serving's worker
 * threads give each model a proxy with the same contract. `load` verifies every file of `dir` before
 * the model runs (model-artifact's openModelDir, wherever it is called).
 */
export interface ModelHost {
  load(key: string, dir: string, metadata: ModelMetadata): Promise<HostedModel>;
  /** Whether the models may load at the same time (in separate threads); in this thread they load one after another. */
  readonly concurrent?: boolean;
}

export const IN_PROCESS: ModelHost = { load: (_key, dir) => loadModel(dir) };

export interface OpenedModels {
  dir: string;
  /** Single-modality models by key, in the directory's (sorted) order. */
  members: Record<string, HostedMember>;
  /** The fusion, when the directory holds one fitted on the members present. */
  fusion?: FusionClassifier;
  /** Models not opened, by key, with the reason (see ModelsDirPlan.unavailable). */
  unavailable: Record<string, string>;
  dispose(): void;
}

export interface OpenModelsOptions {
  host?: ModelHost;
  /** Refuse a directory with an unavailable model (a stale fusion) instead of opening the rest. */
  requireAll?: boolean;
  /** Stops loading at once, even within a model's load (it throws the signal's reason). */
  signal?: AbortSignal;
  kinds?: readonly ModelKind[];
}

/**
 * `loading`, or the signal's reason as soon as it aborts: a model's load (verifying its files,
 * building its sessions) can take seconds on a busy machine, and a stop must not wait for it. A model
 * that arrives after the abort is disposed.
 */
async function untilAborted<T extends { dispose(): void }>(loading: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return loading;
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  let finished = false;
  try {
    const model = await Promise.race([loading, aborted]);
    finished = true;
    return model;
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (!finished) loading.then((model) => model.dispose(), () => {});
  }
}

/** Every value once all have settled; else the first failure, thrown only then. */
async function allSettledOrThrow<T>(work: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(work);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/**
 * The one way to open a models directory (serving in both inference modes, the trainer's evaluate
 * and predict, the tests): inspects it, loads every member then the fusion where `host` runs them,
 * and warms each up (once per parallel instance), refusing broken weights. On any failure what was
 * loaded is disposed and the error names the model.
 */
export async function openModelsDir(dir: string, options: OpenModelsOptions = {}): Promise<OpenedModels> {
  const plan = inspectModelsDir(dir, options.kinds);
  const stale = Object.entries(plan.unavailable)[0];
  if (stale && options.requireAll) throw new ModelsDirError(`${stale[0]} model cannot be served: ${stale[1]}`);
  const host = options.host ?? IN_PROCESS;
  const loaded: HostedModel[] = [];
  const dispose = () => loaded.forEach((m) => m.dispose());
  const load = async (key: string, metadata: ModelMetadata): Promise<HostedModel> => {
    await yieldToEventLoop();
    options.signal?.throwIfAborted();
    try {
      const model = await untilAborted(host.load(key, join(plan.dir, key), metadata), options.signal);
      loaded.push(model);
      return model;
    } catch (error) {
      if (error instanceof ModelsDirError) throw error;
      throw new ModelsDirError(`${key} model in ${join(plan.dir, key)} could not be loaded: ${(error as Error).message}`);
    }
  };
  try {
    const entries = [...Object.entries(plan.members), ...(plan.fusion ? [[plan.fusion.name, plan.fusion] as const] : [])];
    const models: HostedModel[] = [];
    if (host.concurrent) {
      models.push(...(await allSettledOrThrow(entries.map(([key, metadata]) => load(key, metadata)))));
    } else {
      for (const [key, metadata] of entries) models.push(await load(key, metadata));
    }
    const members = Object.fromEntries(Object.keys(plan.members).map((key, i) => [key, models[i] as HostedMember]));
    const fusion = plan.fusion ? (models.at(-1) as FusionClassifier) : undefined;
    // Concurrent calls, so that each instance (each poster worker) gets one. All settle before a
    // failure is thrown: disposing a model while its warm-up still runs (a worker terminated inside
    // onnxruntime) aborted the process instead of letting it exit with the error.
    const warmUps = Object.entries(members).flatMap(([key, model]) => Array.from({ length: model.parallelism ?? 1 }, async () => [key, await warmUpMember(model)] as const));
    const outputs = Object.fromEntries(await allSettledOrThrow(warmUps));
    options.signal?.throwIfAborted();
    if (fusion) await warmUpFusion(fusion, Object.fromEntries(fusion.members.map((m) => [m, outputs[m]!])));
    return { dir: plan.dir, members, ...(fusion ? { fusion } : {}), unavailable: plan.unavailable, dispose };
  } catch (error) {
    dispose();
    throw error;
  }
}
