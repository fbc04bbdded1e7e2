import * as tf from '@tensorflow/tfjs';
import { NUM_GENRES, type Film } from '@filmgenre/core';
import { createPosterBatches, loadPosterSet, pixelsToBatchTensor, type PosterSet } from '@filmgenre/data-images';
import { evaluateMultiLabel } from '@filmgenre/metrics';
import {
  createFeatureHead, createPosterCnn, DEFAULT_FEATURE_INPUT_SIZE, POSTER_VARIANTS, posterPreprocessing, PosterFeatureExtractor, savePosterClassifier,
} from '@filmgenre/model-cnn';
import {
  classWeightsFor, CommonOptionsSchema, compileForTraining, featureRowBatches, fitWithEarlyStopping, labelMatrix, predictRows, publish,
  runMetadata, TrainingInterrupted, tuneThresholds, type FitTask, type Recipe, type RecipeContext, type TrainedModel,
} from '@filmgenre/training';
import { join } from 'node:path';
import { z } from 'zod';
import { posterFeatures } from './poster-features.js';

/** The image team's defaults (chosen on the validation split, see the README). */
export const POSTER_DEFAULTS = {
  variant: 'pretrained' as const,
  /** The study's input size for the CNNs trained from scratch. */
  imageSize: 64,
  fromScratch: { epochs: 12, batchSize: 64, learningRate: 1e-3 },
  pretrained: { epochs: 40, batchSize: 64, learningRate: 1e-3, inputSize: DEFAULT_FEATURE_INPUT_SIZE },
};

export const PosterRecipeOptionsSchema = CommonOptionsSchema.extend({
  variant: z.enum(POSTER_VARIANTS).default(POSTER_DEFAULTS.variant)
    .describe('pretrained: frozen MobileNetV2 features + dense head; study: the six-layer CNN at 64 px; residual: a small ResNet'),
  augmentStrength: z.number().min(0).max(2).default(1).describe('poster augmentation strength (flip, shift, brightness, contrast; pretrained: mirrored views only); 0 disables'),
});
export type PosterRecipeOptions = z.output<typeof PosterRecipeOptionsSchema>;

/** The rows of a decoded poster set that belong to `films` (those whose poster decoded), in film order. */
function subset(set: PosterSet, films: readonly Film[]): { pixels: Uint8Array; films: Film[] } {
  const per = set.size * set.size * 3;
  const position = new Map(set.ids.map((id, i) => [id, i]));
  const kept = films.filter((f) => position.has(f.id));
  const pixels = new Uint8Array(kept.length * per);
  kept.forEach((f, i) => {
    const at = position.get(f.id)! * per;
    pixels.set(set.pixels.subarray(at, at + per), i * per);
  });
  return { pixels, films: kept };
}

/** n×25 probabilities of a CNN over decoded posters, in batches. */
async function predictPosters(model: tf.LayersModel, pixels: Uint8Array, size: number, batchSize = 128): Promise<Float32Array> {
  const n = pixels.length / (size * size * 3);
  const out = new Float32Array(n * NUM_GENRES);
  for (let start = 0; start < n; start += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const probs = tf.tidy(() => model.predict(pixelsToBatchTensor(pixels, size, { indices })) as tf.Tensor);
    out.set((await probs.data()) as Float32Array, start * NUM_GENRES);
    probs.dispose();
  }
  return out;
}

