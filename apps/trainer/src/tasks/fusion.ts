import { join } from 'node:path';
import { GENRES, NUM_GENRES, type Film } from '@filmgenre/core';
import { loadPosterSet } from '@filmgenre/data-images';
import { loadPosterClassifier, type PosterClassifier } from '@filmgenre/model-cnn';
import { loadOverviewClassifier, type OverviewClassifier } from '@filmgenre/model-lstm';
import * as tf from '@tensorflow/tfjs';
import { createRng, shuffleInPlace } from '@filmgenre/core';
import { applyLateFusion, createJointFusionModel, saveFusionClassifier, selectLateFusion } from '@filmgenre/model-fusion';
import { evaluateMultiLabel as evaluate } from '@filmgenre/metrics';
import { fitWithEarlyStopping, type Batch } from '../training/fit.js';
import { classWeightsFor, compileForTraining } from '../training/loss.js';
import { provenance } from '../provenance.js';
import { tuneThresholds } from '../training/thresholds.js';
import { labelMatrix, type TrainContext, type TrainedModel } from './context.js';

export interface ModalityOutputs {
  films: Film[];
  image: { probabilities: Float32Array; features: Float32Array; featureDim: number };
  text: { probabilities: Float32Array; features: Float32Array; featureDim: number };
}

/** Runs both saved single-modality models on the same films (those whose poster decodes). */
export async function modalityOutputs(
  poster: PosterClassifier, overview: OverviewClassifier, films: readonly Film[], cacheDir: string, signal?: AbortSignal,
): Promise<ModalityOutputs> {
  const set = await loadPosterSet(films, { size: poster.imageSize, cacheDir: join(cacheDir, 'posters'), signal });
  const byId = new Map(films.map((f) => [f.id, f]));
  const kept = set.ids.map((id) => byId.get(id)!);
  const per = poster.imageSize * poster.imageSize * 3;
  const posters = kept.map((_, i) => set.pixels.subarray(i * per, (i + 1) * per));
  const image = await poster.predictWithFeatures(posters);
  const text = await overview.predictWithFeatures(kept.map((f) => f.overview));
  return { films: kept, image, text };
}

/** Predicts a two-input joint model over feature rows in batches. */
async function predictJoint(model: tf.LayersModel, image: Float32Array, imageDim: number, text: Float32Array, textDim: number): Promise<Float32Array> {
  const n = image.length / imageDim;
  const out = new Float32Array(n * NUM_GENRES);
  for (let start = 0; start < n; start += 256) {
    const count = Math.min(256, n - start);
    const probs = tf.tidy(() => model.predict([
      tf.tensor2d(image.subarray(start * imageDim, (start + count) * imageDim), [count, imageDim]),
      tf.tensor2d(text.subarray(start * textDim, (start + count) * textDim), [count, textDim]),
    ]) as tf.Tensor);
    out.set(await probs.data(), start * NUM_GENRES);
    probs.dispose();
  }
  return out;
}

function rowsOf(source: Float32Array, dim: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(source.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}

/**
 * Joint model (gated multimodal unit) over both saved models' penultimate features, trained on the
 * training split with early stopping on validation. Caveat, by construction: the component models
 * fit the training films better than unseen ones, so the unit learns on features more confident
 * than it will meet; the late fusion default has no such gap.
 */
async function trainJointFusion(ctx: TrainContext, poster: PosterClassifier, overview: OverviewClassifier) {
  const { config, log } = ctx;
  const train = await modalityOutputs(poster, overview, ctx.split.train, ctx.cacheDir, ctx.signal);
  const validation = await modalityOutputs(poster, overview, ctx.split.validation, ctx.cacheDir, ctx.signal);
  const imageDim = train.image.featureDim;
  const textDim = train.text.featureDim;
  const trainLabels = labelMatrix(train.films, NUM_GENRES);
  const validationLabels = labelMatrix(validation.films, NUM_GENRES);
  const classWeights = classWeightsFor(train.films, config.classWeightStrength);
  const options = { imageFeatureDim: imageDim, textFeatureDim: textDim, kind: 'gmu' as const, ...(config.dropout !== undefined ? { dropout: config.dropout } : {}) };
  const model = createJointFusionModel(options);
  compileForTraining(model, config.learningRate ?? 1e-3, classWeights);
  const batchSize = config.batchSize ?? 64;
  const n = train.films.length;
  const predictValidation = () => predictJoint(model, validation.image.features, imageDim, validation.text.features, textDim);
  const fit = await fitWithEarlyStopping(
    {
      name: 'fusion',
      model,
      stepsPerEpoch: Math.ceil(n / batchSize),
      async *trainBatches(epoch: number): AsyncGenerator<Batch> {
        const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), createRng(config.seed * 7919 + epoch));
        for (let start = 0; start < n; start += batchSize) {
          const rows = order.slice(start, start + batchSize);
          yield {
            xs: [tf.tensor2d(rowsOf(train.image.features, imageDim, rows), [rows.length, imageDim]), tf.tensor2d(rowsOf(train.text.features, textDim, rows), [rows.length, textDim])],
            ys: tf.tensor2d(rowsOf(trainLabels, NUM_GENRES, rows), [rows.length, NUM_GENRES]),
          };
        }
      },
      predictValidation,
      validationLabels,
      positiveWeights: classWeights,
    },
    { epochs: config.epochs ?? 30, patience: config.patience, checkpointDir: join(ctx.checkpointRoot, 'fusion'), resume: config.resume, signal: ctx.signal, log },
  );
  return { model, fit, options, films: validation.films, labels: validationLabels, probabilities: await predictValidation() };
}

