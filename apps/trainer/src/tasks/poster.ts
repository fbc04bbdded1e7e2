import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { createRng, GENRES, NUM_GENRES, shuffleInPlace, type Film } from '@filmgenre/core';
import { createPosterBatches, loadPosterSet, type PosterSet } from '@filmgenre/data-images';
import {
  createFeatureHead, createPosterCnn, DEFAULT_FEATURE_INPUT_SIZE, PosterFeatureExtractor, savePosterClassifier,
} from '@filmgenre/model-cnn';
import { evaluateMultiLabel } from '@filmgenre/metrics';
import { tuneThresholds } from '../training/thresholds.js';
import { fitWithEarlyStopping, type Batch, type FitTask } from '../training/fit.js';
import { classWeightsFor, compileForTraining } from '../training/loss.js';
import { provenance } from '../provenance.js';
import { labelMatrix, type TrainContext, type TrainedModel } from './context.js';
import { posterFeatures } from './poster-features.js';

/** Recommended poster-model defaults (see README: chosen on the validation split). */
export const POSTER_DEFAULTS = {
  variant: 'pretrained' as const,
  imageSize: 64,
  fromScratch: { epochs: 12, batchSize: 64, learningRate: 1e-3 },
  pretrained: { epochs: 40, batchSize: 64, learningRate: 1e-3, inputSize: DEFAULT_FEATURE_INPUT_SIZE },
};

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

/** Runs a model over flat rows (images or feature vectors) in batches; returns n×25 probabilities. */
async function predictRows(model: tf.LayersModel, rows: Float32Array | Uint8Array, rowShape: number[], batchSize = 128): Promise<Float32Array> {
  const per = rowShape.reduce((a, b) => a * b, 1);
  const n = rows.length / per;
  const out = new Float32Array(n * NUM_GENRES);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const probs = tf.tidy(() => {
      const slice = rows.subarray(start * per, (start + count) * per);
      const xs = slice instanceof Uint8Array ? tf.tensor(slice, [count, ...rowShape], 'int32').toFloat().div(255) : tf.tensor(slice, [count, ...rowShape]);
      return model.predict(xs) as tf.Tensor;
    });
    out.set(await probs.data(), start * NUM_GENRES);
    probs.dispose();
  }
  return out;
}

/** Seeded shuffled batches of feature rows; with flipped features, each film's view is drawn per epoch. */
async function* featureBatches(
  features: Float32Array, flipped: Float32Array | undefined, labels: Float32Array, dim: number, batchSize: number, seed: number, epoch: number,
): AsyncGenerator<Batch> {
  const n = labels.length / NUM_GENRES;
  const rng = createRng(seed * 7919 + epoch);
  const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), rng);
  for (let start = 0; start < n; start += batchSize) {
    const rows = order.slice(start, start + batchSize);
    const xs = new Float32Array(rows.length * dim);
    const ys = new Float32Array(rows.length * NUM_GENRES);
    rows.forEach((r, i) => {
      const source = flipped && rng() < 0.5 ? flipped : features;
      xs.set(source.subarray(r * dim, (r + 1) * dim), i * dim);
      ys.set(labels.subarray(r * NUM_GENRES, (r + 1) * NUM_GENRES), i * NUM_GENRES);
    });
    yield { xs: tf.tensor2d(xs, [rows.length, dim]), ys: tf.tensor2d(ys, [rows.length, NUM_GENRES]) };
  }
}

