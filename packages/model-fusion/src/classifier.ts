import * as tf from '@tensorflow/tfjs';
import {
  METADATA_JSON, ModelDirError, openModelDir, saveModelDir,
  type FilmsRecord, type FusionClassifier, type MemberRecord, type ModalityOutput, type ModelKind, type ModelMetadata, type ModelMetadataInput,
} from '@filmgenre/model-artifact';
import { join } from 'node:path';
import { IMAGE_FEATURES_INPUT, TEXT_FEATURES_INPUT } from './joint.js';
import { applyLateFusion, LateFusionParamsSchema, type LateFusionParams } from './late.js';

export const LATE_FUSION_FILE = 'late-fusion.json';
export const FUSION_PREDICT_BATCH = 256;
/** metadata.kind of the directories this package writes and loads. */
export const FUSION_CLASSIFIER_KIND = 'fusion';
export const FUSION_KINDS = ['late', 'joint'] as const;
export type FusionKind = (typeof FUSION_KINDS)[number];

function featureDims(model: tf.LayersModel): { imageFeatureDim: number; textFeatureDim: number } {
  const [image, text] = model.inputs;
  const dv = image?.shape.at(-1);
  const dt = text?.shape.at(-1);
  if (model.inputs.length !== 2 || typeof dv !== 'number' || typeof dt !== 'number') {
    throw new Error(`a joint fusion model takes two feature inputs [image, text], got ${JSON.stringify(model.inputs.map((i) => i.shape))}`);
  }
  return { imageFeatureDim: dv, textFeatureDim: dt };
}

/** The image and the text member of a two-member fusion, by key. */
function memberRoles(members: Record<string, MemberRecord> | undefined, where: string): { image: string; text: string } {
  const entries = Object.entries(members ?? {});
  const image = entries.filter(([, m]) => m.modality === 'image').map(([key]) => key);
  const text = entries.filter(([, m]) => m.modality === 'text').map(([key]) => key);
  if (image.length !== 1 || text.length !== 1) {
    throw new ModelDirError(`${where}: members must be one image and one text model, got ${JSON.stringify(Object.fromEntries(entries.map(([k, m]) => [k, m.modality])))}`);
  }
  return { image: image[0]!, text: text[0]! };
}

/**
 * Writes a fusion model directory. 'late': the per-genre image weights as late-fusion.json; 'joint':
 * the LayersModel over both members' features. The decision thresholds are metadata's, as for every
 * model; metadata.members pins the member models it was fitted on.
 */
export async function saveFusionClassifier(
  dir: string,
  args: { kind: FusionKind; late?: LateFusionParams; model?: tf.LayersModel; metadata: Omit<ModelMetadataInput, 'kind' | 'modality'>; films: FilmsRecord },
): Promise<ModelMetadata> {
  const { kind } = args;
  const metadata: ModelMetadataInput = { ...args.metadata, kind: FUSION_CLASSIFIER_KIND, modality: 'fusion' };
  memberRoles(metadata.members, dir);
  const k = metadata.genres.length;
  let derived: Record<string, unknown>;
  const files: Record<string, string> = {};
  if (kind === 'late') {
    if (!args.late) throw new ModelDirError(`${dir}: kind 'late' needs the fitted LateFusionParams`);
    if (args.model) throw new ModelDirError(`${dir}: kind 'late' takes no LayersModel`);
    const late = LateFusionParamsSchema.parse(args.late);
    if (late.numGenres !== k) throw new ModelDirError(`${dir}: late fusion covers ${late.numGenres} genres, metadata lists ${k}`);
    derived = { kind, lateFusionFile: LATE_FUSION_FILE, numGenres: k };
    files[LATE_FUSION_FILE] = `${JSON.stringify(late, null, 2)}\n`;
  } else {
    if (!args.model) throw new ModelDirError(`${dir}: kind 'joint' needs the LayersModel`);
    const outputs = args.model.outputs[0]?.shape.at(-1);
    if (outputs !== k) throw new ModelDirError(`${dir}: the model outputs ${outputs} genres, metadata lists ${k}`);
    derived = { kind, ...featureDims(args.model), numGenres: k };
  }
  for (const [key, value] of Object.entries(derived)) {
    const given = metadata.preprocessing[key];
    if (given !== undefined && given !== value) {
      throw new ModelDirError(`${dir}: metadata.preprocessing.${key} is ${JSON.stringify(given)} but the fusion model has ${JSON.stringify(value)}`);
    }
  }
  return saveModelDir(dir, {
    ...(args.model ? { model: args.model } : {}),
    metadata: { ...metadata, preprocessing: { ...metadata.preprocessing, ...derived } },
    films: args.films,
    files,
  });
}

