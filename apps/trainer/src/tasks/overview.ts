import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { createRng, GENRES, NUM_GENRES, shuffleInPlace } from '@filmgenre/core';
import { TextVectorizer } from '@filmgenre/data-text';
import { createOverviewModel, loadPretrainedEmbeddings, saveOverviewClassifier, trimTrailingPadding, WINK_DIM, type OverviewModelOptionsInput } from '@filmgenre/model-lstm';
import { evaluateMultiLabel } from '@filmgenre/metrics';
import { tuneThresholds } from '../training/thresholds.js';
import { fitWithEarlyStopping, type Batch } from '../training/fit.js';
import { classWeightsFor, compileForTraining } from '../training/loss.js';
import { provenance } from '../provenance.js';
import { labelMatrix, type TrainContext, type TrainedModel } from './context.js';

/** Recommended overview-model defaults (see README: chosen on the validation split). */
export const OVERVIEW_DEFAULTS = {
  variant: 'bilstm' as const, maxTokens: 10_000, sequenceLength: 100, epochs: 15, batchSize: 64, learningRate: 2e-3,
  // Pretrained word vectors: validation micro-F1 0.581 vs ≈ 0.44 for a learned 256-d embedding (README).
  embeddings: 'wink-100d' as const,
};

/** Tokens before the trailing padding of each row. */
function sequenceLengths(ids: Int32Array, sequenceLength: number): Uint16Array {
  const n = ids.length / sequenceLength;
  const lengths = new Uint16Array(n);
  for (let r = 0; r < n; r++) {
    let c = sequenceLength;
    while (c > 0 && ids[r * sequenceLength + c - 1] === 0) c--;
    lengths[r] = c;
  }
  return lengths;
}

/** The BiLSTM takes any length; models with a fixed input length (Transformer) get full rows. */
function acceptsAnyLength(model: tf.LayersModel): boolean {
  return model.inputs[0]!.shape[1] === null;
}

/** Gathers rows into one batch and drops its all-padding tail (identical results: padding is masked). */
function gatherBatch(ids: Int32Array, rows: readonly number[], sequenceLength: number, trim: boolean): tf.Tensor2D {
  const xs = new Int32Array(rows.length * sequenceLength);
  rows.forEach((r, i) => xs.set(ids.subarray(r * sequenceLength, (r + 1) * sequenceLength), i * sequenceLength));
  const trimmed = trim ? trimTrailingPadding(xs, rows.length, sequenceLength) : { ids: xs, length: sequenceLength };
  return tf.tensor2d(trimmed.ids, [rows.length, trimmed.length], 'int32');
}

/** Predicts in batches of similar length (then restores the order), so short overviews run few steps. */
export async function predictSequences(model: tf.LayersModel, ids: Int32Array, sequenceLength: number, batchSize = 256): Promise<Float32Array> {
  const lengths = sequenceLengths(ids, sequenceLength);
  const order = Array.from(lengths.keys()).sort((a, b) => lengths[a]! - lengths[b]!);
  const out = new Float32Array(order.length * NUM_GENRES);
  for (let start = 0; start < order.length; start += batchSize) {
    const rows = order.slice(start, start + batchSize);
    const probs = tf.tidy(() => model.predict(gatherBatch(ids, rows, sequenceLength, acceptsAnyLength(model))) as tf.Tensor);
    const values = await probs.data();
    probs.dispose();
    rows.forEach((r, i) => out.set(values.subarray(i * NUM_GENRES, (i + 1) * NUM_GENRES), r * NUM_GENRES));
  }
  return out;
}

/**
 * One epoch of seeded batches, bucketed by length: shuffled, cut into pools of 16 batches, each pool
 * sorted by length and split, and the batches shuffled again. Every film appears once per epoch.
 */
async function* sequenceBatches(
  model: tf.LayersModel, ids: Int32Array, lengths: Uint16Array, labels: Float32Array, sequenceLength: number, batchSize: number, seed: number, epoch: number,
): AsyncGenerator<Batch> {
  const rng = createRng(seed * 7919 + epoch);
  const order = shuffleInPlace(Array.from(lengths.keys()), rng);
  const batches: number[][] = [];
  const pool = batchSize * 16;
  for (let start = 0; start < order.length; start += pool) {
    const sorted = order.slice(start, start + pool).sort((a, b) => lengths[a]! - lengths[b]!);
    for (let b = 0; b < sorted.length; b += batchSize) batches.push(sorted.slice(b, b + batchSize));
  }
  for (const rows of shuffleInPlace(batches, rng)) {
    const ys = new Float32Array(rows.length * NUM_GENRES);
    rows.forEach((r, i) => ys.set(labels.subarray(r * NUM_GENRES, (r + 1) * NUM_GENRES), i * NUM_GENRES));
    yield { xs: gatherBatch(ids, rows, sequenceLength, acceptsAnyLength(model)), ys: tf.tensor2d(ys, [rows.length, NUM_GENRES]) };
  }
}

