import * as tf from '@tensorflow/tfjs';
import { pixelsToBatchTensor } from '@filmgenre/data-images';
import {
  compileFeatureHeads, METADATA_JSON, MODEL_JSON, ModelDirError, openModelDir, saveModelDir,
  type FeatureHeads, type FilmsRecord, type ImageClassifier, type ModelKind, type ModelMetadata, type ModelMetadataInput,
} from '@filmgenre/model-artifact';
import { join } from 'node:path';
import { FEATURE_EXTRACTOR_DIR, FEATURE_EXTRACTOR_SPEC_JSON, PosterFeatureExtractor, type FeatureExtractorSpecInput } from './feature-extractor.js';
import { POSTER_VARIANTS, posterFeatureDim, type PosterVariant } from './models.js';

/** Posters per forward pass: bounds peak memory (64 × 128 × 256 × 3 floats ≈ 25 MB of input). */
export const PREDICT_BATCH = 64;
/** metadata.kind of the directories this package writes and loads. */
export const POSTER_CLASSIFIER_KIND = 'poster-classifier';

/** A loaded poster model: input posters are inputWidth × inputHeight RGB uint8 HWC (data-images' decodePoster). */
export type PosterClassifier = ImageClassifier;

/** What the poster models record under metadata.preprocessing (the serving app decodes accordingly). */
export interface PosterPreprocessing {
  /** The decoded poster's size: the study's squares (64×64), or 128×256 keeping the posters' 1:2 aspect. */
  inputWidth: number;
  inputHeight: number;
  channels: 3;
  layout: 'HWC';
  /** How a 150×300 poster reaches that size: stretched (sharp `fit: 'fill'`), no crop, no padding. */
  resize: 'fill';
  /** Pixel scaling applied inside predict: uint8 / 255. */
  scale: '1/255';
  /** Present for the 'pretrained' variant: the frozen trunk whose pooled features the head reads. */
  featureExtractor?: { dir: string; source: string; licence: string; featureDim: number; trunk: string; nodes: string[]; pooling: string[] };
  /**
   * 'pretrained' only: the probabilities are the head's mean over the poster and its mirror image
   * (the head trained on both views; out of fold the same mean was scored). The features handed to
   * fusion stay the poster's own.
   */
  testTimeMirror?: boolean;
}

/** Preprocessing of a CNN at `size`×`size`, or of a head over `featureExtractor`'s input (averaged with the mirror image's if `testTimeMirror`). */
export function posterPreprocessing(size: number | PosterFeatureExtractor, options: { testTimeMirror?: boolean } = {}): PosterPreprocessing {
  const extractor = typeof size === 'number' ? undefined : size;
  const [inputWidth, inputHeight] = extractor ? [extractor.inputWidth, extractor.inputHeight] : [size as number, size as number];
  return {
    inputWidth, inputHeight, channels: 3, layout: 'HWC', resize: 'fill', scale: '1/255',
    ...(extractor ? {
      featureExtractor: {
        dir: FEATURE_EXTRACTOR_DIR,
        source: extractor.info.source,
        licence: extractor.info.licence,
        featureDim: extractor.featureDim,
        trunk: extractor.spec.trunk,
        nodes: [...extractor.spec.nodes],
        pooling: [...extractor.spec.pooling],
      },
      ...(options.testTimeMirror ? { testTimeMirror: true } : {}),
    } : {}),
  };
}

function checkMetadata(metadata: Pick<ModelMetadata, 'modality' | 'variant' | 'preprocessing'>, where: string): { variant: PosterVariant; width: number; height: number; testTimeMirror: boolean } {
  if (metadata.modality !== 'image') throw new ModelDirError(`${where}: modality is '${metadata.modality}', expected 'image'`);
  if (!(POSTER_VARIANTS as readonly string[]).includes(metadata.variant)) {
    throw new ModelDirError(`${where}: variant '${metadata.variant}' is not one of ${POSTER_VARIANTS.join(', ')}`);
  }
  const { inputWidth: width, inputHeight: height } = metadata.preprocessing;
  for (const [field, value] of [['inputWidth', width], ['inputHeight', height]] as const) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 8) {
      throw new ModelDirError(`${where}: preprocessing.${field} must be an integer ≥ 8, got ${JSON.stringify(value)}`);
    }
  }
  const mirror = metadata.preprocessing['testTimeMirror'];
  if (mirror !== undefined && typeof mirror !== 'boolean') throw new ModelDirError(`${where}: preprocessing.testTimeMirror must be true or false, got ${JSON.stringify(mirror)}`);
  if (mirror && metadata.variant !== 'pretrained') throw new ModelDirError(`${where}: preprocessing.testTimeMirror applies to a head over frozen features (variant 'pretrained'), not '${metadata.variant}'`);
  return { variant: metadata.variant as PosterVariant, width: width as number, height: height as number, testTimeMirror: mirror === true };
}