async function trainPosterModel(ctx: RecipeContext, options: PosterRecipeOptions): Promise<TrainedModel> {
  const started = Date.now();
  const { log } = ctx;
  const { variant } = options;
  const pretrained = variant === 'pretrained';
  const defaults = pretrained ? POSTER_DEFAULTS.pretrained : POSTER_DEFAULTS.fromScratch;
  const imageSize = pretrained ? POSTER_DEFAULTS.pretrained.inputSize : POSTER_DEFAULTS.imageSize;
  const batchSize = options.batchSize ?? defaults.batchSize;
  const learningRate = options.learningRate ?? defaults.learningRate;
  const epochs = options.epochs ?? defaults.epochs;
  const films = [...ctx.split.train, ...ctx.split.validation];
  log(`[cnn] variant ${variant}: decoding ${films.length} posters at ${imageSize}×${imageSize}`);
  const set = await loadPosterSet(films, { size: imageSize, cacheDir: join(ctx.cacheDir, 'posters'), signal: ctx.signal });
  log(`[cnn] posters ready in ${(set.stats.ms / 1000).toFixed(1)} s: ${set.stats.cacheHits} from cache, ${set.stats.decoded} decoded, ${set.bad.length} bad`);
  for (const bad of set.bad) log(`[cnn] skipped poster ${bad.path}: ${bad.reason}`);
  const train = subset(set, ctx.split.train);
  const validation = subset(set, ctx.split.validation);
  const trainLabels = labelMatrix(train.films);
  const validationLabels = labelMatrix(validation.films);
  const classWeights = classWeightsFor(train.films, options.classWeightStrength);
  const strength = options.augmentStrength;

  let model: tf.LayersModel;
  let built: tf.LayersModel | undefined;
  let extractor: PosterFeatureExtractor | undefined;
  let task: Omit<FitTask, 'model'>;
  let predictValidation: () => Promise<Float32Array>;
  let architecture: Record<string, unknown>;
  /** Only the augmentation that is really applied is recorded. */
  let augmentation: Record<string, unknown> | false;
  try {
    if (pretrained) {
      extractor = await PosterFeatureExtractor.fromNsfwjs({ inputSize: imageSize });
      const trainFeatures = await posterFeatures(extractor, train.pixels, ctx.cacheDir, { signal: ctx.signal, label: '[cnn] features (train)' });
      // Augmentation for a frozen extractor: features of the mirrored posters, drawn at random per epoch.
      const trainMirrored = strength > 0 ? await posterFeatures(extractor, train.pixels, ctx.cacheDir, { flip: true, signal: ctx.signal, label: '[cnn] features (train, mirrored)' }) : undefined;
      const validationFeatures = await posterFeatures(extractor, validation.pixels, ctx.cacheDir, { signal: ctx.signal, label: '[cnn] features (validation)' });
      const dim = extractor.featureDim;
      augmentation = trainMirrored ? { mirroredView: 0.5 } : false;
      architecture = { featureDim: dim, seed: ctx.seed, ...(options.dropout !== undefined ? { dropout: options.dropout } : {}) };
      model = built = createFeatureHead(architecture as { featureDim: number });
      predictValidation = () => predictRows(model, validationFeatures, dim, 128);
      task = {
        name: 'cnn',
        stepsPerEpoch: Math.ceil(train.films.length / batchSize),
        trainBatches: (epoch) => featureRowBatches({ features: trainFeatures, ...(trainMirrored ? { mirrored: trainMirrored } : {}), labels: trainLabels, dim, batchSize, seed: ctx.seed, epoch }),
        predictValidation,
        validationLabels,
        positiveWeights: classWeights,
      };
    } else {
      augmentation = strength > 0 ? { flip: 0.5, translate: Math.round(4 * strength), brightness: 0.1 * strength, contrast: 0.1 * strength } : false;
      architecture = { variant, imageSize, seed: ctx.seed, ...(options.dropout !== undefined ? { dropout: options.dropout } : {}) };
      model = built = createPosterCnn(architecture);
      predictValidation = () => predictPosters(model, validation.pixels, imageSize);
      const augment = augmentation;
      task = {
        name: 'cnn',
        stepsPerEpoch: Math.ceil(train.films.length / batchSize),
        trainBatches: (epoch) => createPosterBatches({ pixels: train.pixels, labels: trainLabels, size: imageSize, batchSize, shuffle: true, seed: ctx.seed, epoch, augment }),
        predictValidation,
        validationLabels,
        positiveWeights: classWeights,
      };
    }
    compileForTraining(model, learningRate, classWeights);
    const { epochs: _epochs, patience: _patience, ...identityOptions } = options;
    const fit = await fitWithEarlyStopping({ ...task, model }, {
      epochs, patience: options.patience, checkpointDir: ctx.checkpointDir, resume: ctx.resume, signal: ctx.signal, log, rng: ctx.rng,
      identity: { recipe: 'cnn', options: identityOptions, split: ctx.split.record, posters: train.films.length + validation.films.length },
    });
    if (fit.interrupted) throw new TrainingInterrupted('cnn: stopped during training');
    const probabilities = await predictValidation();
    const thresholds = tuneThresholds(probabilities, validationLabels, options.thresholds);
    const metrics = evaluateMultiLabel({ probabilities, labels: validationLabels, thresholds });
    const dir = join(ctx.modelsDir, 'cnn');
    const seconds = (Date.now() - started) / 1000;
    await publish(ctx, () => savePosterClassifier(dir, {
      model,
      ...(extractor ? { featureExtractor: extractor } : {}),
      films: { scheme: 'validation', train: train.films.map((f) => f.id), heldOut: validation.films.map((f) => f.id), heldOutProbabilities: probabilities },
      metadata: {
        name: 'cnn',
        variant,
        thresholds,
        preprocessing: { ...posterPreprocessing(imageSize, extractor) },
        metrics: { validation: metrics },
        history: fit.history,
        training: {
          options, architecture, epochs, batchSize, learningRate, classWeights, augmentation, thresholdStrategy: options.thresholds,
          bestEpoch: fit.bestEpoch, stoppedEarly: fit.stoppedEarly, trainFilms: train.films.length, validationFilms: validation.films.length, seconds,
        },
        ...runMetadata(ctx, ['@filmgenre/model-cnn', '@filmgenre/data-images', '@filmgenre/training-image', '@filmgenre/core']),
      },
    }));
    log(`[cnn] saved ${dir}: validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)}`);
    return {
      key: 'cnn', variant, dir, heldOut: { ids: validation.films.map((f) => f.id), probabilities, labels: validationLabels },
      thresholds, history: fit.history, bestEpoch: fit.bestEpoch, seconds,
    };
  } finally {
    built?.dispose();
    extractor?.dispose();
  }
}

/** The image team's recipe, registered in the trainer's list under the key `cnn`. */
export const posterRecipe: Recipe<typeof PosterRecipeOptionsSchema> = {
  key: 'cnn',
  modality: 'image',
  summary: 'poster model (image team)',
  options: PosterRecipeOptionsSchema,
  train: trainPosterModel,
};
