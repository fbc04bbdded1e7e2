import { foldRows, NUM_GENRES, placeRows } from '@filmgenre/core';
import { crossFittedEvaluation } from '@filmgenre/metrics';
import { fitGenreLogistic, genreProbabilities, saveLexicalClassifier, TfidfVectorizer, type LexicalModel } from '@filmgenre/model-lexical';
import {
  CommonOptionsSchema, createEpochBar, labelMatrix, publish, runMetadata, TrainingInterrupted,
  type Recipe, type RecipeContext, type TrainedModel,
} from '@filmgenre/training';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * The text team's defaults for the lexical model, chosen by cross-validation on the trainer's folds
 * (docs/benchmarks/encoders.md): word 1-2-grams seen in at least 2 fitting overviews, raw term
 * counts, C = 8, one shared threshold. As a member of the stack it is worth more than its own score:
 * it errs on other films than the sentence model.
 */
export const LEXICAL_DEFAULTS = { maxNgram: 2, minDocuments: 2, sublinearTf: false, c: 8, thresholds: 'shared' as const };

/**
 * The common options are accepted like every recipe's (a run's `--patience 7` must not be refused
 * for it), but only `thresholds` applies: the regressions are convex fits to their optimum, with no
 * epochs, batches, learning rate, dropout or early stopping.
 */
export const LexicalRecipeOptionsSchema = CommonOptionsSchema.extend({
  maxNgram: z.int().min(1).max(3).default(LEXICAL_DEFAULTS.maxNgram).describe('longest n-gram of consecutive words'),
  minDocuments: z.int().positive().default(LEXICAL_DEFAULTS.minDocuments).describe('terms in fewer fitting overviews stay out of the vocabulary'),
  sublinearTf: z.boolean().default(LEXICAL_DEFAULTS.sublinearTf).describe('1 + log(count) instead of the count'),
  c: z.number().positive().max(1e6).default(LEXICAL_DEFAULTS.c).describe('inverse L2 strength of the per-genre logistic regressions'),
  thresholds: CommonOptionsSchema.shape.thresholds.unwrap().default(LEXICAL_DEFAULTS.thresholds).describe('how the per-genre thresholds are tuned'),
});
export type LexicalRecipeOptions = z.output<typeof LexicalRecipeOptionsSchema>;

/** Fits the vectorizer and the regressions on `texts` alone (labels: texts × genres). */
async function fitLexical(texts: readonly string[], labels: Float32Array, options: LexicalRecipeOptions, ctx: Pick<RecipeContext, 'signal'>, onGenre: () => void): Promise<LexicalModel> {
  const vectorizer = TfidfVectorizer.fit(texts, { maxNgram: options.maxNgram, minDocuments: options.minDocuments, sublinearTf: options.sublinearTf });
  const regression = await fitGenreLogistic(vectorizer.transform(texts), labels, NUM_GENRES, {
    c: options.c, signal: ctx.signal, onStop: () => new TrainingInterrupted('lexical: stopped while fitting the regressions'), onGenre,
  });
  return { vectorizer, regression };
}

/**
 * TF-IDF + logistic regression over the overviews, cross-fitted over the folds: for each fold the
 * vocabulary, idf and regressions are fitted on the other folds only, and predict it; the shipped
 * model is fitted on every film. No checkpoints: the whole recipe takes seconds.
 */
async function trainLexicalModel(ctx: RecipeContext, options: LexicalRecipeOptions): Promise<TrainedModel> {
  const started = Date.now();
  const { log, films } = ctx;
  const k = NUM_GENRES;
  const folds = ctx.folds.folds;
  const K = ctx.folds.k;
  const labels = labelMatrix(films);
  const outOfFold = new Float32Array(films.length * k);
  const bar = createEpochBar('[lexical] regressions', (K + 1) * k, { metrics: false });
  let fitted = 0;
  const onGenre = () => bar.update(++fitted, {});
  for (let fold = 0; fold < K; fold++) {
    const { scored, rest } = foldRows(folds, fold);
    if (scored.length === 0) continue;
    const model = await fitLexical(rest.map((i) => films[i]!.overview), labelMatrix(rest.map((i) => films[i]!)), options, ctx, onGenre);
    const predicted = genreProbabilities(model.regression, model.vectorizer.transform(scored.map((i) => films[i]!.overview)));
    placeRows(outOfFold, k, scored, predicted);
  }
  const model = await fitLexical(films.map((f) => f.overview), labels, options, ctx, onGenre);
  bar.stop();
  const { report, thresholds } = crossFittedEvaluation(outOfFold, labels, folds, options.thresholds);
  const dir = join(ctx.modelsDir, 'lexical');
  const ids = films.map((f) => f.id);
  const seconds = (Date.now() - started) / 1000;
  await publish(ctx, () => saveLexicalClassifier(dir, {
    model,
    films: { scheme: 'out-of-fold', train: ids, heldOut: ids, heldOutProbabilities: outOfFold },
    metadata: {
      name: 'lexical', variant: 'tfidf-logistic', thresholds, preprocessing: {},
      metrics: { outOfFold: report }, history: [],
      training: { options, terms: model.vectorizer.dim, thresholdStrategy: options.thresholds, films: ids.length, seconds },
      ...runMetadata(ctx, ['@filmgenre/model-lexical', '@filmgenre/data-text', '@filmgenre/training-text', '@filmgenre/core'], ctx.folds.record),
    },
  }));
  log(`[lexical] saved ${dir} (${model.vectorizer.dim} terms): out-of-fold micro-F1 ${report.micro.f1.toFixed(3)}, macro-F1 ${report.macro.f1.toFixed(3)} (thresholds cross-fitted)`);
  return {
    key: 'lexical', variant: 'tfidf-logistic', dir, heldOut: { ids, probabilities: outOfFold, labels },
    outOfSample: { scheme: 'out-of-fold', report }, thresholds, history: [], seconds,
  };
}

/** The text team's lexical recipe (TEXT_RECIPES), under the key `lexical`. */
export const lexicalRecipe: Recipe<typeof LexicalRecipeOptionsSchema> = {
  key: 'lexical',
  modality: 'text',
  summary: 'overview model over TF-IDF word n-grams with logistic regressions (text team)',
  options: LexicalRecipeOptionsSchema,
  tunable: false,
  train: trainLexicalModel,
};