/** Checks that the model's input and output shapes agree with the metadata (and extractor). */
function checkShapes(model: tf.LayersModel, variant: PosterVariant, size: { width: number; height: number }, numGenres: number, where: string,
  extractor?: PosterFeatureExtractor): void {
  const inShape = model.inputs[0]!.shape;
  const outShape = model.outputs[0]!.shape;
  const expectedIn = variant === 'pretrained' ? [null, extractor?.featureDim] : [null, size.height, size.width, 3];
  if (JSON.stringify(inShape) !== JSON.stringify(expectedIn)) {
    throw new ModelDirError(`${where}: model input shape ${JSON.stringify(inShape)} does not match ${JSON.stringify(expectedIn)} (variant '${variant}', input ${size.width}×${size.height})`);
  }
  if (outShape.length !== 2 || outShape[1] !== numGenres) {
    throw new ModelDirError(`${where}: model output shape ${JSON.stringify(outShape)} does not give ${numGenres} genres`);
  }
}

/**
 * Writes a self-contained poster model directory atomically: model.json + weights.bin (the CNN or
 * feature head), metadata.json and, for 'pretrained', feature-extractor/{model.json,weights.bin}.
 */
export async function savePosterClassifier(
  dir: string,
  args: { model: tf.LayersModel; metadata: Omit<ModelMetadataInput, 'kind' | 'modality'>; films: FilmsRecord; featureExtractor?: PosterFeatureExtractor },
): Promise<ModelMetadata> {
  const metadata: ModelMetadataInput = { ...args.metadata, kind: POSTER_CLASSIFIER_KIND, modality: 'image' };
  const { variant, width, height } = checkMetadata(metadata, `savePosterClassifier(${dir})`);
  if (variant === 'pretrained') {
    if (!args.featureExtractor) throw new Error(`savePosterClassifier(${dir}): variant 'pretrained' needs its featureExtractor`);
    if (args.featureExtractor.inputWidth !== width || args.featureExtractor.inputHeight !== height) {
      throw new Error(`savePosterClassifier(${dir}): preprocessing input ${width}×${height} ≠ feature extractor input ${args.featureExtractor.inputWidth}×${args.featureExtractor.inputHeight}`);
    }
  } else if (args.featureExtractor) {
    throw new Error(`savePosterClassifier(${dir}): variant '${variant}' has no feature extractor; do not pass one`);
  }
  checkShapes(args.model, variant, { width, height }, metadata.genres.length, `savePosterClassifier(${dir})`, args.featureExtractor);
  const extractor = args.featureExtractor;
  return saveModelDir(dir, {
    model: args.model,
    metadata,
    films: args.films,
    ...(extractor ? { writeExtra: (tmp: string) => extractor.save(join(tmp, FEATURE_EXTRACTOR_DIR)) } : {}),
  });
}

/** Loads a directory written by savePosterClassifier on the active backend, after verifying its files. */
export async function loadPosterClassifier(dir: string): Promise<PosterClassifier> {
  const artifact = openModelDir(dir, { kind: POSTER_CLASSIFIER_KIND });
  const { metadata } = artifact;
  const { variant, width, height, testTimeMirror } = checkMetadata(metadata, join(dir, METADATA_JSON));
  let extractor: PosterFeatureExtractor | undefined;
  let model: tf.LayersModel | undefined;
  let heads: FeatureHeads | undefined;
  try {
    model = await artifact.loadLayersModel();
    if (!model) throw new ModelDirError(`${join(dir, MODEL_JSON)}: not found (the poster model directory ${dir} is incomplete)`);
    const modelPath = join(dir, MODEL_JSON);
    if (variant === 'pretrained') {
      const extractorDir = join(dir, FEATURE_EXTRACTOR_DIR);
      try {
        const spec = JSON.parse(artifact.readText(`${FEATURE_EXTRACTOR_DIR}/${FEATURE_EXTRACTOR_SPEC_JSON}`)) as FeatureExtractorSpecInput;
        extractor = await PosterFeatureExtractor.fromArtifacts(artifact.modelArtifacts(FEATURE_EXTRACTOR_DIR), spec);
      } catch (error) {
        throw new ModelDirError(`${extractorDir}: could not load the feature extractor of ${dir} (${(error as Error).message})`);
      }
      // The trunk takes any size, so a poster decoded at another size would be served without a word.
      if (extractor.inputWidth !== width || extractor.inputHeight !== height) {
        throw new ModelDirError(`${join(dir, METADATA_JSON)}: preprocessing.inputWidth × inputHeight is ${width}×${height}, but the model was trained at ${extractor.inputWidth}×${extractor.inputHeight} (${join(FEATURE_EXTRACTOR_DIR, FEATURE_EXTRACTOR_SPEC_JSON)})`);
      }
    }
    checkShapes(model, variant, { width, height }, metadata.genres.length, modelPath, extractor);
    if (extractor) heads = await compileFeatureHeads(model);
  } catch (error) {
    model?.dispose();
    extractor?.dispose();
    throw error;
  }
  return new LoadedPosterClassifier(metadata, width, height, model, extractor && heads ? { extractor, heads, testTimeMirror } : undefined);
}

