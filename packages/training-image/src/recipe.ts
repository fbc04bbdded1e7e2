import * as tf from '@tensorflow/tfjs';
import { NUM_GENRES, type Film } from '@filmgenre/core';
import { createPosterBatches, loadPosterSet, pixelsToBatchTensor, type PosterSet } from '@filmgenre/data-images';
import { evaluateMultiLabel, tuneThresholds } from '@filmgenre/metrics';
import {
  createPosterCnn, DEFAULT_FEATURE_SPEC, extractPosterFeatures, POSTER_VARIANTS, posterPreprocessing, PosterFeatureExtractor, savePosterClassifier,
  type FeatureExtractorSpecInput,
} from '@filmgenre/model-cnn';
import {
  classWeightsFor, CommonOptionsSchema, compileForTraining, createEpochBar, dataIdentity, fitWithEarlyStopping, FROZEN_HEAD_DEFAULTS, frozenHeadSettings,
  labelMatrix, pickRows, publish, runMetadata, trainFrozenFeatureModel, TrainingInterrupted, type Recipe, type RecipeContext, type TrainedModel,
} from '@filmgenre/training';
import { join } from 'node:path';
import { z } from 'zod';

/** The poster features a pretrained head can read, by name; the defaults are the evidence's best (docs/benchmarks/encoders.md). */
export const POSTER_FEATURES: Record<string, FeatureExtractorSpecInput> = {
  'mobilenet-v2-block10': DEFAULT_FEATURE_SPEC,
  /** The previous default: the 1.4-width graph's last features at 160×160 (fine-tuned as a whole on NSFW classes). */
  'mobilenet-v2-1.4-conv1': { trunk: 'mobilenet_v2_mid', nodes: ['Conv_1'], pooling: ['mean'], inputWidth: 160, inputHeight: 160 },
  /** The inception member's: InceptionV3's ImageNet-pure part, mixed2 and mixed5 mean-pooled (1,056-d), at 128×256. */
  'inception-v3-mixed2-mixed5': { trunk: 'inception_v3', nodes: ['mixed2', 'mixed5'], pooling: ['mean'], inputWidth: 128, inputHeight: 256 },
  // The other InceptionV3 features measured for it (docs/benchmarks/encoders.md).
  'inception-v3-mixed5': { trunk: 'inception_v3', nodes: ['mixed5'], pooling: ['mean', 'max'], inputWidth: 128, inputHeight: 256 },
  'inception-v3-mixed5-mean': { trunk: 'inception_v3', nodes: ['mixed5'], pooling: ['mean'], inputWidth: 128, inputHeight: 256 },
  'inception-v3-mixed5-96': { trunk: 'inception_v3', nodes: ['mixed5'], pooling: ['mean', 'max'], inputWidth: 96, inputHeight: 192 },
  'inception-v3-mixed5-150': { trunk: 'inception_v3', nodes: ['mixed5'], pooling: ['mean', 'max'], inputWidth: 150, inputHeight: 300 },
};
const FEATURE_NAMES = Object.keys(POSTER_FEATURES) as [string, ...string[]];

/** The image team's defaults: the CNNs as the study trained them, the pretrained head as cross-validated. */
export const POSTER_DEFAULTS = {
  variant: 'pretrained' as const,
  /** The study's input size for the CNNs trained from scratch. */
  imageSize: 64,
  fromScratch: { epochs: 12, batchSize: 64, learningRate: 1e-3, patience: 3, classWeightStrength: 0.5, thresholds: 'micro' as const },
  // The pretrained head's: training's FROZEN_HEAD_DEFAULTS, and the mirrored posters' use. Mirrored
  // views in training and scoring add 0.007 micro-F1 to this model and, with the neighbours member,
  // 0.004 to the stack on every fold, but double the heads' training and the trunk's cost per served
  // poster (docs/benchmarks/encoders.md): opt-in until that cost is paid back.
  pretrained: { augmentStrength: 0, mirrorAtTest: false },
};

