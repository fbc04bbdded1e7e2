import * as tf from '@tensorflow/tfjs';
import { hashString } from '@filmgenre/core';
import { createSentenceHead, saveSentenceClassifier, SENTENCE_EMBEDDING_DIM, SentenceEncoder } from '@filmgenre/model-sentence-encoder';
import { crossFittedEvaluation } from '@filmgenre/metrics';
import {
  CommonOptionsSchema, createEpochBar, crossFitHeads, dataIdentity, ensembleHeads, labelMatrix, publish, runMetadata, TrainingInterrupted,
  type Recipe, type RecipeContext, type TrainedModel,
} from '@filmgenre/training';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * The text team's defaults for the sentence-encoder model, chosen by 5-fold cross-validation on the
 * development films (docs/benchmarks/encoders.md): an MLP of 512 with dropout 0.5 over the frozen
 * USE-lite embeddings (z-scored), unweighted loss, five bagged heads per fold, one shared threshold.
 */
export const SENTENCE_DEFAULTS = {
  epochs: 40, batchSize: 256, learningRate: 2e-3, patience: 4, classWeightStrength: 0, thresholds: 'shared' as const,
  hiddenUnits: 512, dropout: 0.5, bags: 5,
};

export const SentenceRecipeOptionsSchema = CommonOptionsSchema.extend({
  bags: z.int().min(1).max(10).default(SENTENCE_DEFAULTS.bags).describe('heads per fold, averaged'),
  hiddenUnits: z.int().min(1).max(4096).default(SENTENCE_DEFAULTS.hiddenUnits).describe('units of the head\'s hidden layer'),
  patience: z.int().nonnegative().default(SENTENCE_DEFAULTS.patience).describe('early stopping: epochs without validation-loss improvement'),
  classWeightStrength: z.number().min(0).max(1).default(SENTENCE_DEFAULTS.classWeightStrength).describe('positive-class weight = (neg/pos)^strength; 0 disables'),
  thresholds: CommonOptionsSchema.shape.thresholds.unwrap().default(SENTENCE_DEFAULTS.thresholds).describe('how the per-genre thresholds are tuned'),
});
export type SentenceRecipeOptions = z.output<typeof SentenceRecipeOptionsSchema>;

/**
 * A head over frozen Universal Sentence Encoder Lite embeddings of the overviews, cross-fitted over
 * the folds: every overview is embedded once (cached on disk by content), each fold's heads train on
 * the other folds, every film is predicted out of fold. The shipped model averages all heads, with a
 * copy of the encoder's files.
 */
async function trainSentenceModel(ctx: RecipeContext, options: SentenceRecipeOptions): Promise<TrainedModel> {
  const started = Date.now();
  const { log } = ctx;
  const encoder = await SentenceEncoder.load({ cacheDir: join(ctx.cacheDir, 'embeddings') });
  const heads: tf.LayersModel[] = [];
  let ensemble: tf.LayersModel | undefined;
  try {
    log(`[sentence] embedding ${ctx.films.length} overviews with ${encoder.info.source} on ${encoder.info.runtime} (${encoder.cachedRows} embeddings cached)`);
    const bar = createEpochBar('[sentence] embeddings', ctx.films.length, { metrics: false });
    const features = await encoder.embed(ctx.films.map((f) => f.overview), { signal: ctx.signal, onProgress: (done) => bar.update(done, {}) });
    bar.stop();
    if (ctx.signal.aborted) throw new TrainingInterrupted('sentence: stopped while embedding overviews');
    const labels = labelMatrix(ctx.films);
    const { epochs: _epochs, patience: _patience, ...identityOptions } = options;
    const cross = await crossFitHeads({
      name: 'sentence', features, dim: SENTENCE_EMBEDDING_DIM, labels, folds: ctx.folds.folds,
      createHead: (fold, bag) => createSentenceHead({
        hiddenUnits: options.hiddenUnits, dropout: options.dropout ?? SENTENCE_DEFAULTS.dropout, seed: hashString(`${ctx.seed}:sentence:${fold}:${bag}`), name: `sentence_head_f${fold}_b${bag}`,
      }),
      bags: options.bags, standardize: true,
      learningRate: options.learningRate ?? SENTENCE_DEFAULTS.learningRate, classWeightStrength: options.classWeightStrength,
      epochs: options.epochs ?? SENTENCE_DEFAULTS.epochs, batchSize: options.batchSize ?? SENTENCE_DEFAULTS.batchSize, patience: options.patience,
      seed: ctx.seed, checkpointDir: ctx.checkpointDir, resume: ctx.resume, rng: ctx.rng, signal: ctx.signal, log,
      identity: { recipe: 'sentence', options: identityOptions, split: ctx.folds.record, encoder: encoder.identity, ...dataIdentity(ctx.films, { overviews: ctx.films.map((f) => f.overview) }) },
    });
    heads.push(...cross.heads);
    const { report, thresholds } = crossFittedEvaluation(cross.outOfFold, labels, ctx.folds.folds, options.thresholds);
    const head = (ensemble = ensembleHeads(cross.heads, SENTENCE_EMBEDDING_DIM, 'sentence_heads'));
    const dir = join(ctx.modelsDir, 'sentence');
    const seconds = (Date.now() - started) / 1000;
    const ids = ctx.films.map((f) => f.id);
    await publish(ctx, () => saveSentenceClassifier(dir, {
      head,
      encoder,
      films: { scheme: 'out-of-fold', train: ids, heldOut: ids, heldOutProbabilities: cross.outOfFold },
      metadata: {
        name: 'sentence', variant: 'use-lite-mlp', thresholds, preprocessing: {}, encoderRuntime: encoder.info.runtime,
        metrics: { outOfFold: report }, history: cross.histories[0] ?? [],
        training: { options, heads: cross.heads.length, bags: options.bags, bestEpochs: cross.bestEpochs, thresholdStrategy: options.thresholds, films: ids.length, seconds },
        ...runMetadata(ctx, ['@filmgenre/model-sentence-encoder', '@filmgenre/data-text', '@filmgenre/training-text', '@filmgenre/core'], ctx.folds.record),
      },
    }));
    log(`[sentence] saved ${dir}: out-of-fold micro-F1 ${report.micro.f1.toFixed(3)}, macro-F1 ${report.macro.f1.toFixed(3)} (thresholds cross-fitted)`);
    return {
      key: 'sentence', variant: 'use-lite-mlp', dir, heldOut: { ids, probabilities: cross.outOfFold, labels },
      outOfSample: { scheme: 'out-of-fold', report }, thresholds, history: cross.histories[0] ?? [], seconds,
    };
  } finally {
    // The ensemble holds the heads as layers and disposes them with itself.
    if (ensemble) ensemble.dispose();
    else heads.forEach((h) => h.dispose());
    encoder.dispose();
  }
}

/** The text team's sentence-encoder recipe, registered in the trainer's list under the key `sentence`. */
export const sentenceRecipe: Recipe<typeof SentenceRecipeOptionsSchema> = {
  key: 'sentence',
  modality: 'text',
  summary: 'overview model over sentence embeddings (text team)',
  options: SentenceRecipeOptionsSchema,
  train: trainSentenceModel,
};
