import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { GENRES, NUM_GENRES, type Film } from '@filmgenre/core';
import { createPosterBatches, loadPosterSet, type PosterSet } from '@filmgenre/data-images';
import { createPosterCnn, savePosterClassifier } from '@filmgenre/model-cnn';
import { evaluateMultiLabel, precisionMetric, recallMetric, tunePerGenreThresholds } from '@filmgenre/metrics';
import { fitWithEarlyStopping } from '../training/fit.js';
import { positiveClassWeights, weightedBinaryCrossentropy } from '../training/loss.js';
import { provenance } from '../provenance.js';
import { labelMatrix, type TrainContext, type TrainedModel } from './context.js';

/** Recommended poster-model defaults (see README: chosen on the validation split). */
export const POSTER_DEFAULTS = { variant: 'study' as const, imageSize: 64, epochs: 12, batchSize: 64, learningRate: 1e-3 };

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

export async function predictPixels(model: tf.LayersModel, pixels: Uint8Array, size: number, batchSize = 128): Promise<Float32Array> {
  const per = size * size * 3;
  const n = pixels.length / per;
  const out = new Float32Array(n * NUM_GENRES);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const probs = tf.tidy(() => {
      const xs = tf.tensor4d(pixels.subarray(start * per, (start + count) * per), [count, size, size, 3], 'int32').toFloat().div(255);
      return model.predict(xs) as tf.Tensor;
    });
    out.set(await probs.data(), start * NUM_GENRES);
    probs.dispose();
  }
  return out;
}

export async function trainPosterModel(ctx: TrainContext): Promise<TrainedModel> {
  const started = Date.now();
  const { config, log } = ctx;
  const variant = config.cnnVariant ?? POSTER_DEFAULTS.variant;
  const imageSize = POSTER_DEFAULTS.imageSize;
  const batchSize = config.batchSize ?? POSTER_DEFAULTS.batchSize;
  const films = [...ctx.split.train, ...ctx.split.validation];
  log(`[cnn] decoding ${films.length} posters at ${imageSize}×${imageSize} (cache: ${ctx.cacheDir})`);
  const set = await loadPosterSet(films, { size: imageSize, cacheDir: ctx.cacheDir, signal: ctx.signal });
  log(`[cnn] posters ready in ${(set.stats.ms / 1000).toFixed(1)} s: ${set.stats.cacheHits} from cache, ${set.stats.decoded} decoded, ${set.bad.length} bad`);
  for (const bad of set.bad) log(`[cnn] skipped poster ${bad.path}: ${bad.reason}`);
  const train = subset(set, ctx.split.train);
  const validation = subset(set, ctx.split.validation);
  const trainLabels = labelMatrix(train.films, NUM_GENRES);
  const validationLabels = labelMatrix(validation.films, NUM_GENRES);

  const options = { variant: variant === 'pretrained' ? ('study' as const) : variant, imageSize, seed: config.seed, ...(config.dropout !== undefined ? { dropout: config.dropout } : {}) };
  const model = createPosterCnn(options);
  const positives = Array.from({ length: NUM_GENRES }, (_, g) => train.films.reduce((n, f) => n + f.labels[g]!, 0));
  const classWeights = positiveClassWeights(positives, train.films.length, config.classWeightStrength);
  model.compile({
    optimizer: tf.train.adam(config.learningRate ?? POSTER_DEFAULTS.learningRate),
    loss: weightedBinaryCrossentropy(classWeights),
    metrics: [precisionMetric, recallMetric],
  });
  const augment = config.augmentStrength > 0
    ? { flip: 0.5, translate: Math.round(4 * config.augmentStrength), brightness: 0.1 * config.augmentStrength, contrast: 0.1 * config.augmentStrength }
    : false;
  const fit = await fitWithEarlyStopping(
    {
      name: 'cnn',
      model,
      stepsPerEpoch: Math.ceil(train.films.length / batchSize),
      trainBatches: (epoch) =>
        createPosterBatches({ pixels: train.pixels, labels: trainLabels, size: imageSize, batchSize, shuffle: true, seed: config.seed, epoch, augment }),
      predictValidation: () => predictPixels(model, validation.pixels, imageSize),
      validationLabels,
    },
    {
      epochs: config.epochs ?? POSTER_DEFAULTS.epochs,
      patience: config.patience,
      checkpointDir: join(ctx.checkpointRoot, 'cnn'),
      resume: config.resume,
      signal: ctx.signal,
      log,
    },
  );
  const probabilities = await predictPixels(model, validation.pixels, imageSize);
  const thresholds = tunePerGenreThresholds(probabilities, validationLabels, { numGenres: NUM_GENRES }).thresholds;
  const metrics = evaluateMultiLabel({ probabilities, labels: validationLabels, thresholds, genres: [...GENRES] });
  const dir = join(ctx.outDir, 'cnn');
  const seconds = (Date.now() - started) / 1000;
  await savePosterClassifier(dir, {
    model,
    metadata: {
      format: 1,
      name: 'cnn',
      modality: 'image',
      variant: options.variant,
      genres: [...GENRES],
      thresholds,
      preprocessing: { imageSize, channels: 3, scale: '1/255', resize: 'fill' },
      metrics: { validation: metrics },
      history: fit.history,
      training: {
        options, batchSize, learningRate: config.learningRate ?? POSTER_DEFAULTS.learningRate, seed: config.seed,
        classWeights, augment, bestEpoch: fit.bestEpoch, stoppedEarly: fit.stoppedEarly, trainFilms: train.films.length,
        validationFilms: validation.films.length, seconds,
      },
      ...provenance(['@filmgenre/model-cnn', '@filmgenre/data-images', '@filmgenre/core'], ctx.backend),
    },
  });
  log(`[cnn] saved ${dir}: validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)}`);
  model.dispose();
  return {
    name: 'cnn', variant: options.variant, dir, validationIds: validation.films.map((f) => f.id), validationProbabilities: probabilities,
    validationLabels, thresholds, fit, seconds, interrupted: fit.interrupted,
  };
}
