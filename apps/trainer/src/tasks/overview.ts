import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { createRng, GENRES, NUM_GENRES, shuffleInPlace } from '@filmgenre/core';
import { TextVectorizer } from '@filmgenre/data-text';
import { createOverviewModel, loadPretrainedEmbeddings, saveOverviewClassifier, WINK_DIM, type OverviewModelOptionsInput } from '@filmgenre/model-lstm';
import { evaluateMultiLabel, precisionMetric, recallMetric } from '@filmgenre/metrics';
import { tuneThresholds } from '../training/thresholds.js';
import { fitWithEarlyStopping, type Batch } from '../training/fit.js';
import { positiveClassWeights, weightedBinaryCrossentropy } from '../training/loss.js';
import { provenance } from '../provenance.js';
import { labelMatrix, type TrainContext, type TrainedModel } from './context.js';

/** Recommended overview-model defaults (see README: chosen on the validation split). */
export const OVERVIEW_DEFAULTS = {
  variant: 'bilstm' as const, maxTokens: 10_000, sequenceLength: 100, epochs: 10, batchSize: 64, learningRate: 2e-3,
};

export async function predictSequences(model: tf.LayersModel, ids: Int32Array, sequenceLength: number, batchSize = 256): Promise<Float32Array> {
  const n = ids.length / sequenceLength;
  const out = new Float32Array(n * NUM_GENRES);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const probs = tf.tidy(() => model.predict(tf.tensor2d(ids.subarray(start * sequenceLength, (start + count) * sequenceLength), [count, sequenceLength], 'int32')) as tf.Tensor);
    out.set(await probs.data(), start * NUM_GENRES);
    probs.dispose();
  }
  return out;
}

async function* sequenceBatches(ids: Int32Array, labels: Float32Array, sequenceLength: number, batchSize: number, seed: number, epoch: number): AsyncGenerator<Batch> {
  const n = labels.length / NUM_GENRES;
  const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), createRng(seed * 7919 + epoch));
  for (let start = 0; start < n; start += batchSize) {
    const rows = order.slice(start, start + batchSize);
    const xs = new Int32Array(rows.length * sequenceLength);
    const ys = new Float32Array(rows.length * NUM_GENRES);
    rows.forEach((r, i) => {
      xs.set(ids.subarray(r * sequenceLength, (r + 1) * sequenceLength), i * sequenceLength);
      ys.set(labels.subarray(r * NUM_GENRES, (r + 1) * NUM_GENRES), i * NUM_GENRES);
    });
    yield { xs: tf.tensor2d(xs, [rows.length, sequenceLength], 'int32'), ys: tf.tensor2d(ys, [rows.length, NUM_GENRES]) };
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
  const trainLabels = labelMatrix(split.train, NUM_GENRES);
  const validationLabels = labelMatrix(split.validation, NUM_GENRES);

  const embeddings = config.textEmbeddings ?? 'learned';
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
  const positives = Array.from({ length: NUM_GENRES }, (_, g) => split.train.reduce((n, f) => n + f.labels[g]!, 0));
  const classWeights = positiveClassWeights(positives, split.train.length, config.classWeightStrength);
  const learningRate = config.learningRate ?? OVERVIEW_DEFAULTS.learningRate;
  model.compile({ optimizer: tf.train.adam(learningRate), loss: weightedBinaryCrossentropy(classWeights), metrics: [precisionMetric, recallMetric] });
  const fit = await fitWithEarlyStopping(
    {
      name: 'lstm',
      model,
      stepsPerEpoch: Math.ceil(split.train.length / batchSize),
      trainBatches: (epoch) => sequenceBatches(trainIds, trainLabels, sequenceLength, batchSize, config.seed, epoch),
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
