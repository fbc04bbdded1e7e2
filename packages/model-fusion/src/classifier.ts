import * as tf from '@tensorflow/tfjs';
import {
  METADATA_JSON, ModelDirError, openModelDir, saveModelDir,
  type FilmsRecord, type FusionClassifier, type MemberRecord, type ModalityOutput, type ModelKind, type ModelMetadata, type ModelMetadataInput,
} from '@filmgenre/model-artifact';
import { join } from 'node:path';
import { applyLateFusion, LateFusionParamsSchema, type LateFusionParams } from './late.js';
import { applyStackedFusion, StackedFusionParamsSchema, type StackedFusionParams } from './stack.js';

export const LATE_FUSION_FILE = 'late-fusion.json';
export const STACKED_FUSION_FILE = 'stacked-fusion.json';
export const FUSION_PREDICT_BATCH = 256;
/** metadata.kind of the directories this package writes and loads. */
export const FUSION_CLASSIFIER_KIND = 'fusion';
/**
 * late: weighted average of one poster and one overview model's probabilities; joint: a head over
 * the members' concatenated features; stacked: per-genre logistic regression over the members' logits.
 */
export const FUSION_KINDS = ['late', 'joint', 'stacked'] as const;
export type FusionKind = (typeof FUSION_KINDS)[number];