/** The options of a head over frozen poster features (any pretrained poster member), `features` defaulting to its own. */
function pretrainedOptionsSchema(defaultFeatures: string) {
  return CommonOptionsSchema.extend({
    features: z.enum(FEATURE_NAMES).default(defaultFeatures).describe('pretrained: which frozen features the head reads'),
    bags: z.int().min(1).max(10).default(FROZEN_HEAD_DEFAULTS.bags).describe('pretrained: heads per fold, averaged'),
    augmentStrength: z.number().min(0).max(2).optional()
      .describe('augmentation strength (CNNs: flip, shift, brightness, contrast, default 1; pretrained: > 0 trains on mirrored-poster features half the time, default 0)'),
    mirrorAtTest: z.boolean().optional()
      .describe('pretrained: score a poster by the heads\' mean over it and its mirror image, out of fold and when serving (default false)'),
    // Per-variant defaults (see POSTER_DEFAULTS) unless given.
    patience: z.int().nonnegative().optional().describe('early stopping: epochs without validation-loss improvement (default per variant)'),
    classWeightStrength: z.number().min(0).max(1).optional().describe('positive-class weight = (neg/pos)^strength; 0 disables (default per variant)'),
    thresholds: CommonOptionsSchema.shape.thresholds.unwrap().optional().describe('how the per-genre thresholds are tuned (default per variant: shared for pretrained, micro for the CNNs)'),
  });
}

export const PosterRecipeOptionsSchema = pretrainedOptionsSchema('mobilenet-v2-block10').extend({
  variant: z.enum(POSTER_VARIANTS).default(POSTER_DEFAULTS.variant)
    .describe('pretrained: a head over frozen ImageNet features, cross-fitted over the folds; study: the six-layer CNN at 64 px; residual: a small ResNet'),
});
export const InceptionRecipeOptionsSchema = pretrainedOptionsSchema('inception-v3-mixed2-mixed5');
export type PosterRecipeOptions = z.output<typeof PosterRecipeOptionsSchema>;
type PretrainedOptions = z.output<typeof InceptionRecipeOptionsSchema>;

const PACKAGES = ['@filmgenre/model-cnn', '@filmgenre/data-images', '@filmgenre/training-image', '@filmgenre/core'];

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