/**
 * The features a poster model hands to fusion: for a head over a frozen trunk, the trunk's pooled
 * features (what a joint head over several members' features reads); for a CNN, its penultimate layer.
 */
class LoadedPosterClassifier implements PosterClassifier {
  private readonly both: tf.LayersModel | undefined;
  readonly featureDim: number;
  private disposed = false;

  constructor(
    readonly metadata: ModelMetadata,
    readonly inputWidth: number,
    readonly inputHeight: number,
    private readonly model: tf.LayersModel,
    /**
     * A pretrained trunk and the heads over its features (both on onnxruntime where it loads); with
     * `testTimeMirror`, the probabilities are the heads' mean over the poster and its mirror image.
     */
    private readonly frozen?: { extractor: PosterFeatureExtractor; heads: FeatureHeads; testTimeMirror: boolean },
  ) {
    if (frozen) {
      this.featureDim = frozen.extractor.featureDim;
    } else {
      // One graph with two outputs shares the forward pass between features and probabilities.
      const last = model.layers[model.layers.length - 1]!;
      this.both = tf.model({ inputs: model.inputs, outputs: [last.input as tf.SymbolicTensor, model.outputs[0]!] });
      this.featureDim = posterFeatureDim(model);
    }
  }

  async predict(posters: Uint8Array[]): Promise<Float32Array> {
    return (await this.run(posters, false)).probabilities;
  }

  async predictWithFeatures(posters: Uint8Array[]): Promise<{ probabilities: Float32Array; features: Float32Array; featureDim: number }> {
    const { probabilities, features } = await this.run(posters, true);
    return { probabilities, features: features!, featureDim: this.featureDim };
  }

  private async run(posters: Uint8Array[], withFeatures: boolean): Promise<{ probabilities: Float32Array; features?: Float32Array }> {
    if (this.disposed) throw new Error('PosterClassifier has been disposed');
    const pixels = this.inputWidth * this.inputHeight * 3;
    posters.forEach((p, i) => {
      if (p.length !== pixels) {
        throw new Error(`poster ${i}: expected ${this.inputWidth}×${this.inputHeight}×3 = ${pixels} bytes (RGB uint8 HWC), got ${p.length}`);
      }
    });
    const numGenres = this.metadata.genres.length;
    const probabilities = new Float32Array(posters.length * numGenres);
    const features = withFeatures ? new Float32Array(posters.length * this.featureDim) : undefined;
    for (let start = 0; start < posters.length; start += PREDICT_BATCH) {
      const batch = posters.slice(start, start + PREDICT_BATCH);
      const flat = new Uint8Array(batch.length * pixels);
      batch.forEach((p, i) => flat.set(p, i * pixels));
      if (this.frozen) {
        const { extractor, heads, testTimeMirror } = this.frozen;
        const batchFeatures = await extractor.extract(flat);
        const scored = await heads.predict(batchFeatures, batch.length);
        if (testTimeMirror) {
          const mirrored = await heads.predict(await extractor.extract(flat, { flip: true }), batch.length);
          for (let i = 0; i < scored.length; i++) scored[i] = (scored[i]! + mirrored[i]!) / 2;
        }
        probabilities.set(scored, start * numGenres);
        features?.set(batchFeatures, start * this.featureDim);
        continue;
      }
      const outputs = tf.tidy(() => {
        const images = pixelsToBatchTensor(flat, { width: this.inputWidth, height: this.inputHeight });
        return withFeatures ? (this.both!.predict(images) as tf.Tensor[]) : [this.model.predict(images) as tf.Tensor];
      });
      try {
        const probs = outputs[outputs.length - 1]!;
        probabilities.set(await probs.data() as Float32Array, start * numGenres);
        if (features) features.set(await outputs[0]!.data() as Float32Array, start * this.featureDim);
      } finally {
        tf.dispose(outputs);
      }
    }
    return { probabilities, features };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
    this.frozen?.extractor.dispose();
    this.frozen?.heads.dispose();
  }
}

/** Registers this package's directories with the models-directory loader. */
export const posterClassifierKind: ModelKind<'image'> = { kind: POSTER_CLASSIFIER_KIND, modality: 'image', load: loadPosterClassifier };
