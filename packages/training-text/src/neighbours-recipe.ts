import { foldRows, NUM_GENRES, placeRows } from '@filmgenre/core';
import { crossFittedEvaluation } from '@filmgenre/metrics';
import { neighbourIndex, neighbourVotes, saveSentenceNeighbours, SENTENCE_EMBEDDING_DIM, SentenceEncoder } from '@filmgenre/model-sentence-encoder';
import {
  CommonOptionsSchema, createEpochBar, labelMatrix, pickRows, publish, runMetadata, TrainingInterrupted,
  type Recipe, type RecipeContext, type TrainedModel,
} from '@filmgenre/training';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * The text team's defaults for the neighbours model (docs/benchmarks/encoders.md): the 100 most
 * similar training overviews vote, weighted by exp((s − s_nearest) / 0.05), with one pseudo-vote of
 * the genres' base rates. Alone it is below the sentence model's heads; in the stack it adds what a
 * head smooths away: the genres of the few overviews that are nearly the same story.
 */
export const NEIGHBOURS_DEFAULTS = { k: 100, temperature: 0.05, priorWeight: 1, thresholds: 'shared' as const };

/** The common options are accepted like every recipe's; only `thresholds` applies (nothing is trained by epochs). */
export const NeighboursRecipeOptionsSchema = CommonOptionsSchema.extend({
  k: z.int().positive().max(5000).default(NEIGHBOURS_DEFAULTS.k).describe('how many of the most similar training overviews vote'),
  temperature: z.number().positive().max(10).default(NEIGHBOURS_DEFAULTS.temperature).describe('softness of the votes: weight exp((similarity − the nearest\'s) / temperature)'),
  priorWeight: z.number().min(0).max(1000).default(NEIGHBOURS_DEFAULTS.priorWeight).describe('pseudo-votes for the genres\' base rates (the nearest film weighs 1)'),
  thresholds: CommonOptionsSchema.shape.thresholds.unwrap().default(NEIGHBOURS_DEFAULTS.thresholds).describe('how the per-genre thresholds are tuned'),
});
export type NeighboursRecipeOptions = z.output<typeof NeighboursRecipeOptionsSchema>;

/**
 * Votes of the nearest training overviews in USE-lite space, cross-fitted over the folds: each fold
 * is voted on by the films of the other folds only; the shipped index holds every film. The
 * embeddings are the sentence model's (the same encoder and cache), so after it this costs seconds.
 */
async function trainNeighboursModel(ctx: RecipeContext, options: NeighboursRecipeOptions): Promise<TrainedModel> {
  const started = Date.now();
  const { log, films } = ctx;
  const k = NUM_GENRES;
  const dim = SENTENCE_EMBEDDING_DIM;
  const settings = { k: options.k, temperature: options.temperature, priorWeight: options.priorWeight };
  const encoder = await SentenceEncoder.load({ cacheDir: join(ctx.cacheDir, 'embeddings') });
  try {
    log(`[neighbours] embedding ${films.length} overviews with ${encoder.info.source} on ${encoder.info.runtime} (${encoder.cachedRows} embeddings cached)`);
    const bar = createEpochBar('[neighbours] embeddings', films.length, { metrics: false });
    const embeddings = await encoder.embed(films.map((f) => f.overview), { signal: ctx.signal, onProgress: (done) => bar.update(done, {}) });
    bar.stop();
    if (ctx.signal.aborted) throw new TrainingInterrupted('neighbours: stopped while embedding overviews');
    const labels = labelMatrix(films);
    const folds = ctx.folds.folds;
    const outOfFold = new Float32Array(films.length * k);
    for (let fold = 0; fold < ctx.folds.k; fold++) {
      if (ctx.signal.aborted) throw new TrainingInterrupted('neighbours: stopped while voting');
      const { scored, rest } = foldRows(folds, fold);
      if (scored.length === 0 || rest.length === 0) continue;
      const index = neighbourIndex(pickRows(embeddings, dim, rest), pickRows(labels, k, rest), dim, k);
      const votes = await neighbourVotes(index, pickRows(embeddings, dim, scored), settings);
      placeRows(outOfFold, k, scored, votes);
    }
    const { report, thresholds } = crossFittedEvaluation(outOfFold, labels, folds, options.thresholds);
    const ids = films.map((f) => f.id);
    const dir = join(ctx.modelsDir, 'neighbours');
    const seconds = (Date.now() - started) / 1000;
    await publish(ctx, () => saveSentenceNeighbours(dir, {
      index: neighbourIndex(embeddings, labels, dim, k), settings, encoder,
      films: { scheme: 'out-of-fold', train: ids, heldOut: ids, heldOutProbabilities: outOfFold },
      metadata: {
        name: 'neighbours', variant: 'use-lite-knn', thresholds, preprocessing: {}, encoderRuntime: encoder.info.runtime,
        metrics: { outOfFold: report }, history: [],
        training: { options, thresholdStrategy: options.thresholds, films: ids.length, seconds },
        ...runMetadata(ctx, ['@filmgenre/model-sentence-encoder', '@filmgenre/data-text', '@filmgenre/training-text', '@filmgenre/core'], ctx.folds.record),
      },
    }));
    log(`[neighbours] saved ${dir} (${ids.length} films indexed): out-of-fold micro-F1 ${report.micro.f1.toFixed(3)}, macro-F1 ${report.macro.f1.toFixed(3)} (thresholds cross-fitted)`);
    return {
      key: 'neighbours', variant: 'use-lite-knn', dir, heldOut: { ids, probabilities: outOfFold, labels },
      outOfSample: { scheme: 'out-of-fold', report }, thresholds, history: [], seconds,
    };
  } finally {
    encoder.dispose();
  }
}

/** The text team's neighbours recipe, registered in the trainer's list under the key `neighbours`. */
export const neighboursRecipe: Recipe<typeof NeighboursRecipeOptionsSchema> = {
  key: 'neighbours',
  modality: 'text',
  summary: 'overview model: votes of the most similar training overviews in sentence-embedding space (text team)',
  options: NeighboursRecipeOptionsSchema,
  // tune searches a network's learning rate, dropout and class weights; this model has none.
  tunable: false,
  train: trainNeighboursModel,
};
