import * as tf from '@tensorflow/tfjs';
import { NUM_GENRES, shuffleInPlace } from '@filmgenre/core';
import { TextVectorizer } from '@filmgenre/data-text';
import { evaluateMultiLabel, tuneThresholds } from '@filmgenre/metrics';
import {
  acceptsAnyLength, createOverviewModel, gatherSequences, loadPretrainedEmbeddings, OVERVIEW_VARIANTS, predictSequences,
  saveOverviewClassifier, sequenceLengths, WINK_DIM, type OverviewModelOptionsInput,
} from '@filmgenre/model-lstm';
import {
  classWeightsFor, CommonOptionsSchema, compileForTraining, dataIdentity, epochRng, fitWithEarlyStopping, labelMatrix, publish, runMetadata,
  TrainingInterrupted, type Batch, type Recipe, type RecipeContext, type TrainedModel,
} from '@filmgenre/training';
import { join } from 'node:path';
import { z } from 'zod';

/** The text team's defaults (chosen on the validation split, see the README). */
export const OVERVIEW_DEFAULTS = {
  variant: 'bilstm' as const, maxTokens: 10_000, sequenceLength: 100, epochs: 15, batchSize: 64, learningRate: 2e-3,
  // Pretrained word vectors: validation micro-F1 0.581 vs ≈ 0.44 for a learned 256-d embedding (README).
  embeddings: 'wink-100d' as const,
};

export const OVERVIEW_EMBEDDINGS = ['learned', 'wink-100d'] as const;

export const OverviewRecipeOptionsSchema = CommonOptionsSchema.extend({
  variant: z.enum(OVERVIEW_VARIANTS).default(OVERVIEW_DEFAULTS.variant).describe('bilstm: the study\'s bidirectional LSTM; transformer: a small Transformer encoder'),
  embeddings: z.enum(OVERVIEW_EMBEDDINGS).default(OVERVIEW_DEFAULTS.embeddings).describe('embedding initialisation: learned from scratch (256-d, the study) or wink-100d word vectors'),
});
export type OverviewRecipeOptions = z.output<typeof OverviewRecipeOptionsSchema>;

/**
 * One epoch of seeded batches, bucketed by length: shuffled, cut into pools of 16 batches, each pool
 * sorted by length and split, and the batches shuffled again. Every film appears once per epoch.
 */
async function* sequenceBatches(
  model: tf.LayersModel, ids: Int32Array, lengths: Uint16Array, labels: Float32Array, sequenceLength: number, batchSize: number, seed: number, epoch: number,
): AsyncGenerator<Batch> {
  const rng = epochRng(seed, epoch);
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
    yield { xs: gatherSequences(ids, rows, sequenceLength, acceptsAnyLength(model)), ys: tf.tensor2d(ys, [rows.length, NUM_GENRES]) };
  }
}

