import { saveSentenceClassifier, SENTENCE_EMBEDDING_DIM, SentenceEncoder } from '@filmgenre/model-sentence-encoder';
import {
  CommonOptionsSchema, createEpochBar, dataIdentity, FROZEN_HEAD_DEFAULTS, frozenHeadSettings, labelMatrix, runMetadata, trainFrozenFeatureModel, TrainingInterrupted,
  type Recipe, type RecipeContext, type TrainedModel,
} from '@filmgenre/training';
import { join } from 'node:path';
import { z } from 'zod';

export const SentenceRecipeOptionsSchema = CommonOptionsSchema.extend({
  bags: z.int().min(1).max(10).default(FROZEN_HEAD_DEFAULTS.bags).describe('heads per fold, averaged'),
  hiddenUnits: z.int().min(1).max(4096).default(FROZEN_HEAD_DEFAULTS.hiddenUnits).describe('units of the head\'s hidden layer'),
  patience: z.int().nonnegative().default(FROZEN_HEAD_DEFAULTS.patience).describe('early stopping: epochs without validation-loss improvement'),
  classWeightStrength: z.number().min(0).max(1).default(FROZEN_HEAD_DEFAULTS.classWeightStrength).describe('positive-class weight = (neg/pos)^strength; 0 disables'),
  thresholds: CommonOptionsSchema.shape.thresholds.unwrap().default(FROZEN_HEAD_DEFAULTS.thresholds).describe('how the per-genre thresholds are tuned'),
});
export type SentenceRecipeOptions = z.output<typeof SentenceRecipeOptionsSchema>;

/**
 * A head over frozen Universal Sentence Encoder Lite embeddings of the overviews, cross-fitted by
 * training's frozen-feature recipe (its defaults: FROZEN_HEAD_DEFAULTS): every overview is embedded
 * once (cached on disk by content). The shipped model averages all heads, with a copy of the encoder's files.
 */
async function trainSentenceModel(ctx: RecipeContext, options: SentenceRecipeOptions): Promise<TrainedModel> {
  const started = Date.now();
  const { log } = ctx;
  const encoder = await SentenceEncoder.load({ cacheDir: join(ctx.cacheDir, 'embeddings') });
  try {
    log(`[sentence] embedding ${ctx.films.length} overviews with ${encoder.info.source} on ${encoder.info.runtime} (${encoder.cachedRows} embeddings cached)`);
    const bar = createEpochBar('[sentence] embeddings', ctx.films.length, { metrics: false });
    const features = await encoder.embed(ctx.films.map((f) => f.overview), { signal: ctx.signal, onProgress: (done) => bar.update(done, {}) });
    bar.stop();
    if (ctx.signal.aborted) throw new TrainingInterrupted('sentence: stopped while embedding overviews');
    const settings = frozenHeadSettings(options);
    const ids = ctx.films.map((f) => f.id);
    const { epochs: _epochs, patience: _patience, ...identityOptions } = options;
    return await trainFrozenFeatureModel(ctx, {
      key: 'sentence', variant: 'use-lite-mlp', features, dim: SENTENCE_EMBEDDING_DIM, ids, labels: labelMatrix(ctx.films), folds: ctx.folds.folds, settings, started,
      identity: { recipe: 'sentence', options: identityOptions, split: ctx.folds.record, encoder: encoder.identity, ...dataIdentity(ctx.films, { overviews: ctx.films.map((f) => f.overview) }) },
      save: (dir, trained) => saveSentenceClassifier(dir, {
        head: trained.model,
        encoder,
        films: { scheme: 'out-of-fold', train: ids, heldOut: ids, heldOutProbabilities: trained.outOfFold },
        metadata: {
          name: 'sentence', variant: 'use-lite-mlp', thresholds: trained.thresholds, preprocessing: {}, encoderRuntime: encoder.info.runtime,
          metrics: { outOfFold: trained.report }, history: trained.histories[0] ?? [],
          training: { options, heads: trained.heads, bags: options.bags, bestEpochs: trained.bestEpochs, thresholdStrategy: options.thresholds, films: ids.length, seconds: trained.seconds },
          ...runMetadata(ctx, ['@filmgenre/model-sentence-encoder', '@filmgenre/data-text', '@filmgenre/training-text', '@filmgenre/core'], ctx.folds.record),
        },
      }),
    });
  } finally {
    encoder.dispose();
  }
}

/** The text team's sentence-encoder recipe (TEXT_RECIPES), under the key `sentence`. */
export const sentenceRecipe: Recipe<typeof SentenceRecipeOptionsSchema> = {
  key: 'sentence',
  modality: 'text',
  summary: 'overview model over sentence embeddings (text team)',
  options: SentenceRecipeOptionsSchema,
  train: trainSentenceModel,
};
