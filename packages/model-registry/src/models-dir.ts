import { GENRES } from '@filmgenre/core';
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
}

/**
 * Checks a models directory without loading weights, so a server can refuse to start with one clear
 * message before it binds a port: every sub-directory (but hidden ones such as .checkpoints) is a
 * model named after it, with intact metadata, of a known kind, over the dataset's genres in order; at
 * most one fusion model, whose members must be present with the very metadata and files it was fitted
 * on (a retrained member needs a refitted fusion). A sub-directory that is not a model is an error,
 * not a skip: a fusion whose metadata.json was deleted must not silently stop serving.
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
    if (!existsSync(join(modelDir, METADATA_JSON))) {
      throw new ModelsDirError(`${modelDir}: not a model directory (no ${METADATA_JSON}): restore it, or move it out of the models directory ${root}`);
    }
    let metadata: ModelMetadata;
    try {
      metadata = readModelMetadata(modelDir);
      kindOf(metadata, join(modelDir, METADATA_JSON), kinds);
    } catch (error) {
      throw new ModelsDirError(`${name} model is invalid: ${(error as Error).message}`);
    }
    if (metadata.name !== name) throw new ModelsDirError(`${join(modelDir, METADATA_JSON)}: the model is named '${metadata.name}' but sits in ${name}/`);
    const mismatch = GENRES.findIndex((g, i) => metadata.genres[i] !== g);
    if (mismatch >= 0 || metadata.genres.length !== GENRES.length) {
      throw new ModelsDirError(`${join(modelDir, METADATA_JSON)}: genres do not match the dataset's ${GENRES.length} genres in order (first difference at position ${mismatch >= 0 ? mismatch + 1 : GENRES.length + 1})`);
    }
    if (metadata.modality === 'fusion') fusions.push(metadata);
    else members[name] = metadata;
  }
  if (Object.keys(members).length === 0) throw new ModelsDirError(`${root} holds no model directory (train models first: npx nx train trainer)`);
  if (fusions.length > 1) throw new ModelsDirError(`${root} holds several fusion models (${fusions.map((f) => f.name).join(', ')}); keep one`);
  const fusion = fusions[0];
  if (fusion) {
    for (const [key, record] of Object.entries(fusion.members ?? {})) {
      const member = members[key];
      if (!member) throw new ModelsDirError(`${join(root, fusion.name)}: fusion needs member ${key}/, which is missing from ${root}`);
      const digest = artifactDigest(member);
      if (digest !== record.digest) {
        throw new ModelsDirError(
          `${join(root, fusion.name)}: fusion was fitted on ${key} ${record.digest} (${record.createdAt}) but ${join(root, key)} is ${digest} (${member.createdAt}): ` +
            `refit the fusion on the current members (npx nx train trainer --model fusion)`,
        );
      }
    }
  }
  return { dir: root, members, ...(fusion ? { fusion } : {}) };
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
 * and refuses a model whose weights give NaN or infinite outputs, or the same answer whatever the
 * input (a corrupted or badly trained artifact: e.g. an encoder whose NaNs come out as zero vectors).
 */
export async function warmUpMember(model: MemberClassifier): Promise<ModalityOutput> {
  const output = await (model.predictWithFeatures as (inputs: (Uint8Array | string)[]) => Promise<ModalityOutput>)(warmUpInputs(model));
  const { name, genres } = model.metadata;
  try {
    assertFinite(output.probabilities, genres.length, `${name} warm-up`);
    assertFinite(output.features, Math.max(1, output.featureDim), `${name} warm-up features`);
  } catch (error) {
    throw new ModelsDirError(`${name} model gives non-finite outputs on a blank input (${(error as Error).message}): its weights are broken; retrain it`);
  }
  const k = genres.length;
  if (output.probabilities.subarray(0, k).every((p, g) => p === output.probabilities[k + g])) {
    throw new ModelsDirError(`${name} model gives the same probabilities (${Array.from(output.probabilities.subarray(0, 3), (p) => p.toFixed(4)).join(', ')}, …) for two different inputs: its weights are broken; retrain it`);
  }
  return output;
}

export async function warmUpFusion(fusion: FusionClassifier, memberOutputs: Readonly<Record<string, ModalityOutput>>): Promise<void> {
  const probabilities = await fusion.predict(memberOutputs);
  try {
    assertFinite(probabilities, fusion.metadata.genres.length, `${fusion.metadata.name} warm-up`);
  } catch (error) {
    throw new ModelsDirError(`${fusion.metadata.name} model gives non-finite outputs on a blank input (${(error as Error).message}): retrain it`);
  }
}

export interface LoadedModels {
  dir: string;
  members: Record<string, MemberClassifier>;
  fusion?: FusionClassifier;
  dispose(): void;
}

/** Loads (verifying every file) and warms up every model of a models directory, in this thread. */
export async function loadModelsDir(dir: string, kinds: readonly ModelKind[] = MODEL_KINDS): Promise<LoadedModels> {
  const plan = inspectModelsDir(dir, kinds);
  const loaded: AnyClassifier[] = [];
  try {
    const members: Record<string, MemberClassifier> = {};
    const outputs: Record<string, ModalityOutput> = {};
    for (const key of Object.keys(plan.members)) {
      const model = (await loadModel(join(plan.dir, key), kinds)) as MemberClassifier;
      loaded.push(model);
      members[key] = model;
      outputs[key] = await warmUpMember(model);
    }
    let fusion: FusionClassifier | undefined;
    if (plan.fusion) {
      fusion = (await loadModel(join(plan.dir, plan.fusion.name), kinds)) as FusionClassifier;
      loaded.push(fusion);
      await warmUpFusion(fusion, outputs);
    }
    return { dir: plan.dir, members, ...(fusion ? { fusion } : {}), dispose: () => loaded.forEach((m) => m.dispose()) };
  } catch (error) {
    loaded.forEach((m) => m.dispose());
    throw error;
  }
}