async function trainOverviewModel(ctx: RecipeContext, options: OverviewRecipeOptions): Promise<TrainedModel> {
  const started = Date.now();
  const { log, split } = ctx;
  const { variant, embeddings } = options;
  const batchSize = options.batchSize ?? OVERVIEW_DEFAULTS.batchSize;
  const epochs = options.epochs ?? OVERVIEW_DEFAULTS.epochs;
  const { sequenceLength, maxTokens } = OVERVIEW_DEFAULTS;
  const vectorizer = new TextVectorizer({ maxTokens, sequenceLength });
  vectorizer.adapt(split.train.map((f) => f.overview));
  const coverage = vectorizer.coverage(split.validation.map((f) => f.overview));
  log(`[lstm] vocabulary of ${vectorizer.vocabularySize} tokens adapted on ${split.train.length} training overviews; validation OOV rate ${(coverage.oovRate * 100).toFixed(1)}%`);
  const trainIds = vectorizer.encodeBatch(split.train.map((f) => f.overview));
  const validationIds = vectorizer.encodeBatch(split.validation.map((f) => f.overview));
  const trainLengths = sequenceLengths(trainIds, sequenceLength);
  const trainLabels = labelMatrix(split.train);
  const validationLabels = labelMatrix(split.validation);

  let pretrained: Float32Array<ArrayBuffer> | undefined;
  if (embeddings === 'wink-100d') {
    const loaded = await loadPretrainedEmbeddings([...vectorizer.getVocabulary()], { dim: WINK_DIM, seed: ctx.seed });
    pretrained = loaded.matrix as Float32Array<ArrayBuffer>;
    log(`[lstm] wink-100d word vectors cover ${(loaded.coverage * 100).toFixed(1)}% of the vocabulary`);
  }
  const architecture: OverviewModelOptionsInput = {
    variant,
    vocabularySize: vectorizer.vocabularySize,
    sequenceLength,
    embeddings,
    ...(pretrained ? { pretrainedEmbeddings: pretrained, embeddingDim: WINK_DIM } : {}),
    ...(options.dropout !== undefined ? { dropout: options.dropout } : {}),
  };
  const model = createOverviewModel(architecture);
  try {
    const classWeights = classWeightsFor(split.train, options.classWeightStrength);
    const learningRate = options.learningRate ?? OVERVIEW_DEFAULTS.learningRate;
    compileForTraining(model, learningRate, classWeights);
    const { epochs: _epochs, patience: _patience, ...identityOptions } = options;
    const fit = await fitWithEarlyStopping(
      {
        name: 'lstm',
        model,
        stepsPerEpoch: Math.ceil(split.train.length / batchSize),
        trainBatches: (epoch) => sequenceBatches(model, trainIds, trainLengths, trainLabels, sequenceLength, batchSize, ctx.seed, epoch),
        predictValidation: () => predictSequences(model, validationIds, sequenceLength),
        validationLabels,
        positiveWeights: classWeights,
      },
      {
        epochs, patience: options.patience, checkpointDir: ctx.checkpointDir, resume: ctx.resume, signal: ctx.signal, log, rng: ctx.rng,
        identity: { recipe: 'lstm', options: identityOptions, split: split.record, ...dataIdentity(ctx.films, { overviews: ctx.films.map((f) => f.overview) }) },
      },
    );
    if (fit.interrupted) throw new TrainingInterrupted('lstm: stopped during training');
    const probabilities = await predictSequences(model, validationIds, sequenceLength);
    const thresholds = tuneThresholds(probabilities, validationLabels, options.thresholds);
    const metrics = evaluateMultiLabel({ probabilities, labels: validationLabels, thresholds });
    const dir = join(ctx.modelsDir, 'lstm');
    const seconds = (Date.now() - started) / 1000;
    await publish(ctx, () => saveOverviewClassifier(dir, {
      model,
      vectorizer,
      films: { scheme: 'validation', train: split.train.map((f) => f.id), heldOut: split.validation.map((f) => f.id), heldOutProbabilities: probabilities },
      metadata: {
        name: 'lstm',
        variant,
        thresholds,
        preprocessing: { sequenceLength, maxTokens },
        metrics: { validation: metrics, validationOovRate: coverage.oovRate },
        history: fit.history,
        training: {
          options, architecture: { ...architecture, pretrainedEmbeddings: undefined }, epochs, batchSize, learningRate, classWeights,
          thresholdStrategy: options.thresholds, bestEpoch: fit.bestEpoch, stoppedEarly: fit.stoppedEarly,
          trainFilms: split.train.length, validationFilms: split.validation.length, seconds,
        },
        ...runMetadata(ctx, ['@filmgenre/model-lstm', '@filmgenre/data-text', '@filmgenre/training-text', '@filmgenre/core']),
      },
    }));
    log(`[lstm] saved ${dir}: validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)} (thresholds tuned on it)`);
    return {
      key: 'lstm', variant, dir, heldOut: { ids: split.validation.map((f) => f.id), probabilities, labels: validationLabels },
      thresholds, history: fit.history, bestEpoch: fit.bestEpoch, seconds,
    };
  } finally {
    model.dispose();
  }
}

/** The text team's BiLSTM recipe (TEXT_RECIPES), under the key `lstm`. */
export const overviewRecipe: Recipe<typeof OverviewRecipeOptionsSchema> = {
  key: 'lstm',
  modality: 'text',
  summary: 'overview model (text team)',
  options: OverviewRecipeOptionsSchema,
  train: trainOverviewModel,
};