/** The study's CNN or the residual one, trained once with early stopping on the validation fold. */
async function trainCnn(ctx: RecipeContext, options: PosterRecipeOptions): Promise<TrainedModel> {
  const started = Date.now();
  const { log } = ctx;
  const defaults = POSTER_DEFAULTS.fromScratch;
  const imageSize = POSTER_DEFAULTS.imageSize;
  const batchSize = options.batchSize ?? defaults.batchSize;
  const epochs = options.epochs ?? defaults.epochs;
  const strength = options.augmentStrength ?? 1;
  const thresholdStrategy = options.thresholds ?? defaults.thresholds;
  const films = [...ctx.split.train, ...ctx.split.validation];
  log(`[cnn] variant ${options.variant}: decoding ${films.length} posters at ${imageSize}×${imageSize}`);
  const set = await loadPosterSet(films, { size: imageSize, cacheDir: join(ctx.cacheDir, 'posters'), signal: ctx.signal });
  log(`[cnn] posters ready in ${(set.stats.ms / 1000).toFixed(1)} s: ${set.stats.cacheHits} from cache, ${set.stats.decoded} decoded, ${set.bad.length} bad`);
  for (const bad of set.bad) log(`[cnn] skipped poster ${bad.path}: ${bad.reason}`);
  const train = subset(set, ctx.split.train);
  const validation = subset(set, ctx.split.validation);
  const trainLabels = labelMatrix(train.films);
  const validationLabels = labelMatrix(validation.films);
  const classWeights = classWeightsFor(train.films, options.classWeightStrength ?? defaults.classWeightStrength);
  // Only the augmentation that is really applied is recorded.
  const augmentation = strength > 0 ? { flip: 0.5, translate: Math.round(4 * strength), brightness: 0.1 * strength, contrast: 0.1 * strength } : false;
  const architecture = { variant: options.variant as 'study' | 'residual', imageSize, seed: ctx.seed, ...(options.dropout !== undefined ? { dropout: options.dropout } : {}) };
  const model = createPosterCnn(architecture);
  try {
    const predictValidation = () => predictPosters(model, validation.pixels, imageSize);
    compileForTraining(model, options.learningRate ?? defaults.learningRate, classWeights);
    const { epochs: _epochs, patience: _patience, ...identityOptions } = options;
    const fit = await fitWithEarlyStopping(
      {
        name: 'cnn', model, stepsPerEpoch: Math.ceil(train.films.length / batchSize),
        trainBatches: (epoch) => createPosterBatches({ pixels: train.pixels, labels: trainLabels, size: imageSize, batchSize, shuffle: true, seed: ctx.seed, epoch, augment: augmentation }),
        predictValidation, validationLabels, positiveWeights: classWeights,
      },
      {
        epochs, patience: options.patience ?? defaults.patience, checkpointDir: ctx.checkpointDir, resume: ctx.resume, signal: ctx.signal, log, rng: ctx.rng,
        identity: { recipe: 'cnn', options: identityOptions, split: ctx.split.record, ...dataIdentity([...train.films, ...validation.films], { posters: set.pixels }) },
      },
    );
    if (fit.interrupted) throw new TrainingInterrupted('cnn: stopped during training');
    const probabilities = await predictValidation();
    const thresholds = tuneThresholds(probabilities, validationLabels, thresholdStrategy);
    const metrics = evaluateMultiLabel({ probabilities, labels: validationLabels, thresholds });
    const dir = join(ctx.modelsDir, 'cnn');
    const seconds = (Date.now() - started) / 1000;
    await publish(ctx, () => savePosterClassifier(dir, {
      model,
      films: { scheme: 'validation', train: train.films.map((f) => f.id), heldOut: validation.films.map((f) => f.id), heldOutProbabilities: probabilities },
      metadata: {
        name: 'cnn', variant: options.variant, thresholds, preprocessing: { ...posterPreprocessing(imageSize) },
        metrics: { validation: metrics }, history: fit.history,
        training: {
          options, architecture, epochs, batchSize, classWeights, augmentation, thresholdStrategy,
          bestEpoch: fit.bestEpoch, stoppedEarly: fit.stoppedEarly, trainFilms: train.films.length, validationFilms: validation.films.length, seconds,
        },
        ...runMetadata(ctx, PACKAGES),
      },
    }));
    log(`[cnn] saved ${dir}: validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)} (thresholds tuned on it)`);
    return {
      key: 'cnn', variant: options.variant, dir, heldOut: { ids: validation.films.map((f) => f.id), probabilities, labels: validationLabels },
      thresholds, history: fit.history, bestEpoch: fit.bestEpoch, seconds,
    };
  } finally {
    model.dispose();
  }
}

/**
 * A head over frozen poster features, cross-fitted by training's frozen-feature recipe: every film's
 * features are computed once (cached on disk by content), each fold's heads train on the other
 * folds, and the model shipped averages all the heads behind the feature extractor.
 */