export async function trainOverviewModel(ctx: TrainContext): Promise<TrainedModel> {
  const started = Date.now();
  const { config, log, split } = ctx;
  const variant = config.textVariant ?? OVERVIEW_DEFAULTS.variant;
  const batchSize = config.batchSize ?? OVERVIEW_DEFAULTS.batchSize;
  const vectorizer = new TextVectorizer({ maxTokens: OVERVIEW_DEFAULTS.maxTokens, sequenceLength: OVERVIEW_DEFAULTS.sequenceLength });
  vectorizer.adapt(split.train.map((f) => f.overview));
  const coverage = vectorizer.coverage(split.validation.map((f) => f.overview));
  log(`[lstm] vocabulary of ${vectorizer.vocabularySize} tokens adapted on ${split.train.length} training overviews; validation OOV rate ${(coverage.oovRate * 100).toFixed(1)}%`);
  const sequenceLength = OVERVIEW_DEFAULTS.sequenceLength;
  const trainIds = vectorizer.encodeBatch(split.train.map((f) => f.overview));
  const validationIds = vectorizer.encodeBatch(split.validation.map((f) => f.overview));
  const trainLengths = sequenceLengths(trainIds, sequenceLength);
  const trainLabels = labelMatrix(split.train, NUM_GENRES);
  const validationLabels = labelMatrix(split.validation, NUM_GENRES);

  const embeddings = config.textEmbeddings ?? OVERVIEW_DEFAULTS.embeddings;
  let pretrained: Float32Array<ArrayBuffer> | undefined;
  if (embeddings === 'wink-100d') {
    const loaded = await loadPretrainedEmbeddings([...vectorizer.getVocabulary()], { dim: WINK_DIM, seed: config.seed });
    pretrained = loaded.matrix as Float32Array<ArrayBuffer>;
    log(`[lstm] wink-100d word vectors cover ${(loaded.coverage * 100).toFixed(1)}% of the vocabulary`);
  }
  const options: OverviewModelOptionsInput = {
    variant,
    vocabularySize: vectorizer.vocabularySize,
    sequenceLength,
    embeddings,
    ...(pretrained ? { pretrainedEmbeddings: pretrained, embeddingDim: WINK_DIM } : {}),
    ...(config.dropout !== undefined ? { dropout: config.dropout } : {}),
  };
  const model = createOverviewModel(options);
  const classWeights = classWeightsFor(split.train, config.classWeightStrength);
  const learningRate = config.learningRate ?? OVERVIEW_DEFAULTS.learningRate;
  compileForTraining(model, learningRate, classWeights);
  const fit = await fitWithEarlyStopping(
    {
      name: 'lstm',
      model,
      stepsPerEpoch: Math.ceil(split.train.length / batchSize),
      trainBatches: (epoch) => sequenceBatches(model, trainIds, trainLengths, trainLabels, sequenceLength, batchSize, config.seed, epoch),
      predictValidation: () => predictSequences(model, validationIds, sequenceLength),
      validationLabels,
      positiveWeights: classWeights,
    },
    { epochs: config.epochs ?? OVERVIEW_DEFAULTS.epochs, patience: config.patience, checkpointDir: join(ctx.checkpointRoot, 'lstm'), resume: config.resume, signal: ctx.signal, log },
  );
  const probabilities = await predictSequences(model, validationIds, sequenceLength);
  const thresholds = tuneThresholds(probabilities, validationLabels, config.thresholds);
  const metrics = evaluateMultiLabel({ probabilities, labels: validationLabels, thresholds, genres: [...GENRES] });
  const dir = join(ctx.outDir, 'lstm');
  const seconds = (Date.now() - started) / 1000;
  await saveOverviewClassifier(dir, {
    model,
    vectorizer,
    metadata: {
      format: 1,
      name: 'lstm',
      modality: 'text',
      variant,
      genres: [...GENRES],
      thresholds,
      preprocessing: { vocabularyFile: 'vocabulary.json', sequenceLength, maxTokens: OVERVIEW_DEFAULTS.maxTokens },
      metrics: { validation: metrics, validationOovRate: coverage.oovRate },
      history: fit.history,
      training: {
        options: { ...options, pretrainedEmbeddings: undefined }, batchSize, learningRate, seed: config.seed, classWeights, bestEpoch: fit.bestEpoch, stoppedEarly: fit.stoppedEarly,
        trainFilms: split.train.length, validationFilms: split.validation.length, seconds,
      },
      ...provenance(['@filmgenre/model-lstm', '@filmgenre/data-text', '@filmgenre/core'], ctx.backend),
    },
  });
  log(`[lstm] saved ${dir}: validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)}`);
  model.dispose();
  return {
    name: 'lstm', variant, dir, validationIds: split.validation.map((f) => f.id), validationProbabilities: probabilities, validationLabels,
    thresholds, fit, seconds, interrupted: fit.interrupted,
  };
}