export async function trainFusionModel(ctx: TrainContext): Promise<TrainedModel> {
  const started = Date.now();
  const { log } = ctx;
  const poster = await loadPosterClassifier(join(ctx.outDir, 'cnn'));
  const overview = await loadOverviewClassifier(join(ctx.outDir, 'lstm'));
  try {
    if (ctx.config.fusionKind === 'joint') {
      const joint = await trainJointFusion(ctx, poster, overview);
      const thresholds = tuneThresholds(joint.probabilities, joint.labels, ctx.config.thresholds);
      const metrics = evaluate({ probabilities: joint.probabilities, labels: joint.labels, thresholds, genres: [...GENRES] });
      const dir = join(ctx.outDir, 'fusion');
      const seconds = (Date.now() - started) / 1000;
      await saveFusionClassifier(dir, {
        kind: 'joint',
        model: joint.model,
        metadata: {
          format: 1, name: 'fusion', modality: 'fusion', variant: 'joint-gmu', genres: [...GENRES], thresholds,
          preprocessing: {
            components: {
              cnn: { variant: poster.metadata.variant, createdAt: poster.metadata.createdAt },
              lstm: { variant: overview.metadata.variant, createdAt: overview.metadata.createdAt },
            },
          },
          metrics: { validation: metrics },
          history: joint.fit.history,
          training: { fitOn: 'train', options: joint.options, bestEpoch: joint.fit.bestEpoch, seconds },
          ...provenance(['@filmgenre/model-fusion', '@filmgenre/model-cnn', '@filmgenre/model-lstm'], ctx.backend),
        },
      });
      log(`[fusion] saved ${dir} (joint GMU): validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)}`);
      joint.model.dispose();
      return {
        name: 'fusion', variant: 'joint-gmu', dir, validationIds: joint.films.map((f) => f.id), validationProbabilities: joint.probabilities,
        validationLabels: joint.labels, thresholds, fit: joint.fit, seconds, interrupted: joint.fit.interrupted,
      };
    }
    const outputs = await modalityOutputs(poster, overview, ctx.split.validation, ctx.cacheDir, ctx.signal);
    const labels = labelMatrix(outputs.films, NUM_GENRES);
    const weighting = ctx.config.fusionWeighting;
    const selection = selectLateFusion({
      imageProbs: outputs.image.probabilities, textProbs: outputs.text.probabilities, labels, numGenres: NUM_GENRES,
      ...(weighting === 'auto' ? {} : { candidates: [weighting] }),
    });
    const params = selection.params;
    log(`[fusion] late weighting: ${selection.weighting} (2-fold cross-validated micro-F1 inside validation: ${Object.entries(selection.crossValidatedMicroF1).map(([k, v]) => `${k} ${v!.toFixed(3)}`).join(', ')})`);
    const probabilities = applyLateFusion(params, outputs.image.probabilities, outputs.text.probabilities);
    const thresholds = tuneThresholds(probabilities, labels, ctx.config.thresholds);
    const metrics = evaluate({ probabilities, labels, thresholds, genres: [...GENRES] });
    const dir = join(ctx.outDir, 'fusion');
    const seconds = (Date.now() - started) / 1000;
    await saveFusionClassifier(dir, {
      kind: 'late',
      late: { ...params, thresholds, weighting: selection.weighting, crossValidatedMicroF1: selection.crossValidatedMicroF1 },
      metadata: {
        format: 1,
        name: 'fusion',
        modality: 'fusion',
        variant: 'late',
        genres: [...GENRES],
        thresholds,
        preprocessing: {
          components: {
            cnn: { variant: poster.metadata.variant, createdAt: poster.metadata.createdAt },
            lstm: { variant: overview.metadata.variant, createdAt: overview.metadata.createdAt },
          },
        },
        metrics: { validation: metrics },
        history: [],
        training: {
          fitOn: 'validation', validationFilms: outputs.films.length, weighting: selection.weighting,
          crossValidatedMicroF1: selection.crossValidatedMicroF1, imageWeights: [...params.weights], seconds,
        },
        ...provenance(['@filmgenre/model-fusion', '@filmgenre/model-cnn', '@filmgenre/model-lstm'], ctx.backend),
      },
    });
    log(`[fusion] saved ${dir}: validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)}`);
    return {
      name: 'fusion', variant: 'late', dir, validationIds: outputs.films.map((f) => f.id), validationProbabilities: probabilities,
      validationLabels: labels, thresholds, seconds, interrupted: false,
    };
  } finally {
    poster.dispose();
    overview.dispose();
  }
}