async function trainPretrained(ctx: RecipeContext, options: PretrainedOptions, key: string): Promise<TrainedModel> {
  const started = Date.now();
  const { log } = ctx;
  const settings = frozenHeadSettings(options);
  const mirroredTraining = (options.augmentStrength ?? POSTER_DEFAULTS.pretrained.augmentStrength) > 0;
  const mirrorAtTest = options.mirrorAtTest ?? POSTER_DEFAULTS.pretrained.mirrorAtTest;
  const mirrored = mirroredTraining || mirrorAtTest;
  const extractor = await PosterFeatureExtractor.create(POSTER_FEATURES[options.features]!);
  try {
    log(`[${key}] features ${options.features} (${extractor.featureDim}-d from posters at ${extractor.inputWidth}×${extractor.inputHeight}, on ${extractor.runtime})${mirrored ? `, with mirrored views (${[mirroredTraining ? 'training' : '', mirrorAtTest ? 'scoring' : ''].filter(Boolean).join(' and ')})` : ''} for ${ctx.films.length} films`);
    const bad = new Map<number, string>();
    const featuresOf = async (flip: boolean, label: string) => {
      const bar = createEpochBar(label, ctx.films.length, { metrics: false });
      const features = await extractPosterFeatures(extractor, ctx.films.map((f) => f.posterPath), {
        cacheDir: join(ctx.cacheDir, 'features'), flip, signal: ctx.signal, onBad: (i, reason) => bad.set(i, reason),
        onProgress: (done, total) => bar.update(ctx.films.length - total + done, {}),
      });
      bar.stop();
      if (ctx.signal.aborted) throw new TrainingInterrupted(`${key}: stopped while computing poster features`);
      return features;
    };
    const allFeatures = await featuresOf(false, `[${key}] poster features`);
    const allMirrored = mirrored ? await featuresOf(true, `[${key}] mirrored-poster features`) : undefined;
    for (const [i, reason] of bad) log(`[${key}] skipped poster ${ctx.films[i]!.posterPath}: ${reason}`);
    const keep = ctx.folds.items.flatMap((_, i) => (bad.has(i) ? [] : [i]));
    const dim = extractor.featureDim;
    const rows = (source: Float32Array) => pickRows(source, dim, keep);
    const films = keep.map((i) => ctx.films[i]!);
    const features = rows(allFeatures);
    const ids = films.map((f) => f.id);
    const { epochs: _epochs, patience: _patience, ...identityOptions } = options;
    return await trainFrozenFeatureModel(ctx, {
      key, variant: 'pretrained', features, dim, ...(allMirrored ? { mirrored: rows(allMirrored), trainOnMirrored: mirroredTraining, mirrorAtTest } : {}), ids,
      labels: labelMatrix(films), folds: Int32Array.from(keep, (i) => ctx.folds.folds[i]!), settings, hiddenInitializer: 'he-normal', started,
      identity: { recipe: key, options: identityOptions, split: ctx.folds.record, extractor: extractor.identity, ...dataIdentity(films, { posterFeatures: features }) },
      save: (dir, trained) => savePosterClassifier(dir, {
        model: trained.model,
        featureExtractor: extractor,
        films: { scheme: 'out-of-fold', train: ids, heldOut: ids, heldOutProbabilities: trained.outOfFold },
        metadata: {
          name: key, variant: 'pretrained', thresholds: trained.thresholds, preprocessing: { ...posterPreprocessing(extractor, { testTimeMirror: mirrorAtTest }) },
          metrics: { outOfFold: trained.report }, history: trained.histories[0] ?? [],
          training: {
            options, features: options.features, heads: trained.heads, bags: options.bags, bestEpochs: trained.bestEpochs, thresholdStrategy: settings.thresholds,
            augmentation: mirroredTraining ? { mirroredView: 0.5 } : false, mirrorAtTest, films: films.length, skippedPosters: bad.size, seconds: trained.seconds,
          },
          ...runMetadata(ctx, PACKAGES, ctx.folds.record),
          encoderRuntime: extractor.runtime,
        },
      }),
    });
  } finally {
    extractor.dispose();
  }
}

/** The image team's recipe, registered in the trainer's list under the key `cnn`. */
export const posterRecipe: Recipe<typeof PosterRecipeOptionsSchema> = {
  key: 'cnn',
  modality: 'image',
  summary: 'poster model (image team)',
  options: PosterRecipeOptionsSchema,
  train: (ctx, options) => (options.variant === 'pretrained' ? trainPretrained(ctx, options, 'cnn') : trainCnn(ctx, options)),
};

/**
 * The image team's second poster member, under the key `inception`: a head over InceptionV3's
 * features, trained as the pretrained `cnn` is. The two trunks see posters differently enough that
 * the fusion gains from stacking both (docs/benchmarks/encoders.md).
 */
export const inceptionRecipe: Recipe<typeof InceptionRecipeOptionsSchema> = {
  key: 'inception',
  modality: 'image',
  summary: 'poster model over InceptionV3 features (image team)',
  options: InceptionRecipeOptionsSchema,
  train: (ctx, options) => trainPretrained(ctx, options, 'inception'),
};

/** The image team's recipes, in the order the trainer runs them; the trainer lists them as they are. */
export const IMAGE_RECIPES = [posterRecipe, inceptionRecipe] as const;