export interface SaveFusionArgs {
  kind: FusionKind;
  late?: LateFusionParams;
  stacked?: StackedFusionParams;
  /** The joint head (kind 'joint'). */
  model?: tf.LayersModel;
  /** The members whose features the joint head takes, concatenated in this order. */
  featureMembers?: readonly string[];
  metadata: Omit<ModelMetadataInput, 'kind' | 'modality'>;
  films: FilmsRecord;
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

/** What a joint head takes: the members' features, concatenated in this order, `dim` values in all. */
interface JointInput {
  members: string[];
  dim: number;
}

function jointInputOf(model: tf.LayersModel, members: Record<string, MemberRecord> | undefined, featureMembers: readonly string[] | undefined, where: string): JointInput {
  const dim = model.inputs[0]?.shape.at(-1);
  if (model.inputs.length !== 1 || typeof dim !== 'number') throw new ModelDirError(`${where}: a joint head takes one feature input, got ${JSON.stringify(model.inputs.map((i) => i.shape))}`);
  if (!featureMembers?.length || featureMembers.some((m) => !members?.[m])) {
    throw new ModelDirError(`${where}: a joint head needs preprocessing.featureMembers naming its members, got ${JSON.stringify(featureMembers)}`);
  }
  return { members: [...featureMembers], dim };
}

/**
 * Writes a fusion model directory: the parameters of its kind, or its joint head. The decision thresholds are metadata's, as for every model; metadata.members pins the member
 * models it was fitted on (by the digest of their files).
 */
export async function saveFusionClassifier(dir: string, args: SaveFusionArgs): Promise<ModelMetadata> {
  const { kind } = args;
  const metadata: ModelMetadataInput = { ...args.metadata, kind: FUSION_CLASSIFIER_KIND, modality: 'fusion' };
  const k = metadata.genres.length;
  const files: Record<string, string> = {};
  const derived: Record<string, unknown> = { kind, numGenres: k };
  if (kind === 'joint' && !args.model) throw new ModelDirError(`${dir}: kind 'joint' needs the LayersModel (its joint head)`);
  if (kind !== 'joint' && args.model) throw new ModelDirError(`${dir}: kind '${kind}' takes no LayersModel`);
  if (args.model) {
    const outputs = args.model.outputs[0]?.shape.at(-1);
    if (outputs !== k) throw new ModelDirError(`${dir}: the model outputs ${outputs} genres, metadata lists ${k}`);
    const input = jointInputOf(args.model, metadata.members, args.featureMembers, dir);
    Object.assign(derived, { featureMembers: input.members, featureDim: input.dim });
  }
  if (kind === 'late') {
    if (!args.late) throw new ModelDirError(`${dir}: kind 'late' needs the fitted LateFusionParams`);
    memberRoles(metadata.members, dir);
    const late = LateFusionParamsSchema.parse(args.late);
    if (late.numGenres !== k) throw new ModelDirError(`${dir}: late fusion covers ${late.numGenres} genres, metadata lists ${k}`);
    derived['lateFusionFile'] = LATE_FUSION_FILE;
    files[LATE_FUSION_FILE] = `${JSON.stringify(late, null, 2)}\n`;
  } else if (kind === 'stacked') {
    if (!args.stacked) throw new ModelDirError(`${dir}: kind 'stacked' needs the fitted StackedFusionParams`);
    const stacked = StackedFusionParamsSchema.parse(args.stacked);
    const unknown = stacked.members.filter((m) => !metadata.members?.[m]);
    if (unknown.length) throw new ModelDirError(`${dir}: stacked fusion weighs ${unknown.join(', ')}, which metadata.members does not list`);
    if (stacked.numGenres !== k) throw new ModelDirError(`${dir}: stacked fusion covers ${stacked.numGenres} genres, metadata lists ${k}`);
    derived['stackedFusionFile'] = STACKED_FUSION_FILE;
    files[STACKED_FUSION_FILE] = `${JSON.stringify(stacked, null, 2)}\n`;
  } else if (!metadata.members || Object.keys(metadata.members).length === 0) {
    throw new ModelDirError(`${dir}: a joint fusion needs its members in metadata.members`);
  }
  for (const [key, value] of Object.entries(derived)) {
    const given = metadata.preprocessing[key];
    if (given !== undefined && JSON.stringify(given) !== JSON.stringify(value)) {
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

function readParams<T>(artifact: ReturnType<typeof openModelDir>, file: unknown, parse: (raw: unknown) => T, what: string): T {
  if (typeof file !== 'string') throw new ModelDirError(`${join(artifact.dir, METADATA_JSON)}: preprocessing names no ${what} file`);
  return artifact.readJson(file, parse);
}

/** Loads a directory written by saveFusionClassifier, after verifying its files. */
export async function loadFusionClassifier(dir: string): Promise<FusionClassifier> {
  const artifact = openModelDir(dir, { kind: FUSION_CLASSIFIER_KIND });
  const { metadata } = artifact;
  const where = join(dir, METADATA_JSON);
  const kind = metadata.preprocessing.kind as FusionKind;
  if (!FUSION_KINDS.includes(kind)) throw new ModelDirError(`${where}: preprocessing.kind must be one of ${FUSION_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  const late = kind === 'late' ? readParams(artifact, metadata.preprocessing.lateFusionFile, (raw) => LateFusionParamsSchema.parse(raw), 'late-fusion') : undefined;
  const stacked = kind === 'stacked' ? readParams(artifact, metadata.preprocessing.stackedFusionFile, (raw) => StackedFusionParamsSchema.parse(raw), 'stacked-fusion') : undefined;
  if ((late?.numGenres ?? stacked?.numGenres ?? metadata.genres.length) !== metadata.genres.length) throw new ModelDirError(`${where}: its parameters cover another number of genres than metadata lists`);
  const model = await artifact.loadLayersModel();
  try {
    if (kind === 'joint' && !model) throw new ModelDirError(`${join(dir, 'model.json')}: not found (a joint fusion needs its head)`);
    const joint = model ? jointInputOf(model, metadata.members, metadata.preprocessing.featureMembers as string[] | undefined, where) : undefined;
    return new Fusion(metadata, kind, { late, stacked, model, joint });
  } catch (error) {
    model?.dispose();
    throw error;
  }
}

class Fusion implements FusionClassifier {
  readonly members: readonly string[];
  private disposed = false;

  constructor(
    readonly metadata: ModelMetadata,
    private readonly kind: FusionKind,
    private readonly parts: { late?: LateFusionParams; stacked?: StackedFusionParams; model?: tf.LayersModel; joint?: JointInput },
  ) {
    this.members = Object.keys(metadata.members ?? {});
  }

  async predict(outputs: Readonly<Record<string, ModalityOutput>>): Promise<Float32Array> {
    if (this.disposed) throw new Error('this FusionClassifier has been disposed');
    const k = this.metadata.genres.length;
    const missing = this.members.filter((m) => !outputs[m]);
    if (missing.length) throw new RangeError(`fusion needs the outputs of ${missing.join(', ')}, got ${Object.keys(outputs).join(', ') || 'none'}`);
    const n = outputs[this.members[0]!]!.probabilities.length / k;
    for (const m of this.members) {
      if (outputs[m]!.probabilities.length !== n * k) throw new RangeError(`${m} probabilities cover ${outputs[m]!.probabilities.length / k} films, ${this.members[0]} ${n}`);
    }
    if (this.kind === 'late') {
      const roles = memberRoles(this.metadata.members, 'fusion');
      return applyLateFusion(this.parts.late!, outputs[roles.image]!.probabilities, outputs[roles.text]!.probabilities);
    }
    if (this.kind === 'joint') return this.predictJoint(outputs, n);
    return applyStackedFusion(this.parts.stacked!, Object.fromEntries(this.members.map((m) => [m, outputs[m]!.probabilities])));
  }

  private async predictJoint(outputs: Readonly<Record<string, ModalityOutput>>, n: number): Promise<Float32Array> {
    const model = this.parts.model!;
    const joint = this.parts.joint!;
    const k = this.metadata.genres.length;
    const parts = joint.members.map((m) => ({ key: m, data: outputs[m]!.features, dim: outputs[m]!.featureDim }));
    const dim = parts.reduce((s, p) => s + p.dim, 0);
    if (dim !== joint.dim) throw new RangeError(`joint head takes ${joint.dim} features, members ${joint.members.join(' + ')} give ${dim}`);
    const data = new Float32Array(n * dim);
    for (const p of parts) {
      if (p.data.length !== n * p.dim) throw new RangeError(`${p.key} features: expected ${n} × ${p.dim} values, got ${p.data.length} (a different member model than the fusion was trained on?)`);
    }
    for (let i = 0; i < n; i++) {
      let at = i * dim;
      for (const p of parts) {
        data.set(p.data.subarray(i * p.dim, (i + 1) * p.dim), at);
        at += p.dim;
      }
    }
    const out = new Float32Array(n * k);
    for (let start = 0; start < n; start += FUSION_PREDICT_BATCH) {
      const m = Math.min(FUSION_PREDICT_BATCH, n - start);
      const y = tf.tidy(() => model.predict(tf.tensor2d(data.subarray(start * dim, (start + m) * dim), [m, dim])) as tf.Tensor);
      try {
        out.set((await y.data()) as Float32Array, start * k);
      } finally {
        y.dispose();
      }
    }
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.parts.model?.dispose();
  }
}

/** Registers this package's directories with the models-directory loader. */
export const fusionClassifierKind: ModelKind<'fusion'> = { kind: FUSION_CLASSIFIER_KIND, modality: 'fusion', load: loadFusionClassifier };