export async function trainPosterModel(ctx: TrainContext): Promise<TrainedModel> {
  const started = Date.now();
  const { config, log } = ctx;
  const variant = config.cnnVariant ?? POSTER_DEFAULTS.variant;
  const defaults = variant === 'pretrained' ? POSTER_DEFAULTS.pretrained : POSTER_DEFAULTS.fromScratch;
  const imageSize = variant === 'pretrained' ? POSTER_DEFAULTS.pretrained.inputSize : POSTER_DEFAULTS.imageSize;
  const batchSize = config.batchSize ?? defaults.batchSize;
  const learningRate = config.learningRate ?? defaults.learningRate;
  const films = [...ctx.split.train, ...ctx.split.validation];
  log(`[cnn] variant ${variant}: decoding ${films.length} posters at ${imageSize}×${imageSize}`);
  const set = await loadPosterSet(films, { size: imageSize, cacheDir: join(ctx.cacheDir, 'posters'), signal: ctx.signal });
  log(`[cnn] posters ready in ${(set.stats.ms / 1000).toFixed(1)} s: ${set.stats.cacheHits} from cache, ${set.stats.decoded} decoded, ${set.bad.length} bad`);
  for (const bad of set.bad) log(`[cnn] skipped poster ${bad.path}: ${bad.reason}`);
  const train = subset(set, ctx.split.train);
  const validation = subset(set, ctx.split.validation);
  const trainLabels = labelMatrix(train.films, NUM_GENRES);
  const validationLabels = labelMatrix(validation.films, NUM_GENRES);
  const classWeights = classWeightsFor(train.films, config.classWeightStrength);

  let model: tf.LayersModel;
  let extractor: PosterFeatureExtractor | undefined;
  let task: Omit<FitTask, 'model'>;
  let predictValidation: () => Promise<Float32Array>;
  let options: Record<string, unknown>;
  const augment = config.augmentStrength > 0
    ? { flip: 0.5, translate: Math.round(4 * config.augmentStrength), brightness: 0.1 * config.augmentStrength, contrast: 0.1 * config.augmentStrength }
    : false;
  if (variant === 'pretrained') {
    extractor = await PosterFeatureExtractor.fromNsfwjs({ inputSize: imageSize });
    const cacheDir = ctx.cacheDir;
    const trainFeatures = await posterFeatures(extractor, train.pixels, cacheDir, { signal: ctx.signal, label: '[cnn] features (train)' });
    // Augmentation for a frozen extractor: features of the mirrored posters, drawn at random per epoch.
    const trainFlipped = augment ? await posterFeatures(extractor, train.pixels, cacheDir, { flip: true, signal: ctx.signal, label: '[cnn] features (train, mirrored)' }) : undefined;
    const validationFeatures = await posterFeatures(extractor, validation.pixels, cacheDir, { signal: ctx.signal, label: '[cnn] features (validation)' });
    const dim = extractor.featureDim;
    options = { featureDim: dim, seed: config.seed, ...(config.dropout !== undefined ? { dropout: config.dropout } : {}) };
    model = createFeatureHead(options as { featureDim: number });
    predictValidation = () => predictRows(model, validationFeatures, [dim]);
    task = {
      name: 'cnn',
      stepsPerEpoch: Math.ceil(train.films.length / batchSize),
      trainBatches: (epoch) => featureBatches(trainFeatures, trainFlipped, trainLabels, dim, batchSize, config.seed, epoch),
      predictValidation,
      validationLabels,
      positiveWeights: classWeights,
    };
  } else {
    options = { variant, imageSize, seed: config.seed, ...(config.dropout !== undefined ? { dropout: config.dropout } : {}) };
    model = createPosterCnn(options);
    predictValidation = () => predictRows(model, validation.pixels, [imageSize, imageSize, 3]);
    task = {
      name: 'cnn',
      stepsPerEpoch: Math.ceil(train.films.length / batchSize),
      trainBatches: (epoch) =>
        createPosterBatches({ pixels: train.pixels, labels: trainLabels, size: imageSize, batchSize, shuffle: true, seed: config.seed, epoch, augment }),
      predictValidation,
      validationLabels,
      positiveWeights: classWeights,
    };
  }
  compileForTraining(model, learningRate, classWeights);
  const fit = await fitWithEarlyStopping(
    { ...task, model },
    {
      epochs: config.epochs ?? defaults.epochs, patience: config.patience, checkpointDir: join(ctx.checkpointRoot, 'cnn'),
      resume: config.resume, signal: ctx.signal, log,
    },
  );
  const probabilities = await predictValidation();
  const thresholds = tuneThresholds(probabilities, validationLabels, config.thresholds);
  const metrics = evaluateMultiLabel({ probabilities, labels: validationLabels, thresholds, genres: [...GENRES] });
  const dir = join(ctx.outDir, 'cnn');
  const seconds = (Date.now() - started) / 1000;
  await savePosterClassifier(dir, {
    model,
    ...(extractor ? { featureExtractor: extractor } : {}),
    metadata: {
      format: 1,
      name: 'cnn',
      modality: 'image',
      variant,
      genres: [...GENRES],
      thresholds,
      preprocessing: { imageSize, channels: 3, layout: 'HWC', resize: 'fill', scale: '1/255', ...(extractor ? { featureExtractor: { dir: 'feature-extractor', ...extractor.info } } : {}) },
      metrics: { validation: metrics },
      history: fit.history,
      training: {
        options, batchSize, learningRate, seed: config.seed, classWeights, augment, bestEpoch: fit.bestEpoch, stoppedEarly: fit.stoppedEarly,
        trainFilms: train.films.length, validationFilms: validation.films.length, seconds,
      },
      ...provenance(['@filmgenre/model-cnn', '@filmgenre/data-images', '@filmgenre/core'], ctx.backend),
    },
  });
  log(`[cnn] saved ${dir}: validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)}`);
  model.dispose();
  extractor?.dispose();
  return {
    name: 'cnn', variant, dir, validationIds: validation.films.map((f) => f.id), validationProbabilities: probabilities,
    validationLabels, thresholds, fit, seconds, interrupted: fit.interrupted,
  };
}
