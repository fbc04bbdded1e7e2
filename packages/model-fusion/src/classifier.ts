import * as tf from '@tensorflow/tfjs';
import { loadModelDir, ModelDirError, saveModelDir, type ModelMetadata } from '@filmgenre/tf-runtime';
import { join } from 'node:path';
import { IMAGE_FEATURES_INPUT, TEXT_FEATURES_INPUT } from './joint.js';
import { applyLateFusion, LateFusionParamsSchema, type LateFusionParams } from './late.js';

export const LATE_FUSION_FILE = 'late-fusion.json';
export const FUSION_PREDICT_BATCH = 256;

export interface ModalityOutputs {
  probabilities: Float32Array;
  features: Float32Array;
}

export interface FusionClassifier {
  readonly metadata: ModelMetadata;
  /** Probabilities from both component models' outputs for the same n films. */
  predict(inputs: { image: ModalityOutputs; text: ModalityOutputs }): Promise<Float32Array>;
  dispose(): void;
}

function featureDims(model: tf.LayersModel): { imageFeatureDim: number; textFeatureDim: number } {
  const [image, text] = model.inputs;
  const dv = image?.shape.at(-1);
  const dt = text?.shape.at(-1);
  if (model.inputs.length !== 2 || typeof dv !== 'number' || typeof dt !== 'number') {
    throw new Error(`a joint fusion model takes two feature inputs [image, text], got ${JSON.stringify(model.inputs.map((i) => i.shape))}`);
  }
  return { imageFeatureDim: dv, textFeatureDim: dt };
}

/**
 * Writes a fusion model directory. 'late': the per-genre weights and thresholds as late-fusion.json;
 * 'joint': the LayersModel. metadata.preprocessing keeps what the caller records about the component
 * models (names, variants) and gets the kind and the feature sizes the model expects.
 */
export async function saveFusionClassifier(
  dir: string,
  args: { kind: 'late' | 'joint'; late?: LateFusionParams; model?: tf.LayersModel; metadata: ModelMetadata },
): Promise<void> {
  const { kind, metadata } = args;
  if (metadata.modality !== 'fusion') throw new ModelDirError(`${dir}: a fusion classifier needs metadata.modality 'fusion', got '${metadata.modality}'`);
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
  await saveModelDir(dir, { model: args.model, metadata: { ...metadata, preprocessing: { ...metadata.preprocessing, ...derived } }, files });
}

export async function loadFusionClassifier(dir: string): Promise<FusionClassifier> {
  const loaded = await loadModelDir(dir);
  const { metadata, model } = loaded;
  const metadataPath = join(dir, 'metadata.json');
  try {
    if (metadata.modality !== 'fusion') throw new ModelDirError(`${metadataPath}: modality is '${metadata.modality}', not a fusion model`);
    const kind = metadata.preprocessing.kind;
    if (kind === 'late') {
      const file = metadata.preprocessing.lateFusionFile;
      if (typeof file !== 'string') throw new ModelDirError(`${metadataPath}: preprocessing.lateFusionFile is missing`);
      let late: LateFusionParams;
      try {
        late = LateFusionParamsSchema.parse(JSON.parse(loaded.readText(file)));
      } catch (error) {
        if (error instanceof ModelDirError) throw error;
        throw new ModelDirError(`${join(dir, file)}: not valid late-fusion parameters (${(error as Error).message.split('\n')[0]})`);
      }
      if (late.numGenres !== metadata.genres.length) throw new ModelDirError(`${join(dir, file)}: ${late.numGenres} genres, metadata lists ${metadata.genres.length}`);
      model?.dispose();
      return new LateFusion(metadata, late);
    }
    if (kind === 'joint') {
      if (!model) throw new ModelDirError(`${join(dir, 'model.json')}: not found (a joint fusion directory needs its model)`);
      return new JointFusion(metadata, model);
    }
    throw new ModelDirError(`${metadataPath}: preprocessing.kind must be 'late' or 'joint', got ${JSON.stringify(kind)}`);
  } catch (error) {
    model?.dispose();
    throw error;
  }
}

function filmCount(inputs: { image: ModalityOutputs; text: ModalityOutputs }, k: number, dims?: { imageFeatureDim: number; textFeatureDim: number }): number {
  const n = inputs.image.probabilities.length / k;
  if (!Number.isInteger(n)) throw new RangeError(`image probabilities: ${inputs.image.probabilities.length} values is not a multiple of ${k} genres`);
  if (inputs.text.probabilities.length !== n * k) throw new RangeError(`image outputs cover ${n} films, text probabilities ${inputs.text.probabilities.length / k}`);
  if (dims) {
    if (inputs.image.features.length !== n * dims.imageFeatureDim) {
      throw new RangeError(`image features: expected ${n} × ${dims.imageFeatureDim} values, got ${inputs.image.features.length} (a different poster model than the fusion was trained on?)`);
    }
    if (inputs.text.features.length !== n * dims.textFeatureDim) {
      throw new RangeError(`text features: expected ${n} × ${dims.textFeatureDim} values, got ${inputs.text.features.length} (a different overview model than the fusion was trained on?)`);
    }
  }
  return n;
}

class LateFusion implements FusionClassifier {
  constructor(readonly metadata: ModelMetadata, private readonly params: LateFusionParams) {}

  async predict(inputs: { image: ModalityOutputs; text: ModalityOutputs }): Promise<Float32Array> {
    filmCount(inputs, this.params.numGenres);
    return applyLateFusion(this.params, inputs.image.probabilities, inputs.text.probabilities);
  }

  dispose(): void {}
}

class JointFusion implements FusionClassifier {
  private readonly dims: { imageFeatureDim: number; textFeatureDim: number };
  private disposed = false;

  constructor(readonly metadata: ModelMetadata, private readonly model: tf.LayersModel) {
    this.dims = featureDims(model);
    const names = model.inputs.map((i) => i.name);
    // Inputs are fed by position; the names are checked so a swapped model cannot go unnoticed.
    if (!names[0]?.startsWith(IMAGE_FEATURES_INPUT) || !names[1]?.startsWith(TEXT_FEATURES_INPUT)) {
      throw new ModelDirError(`joint fusion model inputs are ${JSON.stringify(names)}, expected [${IMAGE_FEATURES_INPUT}, ${TEXT_FEATURES_INPUT}]`);
    }
  }

  async predict(inputs: { image: ModalityOutputs; text: ModalityOutputs }): Promise<Float32Array> {
    if (this.disposed) throw new Error('this FusionClassifier has been disposed');
    const k = this.metadata.genres.length;
    const n = filmCount(inputs, k, this.dims);
    const { imageFeatureDim: dv, textFeatureDim: dt } = this.dims;
    const out = new Float32Array(n * k);
    for (let start = 0; start < n; start += FUSION_PREDICT_BATCH) {
      const m = Math.min(FUSION_PREDICT_BATCH, n - start);
      const y = tf.tidy(() => this.model.predict([
        tf.tensor2d(inputs.image.features.subarray(start * dv, (start + m) * dv), [m, dv]),
        tf.tensor2d(inputs.text.features.subarray(start * dt, (start + m) * dt), [m, dt]),
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