/** Loads a directory written by saveFusionClassifier, after verifying its files. */
export async function loadFusionClassifier(dir: string): Promise<FusionClassifier> {
  const artifact = openModelDir(dir);
  const { metadata } = artifact;
  const metadataPath = join(dir, METADATA_JSON);
  if (metadata.kind !== FUSION_CLASSIFIER_KIND) throw new ModelDirError(`${metadataPath}: kind is '${metadata.kind}', expected '${FUSION_CLASSIFIER_KIND}'`);
  const roles = memberRoles(metadata.members, metadataPath);
  const kind = metadata.preprocessing.kind;
  if (kind === 'late') {
    const file = metadata.preprocessing.lateFusionFile;
    if (typeof file !== 'string') throw new ModelDirError(`${metadataPath}: preprocessing.lateFusionFile is missing`);
    let late: LateFusionParams;
    try {
      late = LateFusionParamsSchema.parse(JSON.parse(artifact.readText(file)));
    } catch (error) {
      if (error instanceof ModelDirError) throw error;
      throw new ModelDirError(`${join(dir, file)}: not valid late-fusion parameters (${(error as Error).message.split('\n')[0]})`);
    }
    if (late.numGenres !== metadata.genres.length) throw new ModelDirError(`${join(dir, file)}: ${late.numGenres} genres, metadata lists ${metadata.genres.length}`);
    return new LateFusion(metadata, roles, late);
  }
  if (kind === 'joint') {
    const model = await artifact.loadLayersModel();
    if (!model) throw new ModelDirError(`${join(dir, 'model.json')}: not found (a joint fusion directory needs its model)`);
    try {
      return new JointFusion(metadata, roles, model);
    } catch (error) {
      model.dispose();
      throw error;
    }
  }
  throw new ModelDirError(`${metadataPath}: preprocessing.kind must be 'late' or 'joint', got ${JSON.stringify(kind)}`);
}

/** The members' outputs for the same n films, checked; returns n. */
function filmCount(
  outputs: Readonly<Record<string, ModalityOutput>>, roles: { image: string; text: string }, k: number, dims?: { imageFeatureDim: number; textFeatureDim: number },
): { n: number; image: ModalityOutput; text: ModalityOutput } {
  const image = outputs[roles.image];
  const text = outputs[roles.text];
  if (!image || !text) throw new RangeError(`fusion needs the outputs of ${roles.image} and ${roles.text}, got ${Object.keys(outputs).join(', ') || 'none'}`);
  const n = image.probabilities.length / k;
  if (!Number.isInteger(n)) throw new RangeError(`${roles.image} probabilities: ${image.probabilities.length} values is not a multiple of ${k} genres`);
  if (text.probabilities.length !== n * k) throw new RangeError(`${roles.image} outputs cover ${n} films, ${roles.text} probabilities ${text.probabilities.length / k}`);
  if (dims) {
    if (image.features.length !== n * dims.imageFeatureDim) {
      throw new RangeError(`${roles.image} features: expected ${n} × ${dims.imageFeatureDim} values, got ${image.features.length} (a different poster model than the fusion was trained on?)`);
    }
    if (text.features.length !== n * dims.textFeatureDim) {
      throw new RangeError(`${roles.text} features: expected ${n} × ${dims.textFeatureDim} values, got ${text.features.length} (a different overview model than the fusion was trained on?)`);
    }
  }
  return { n, image, text };
}

class LateFusion implements FusionClassifier {
  readonly members: readonly string[];

  constructor(readonly metadata: ModelMetadata, private readonly roles: { image: string; text: string }, private readonly params: LateFusionParams) {
    this.members = [roles.image, roles.text];
  }

  async predict(outputs: Readonly<Record<string, ModalityOutput>>): Promise<Float32Array> {
    const { image, text } = filmCount(outputs, this.roles, this.params.numGenres);
    return applyLateFusion(this.params, image.probabilities, text.probabilities);
  }

  dispose(): void {}
}

class JointFusion implements FusionClassifier {
  readonly members: readonly string[];
  private readonly dims: { imageFeatureDim: number; textFeatureDim: number };
  private disposed = false;

  constructor(readonly metadata: ModelMetadata, private readonly roles: { image: string; text: string }, private readonly model: tf.LayersModel) {
    this.members = [roles.image, roles.text];
    this.dims = featureDims(model);
    const names = model.inputs.map((i) => i.name);
    // Inputs are fed by position; the names are checked so a swapped model cannot go unnoticed.
    if (!names[0]?.startsWith(IMAGE_FEATURES_INPUT) || !names[1]?.startsWith(TEXT_FEATURES_INPUT)) {
      throw new ModelDirError(`joint fusion model inputs are ${JSON.stringify(names)}, expected [${IMAGE_FEATURES_INPUT}, ${TEXT_FEATURES_INPUT}]`);
    }
  }

  async predict(outputs: Readonly<Record<string, ModalityOutput>>): Promise<Float32Array> {
    if (this.disposed) throw new Error('this FusionClassifier has been disposed');
    const k = this.metadata.genres.length;
    const { n, image, text } = filmCount(outputs, this.roles, k, this.dims);
    const { imageFeatureDim: dv, textFeatureDim: dt } = this.dims;
    const out = new Float32Array(n * k);
    for (let start = 0; start < n; start += FUSION_PREDICT_BATCH) {
      const m = Math.min(FUSION_PREDICT_BATCH, n - start);
      const y = tf.tidy(() => this.model.predict([
        tf.tensor2d(image.features.subarray(start * dv, (start + m) * dv), [m, dv]),
        tf.tensor2d(text.features.subarray(start * dt, (start + m) * dt), [m, dt]),
      ]) as tf.Tensor);
      try {
        out.set(await y.data() as Float32Array, start * k);
      } finally {
        y.dispose();
      }
    }
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }
}

/** Registers this package's directories with the models-directory loader. */
export const fusionClassifierKind: ModelKind<'fusion'> = { kind: FUSION_CLASSIFIER_KIND, modality: 'fusion', load: loadFusionClassifier };
