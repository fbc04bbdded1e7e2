import * as tf from '@tensorflow/tfjs';
import { GENRES, holdoutSplit, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { TextVectorizer } from '@filmgenre/data-text';
import { artifactDigest, openModelDir, readModelMetadata } from '@filmgenre/model-artifact';
import { fixtureMetadata } from '@filmgenre/model-artifact/testing';
import { createPosterCnn, posterPreprocessing, savePosterClassifier } from '@filmgenre/model-cnn';
import { createOverviewModel, saveOverviewClassifier } from '@filmgenre/model-lstm';
import { loadModel, openModelsDir, predictFilms, type MemberClassifier } from '@filmgenre/model-registry';
import { recipeContext, stopBoundMs } from '@filmgenre/training/testing';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossFitFusion, fusionRecipe, FusionRecipeOptionsSchema } from './recipe.js';
import { crossFittedEvaluation } from '@filmgenre/metrics';
import { TrainingInterrupted, type RecipeContext } from '@filmgenre/training';

const work = mkdtempSync(join(tmpdir(), 'training-fusion-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let ctx: RecipeContext;

/**
 * Small untrained members saved as the recipes would: each with the run's split and its predictions
 * for the validation films (what late fusion is fitted on). `splitOf` lets a test give one another split.
 */
async function writeMembers(modelsDir: string, splitOf: (key: string) => RecipeContext['split']['record'] = () => ctx.split.record, posterSeed = 1): Promise<void> {
  const posterDir = join(modelsDir, 'cnn');
  const textDir = join(modelsDir, 'lstm');
  const thresholds = GENRES.map(() => 0.3);
  const empty = { scheme: 'validation' as const, train: [], heldOut: [], heldOutProbabilities: new Float32Array(0) };
  const cnn = createPosterCnn({ variant: 'study', imageSize: 16, filters: [4, 4, 4], denseUnits: 8, seed: posterSeed });
  await savePosterClassifier(posterDir, { model: cnn, films: empty, metadata: fixtureMetadata({ name: 'cnn', variant: 'study', thresholds, split: splitOf('cnn'), preprocessing: { ...posterPreprocessing(16) } }) });
  const vectorizer = new TextVectorizer({ maxTokens: 500, sequenceLength: 16 }).adapt(ctx.split.train.map((f) => f.overview));
  const lstm = createOverviewModel({ vocabularySize: vectorizer.vocabularySize, sequenceLength: 16, embeddingDim: 8, lstmUnits: [4] });
  await saveOverviewClassifier(textDir, { model: lstm, vectorizer, films: empty, metadata: fixtureMetadata({ name: 'lstm', variant: 'bilstm', thresholds, split: splitOf('lstm') }) });
  tf.dispose([cnn, lstm] as unknown as tf.Tensor[]);
  // Their held-out predictions, written back the way a recipe records them.
  for (const [key, dir] of [['cnn', posterDir], ['lstm', textDir]] as const) {
    const model = (await loadModel(dir)) as MemberClassifier;
    const { ids, output } = await predictFilms(model, ctx.split.validation, { cacheDir: ctx.cacheDir });
    const films = { scheme: 'validation' as const, train: ctx.split.train.map((f) => f.id), heldOut: ids, heldOutProbabilities: output.probabilities };
    const meta = readModelMetadata(dir);
    if (key === 'cnn') await savePosterClassifier(dir, { model: (await tf.loadLayersModel(tf.io.fromMemory(openModelDir(dir).modelArtifacts()))), films, metadata: meta });
    else await saveOverviewClassifier(dir, { model: (await tf.loadLayersModel(tf.io.fromMemory(openModelDir(dir).modelArtifacts()))), vectorizer, films, metadata: meta });
    model.dispose();
  }
}

beforeAll(async () => {
  ctx = await recipeContext({ workDir: work, key: 'fusion', limit: 320 });
});

describe('fusionRecipe', () => {
  it('chooses stacked or late fusion by cross-validation on the members\' held-out predictions, and pins the members it was fitted on', async () => {
    await writeMembers(ctx.modelsDir);
    const trained = await fusionRecipe.train(ctx, FusionRecipeOptionsSchema.parse({ members: 'cnn,lstm' }));
    const fusion = readModelMetadata(trained.dir);
    // The members were trained on fold 0's complement: the fusion is fitted and scored inside fold 0.
    expect(fusion).toMatchObject({ name: 'fusion', kind: 'fusion', split: ctx.split.record });
    const candidates = fusion.metrics['candidates'] as Record<string, { microF1: number }>;
    expect(Object.keys(candidates).sort()).toEqual(['late', 'stacked']);
    expect(candidates[fusion.variant]!.microF1).toBe(Math.max(...Object.values(candidates).map((c) => c.microF1)));
    for (const key of ['cnn', 'lstm']) expect(fusion.members?.[key]?.digest).toBe(artifactDigest(readModelMetadata(join(ctx.modelsDir, key))));
    expect(trained.heldOut.ids).toEqual(ctx.split.validation.map((f) => f.id));
    // The whole directory loads and warms up as serving loads it.
    const loaded = await openModelsDir(ctx.modelsDir);
    expect(Object.keys(loaded.members).sort()).toEqual(['cnn', 'lstm']);
    expect(loaded.fusion?.members).toEqual(['cnn', 'lstm']);
    loaded.dispose();
  }, 300_000);

  it('scores exactly what crossFitFusion gives on the members\' saved out-of-fold predictions and the run\'s folds: only the members move a fusion\'s numbers', async () => {
    // Cross-fitted members as the default run leaves them (a prediction for every film, out of fold).
    const dir = join(work, 'refit');
    const run = await recipeContext({ workDir: dir, key: 'fusion', limit: 320 });
    let s = 11;
    const noise = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const ids = run.films.map((f) => f.id);
    const outOfFold = (signal: number) => Float32Array.from(run.films.flatMap((f) => Array.from(f.labels, (y) => 0.02 + signal * y + 0.5 * noise())));
    const members = { cnn: outOfFold(0.3), lstm: outOfFold(0.4) };
    const films = (p: Float32Array) => ({ scheme: 'out-of-fold' as const, train: ids, heldOut: ids, heldOutProbabilities: p });
    const cnn = createPosterCnn({ variant: 'study', imageSize: 16, filters: [2, 2, 2], denseUnits: 4, seed: 1 });
    await savePosterClassifier(join(run.modelsDir, 'cnn'), { model: cnn, films: films(members.cnn), metadata: fixtureMetadata({ name: 'cnn', variant: 'study', split: run.folds.record, preprocessing: { ...posterPreprocessing(16) } }) });
    const vectorizer = new TextVectorizer({ maxTokens: 100, sequenceLength: 8 }).adapt(run.films.slice(0, 50).map((f) => f.overview));
    const lstm = createOverviewModel({ vocabularySize: vectorizer.vocabularySize, sequenceLength: 8, embeddingDim: 4, lstmUnits: [2] });
    await saveOverviewClassifier(join(run.modelsDir, 'lstm'), { model: lstm, vectorizer, films: films(members.lstm), metadata: fixtureMetadata({ name: 'lstm', variant: 'bilstm', split: run.folds.record }) });
    tf.dispose([cnn, lstm] as unknown as tf.Tensor[]);

    const options = FusionRecipeOptionsSchema.parse({ members: 'cnn,lstm', kind: 'stacked' });
    const trained = await fusionRecipe.train(run, options);
    const labels = Float32Array.from(run.films.flatMap((f) => Array.from(f.labels)));
    const refit = await crossFitFusion('stacked', options, members, labels, run.folds.folds);
    expect(Array.from(trained.heldOut.probabilities)).toEqual(Array.from(refit));
    const { report } = crossFittedEvaluation(refit, labels, run.folds.folds, options.thresholds);
    expect(trained.outOfSample?.report.micro.f1).toBe(report.micro.f1);
    expect(trained.outOfSample?.report.macro.f1).toBe(report.macro.f1);
  }, 300_000);

  it('trains the joint gated unit over the members\' features', async () => {
    const trained = await fusionRecipe.train(ctx, FusionRecipeOptionsSchema.parse({ kind: 'joint', members: 'cnn,lstm', epochs: 2 }));
    expect(trained.variant).toBe('joint');
    expect(trained.history).toHaveLength(2);
    expect(readModelMetadata(trained.dir).preprocessing).toMatchObject({ kind: 'joint', featureMembers: ['cnn', 'lstm'], featureDim: 16 });
  }, 300_000);

  it('refuses members trained on another split', async () => {
    const other = join(work, 'other-split');
    const otherSplit = holdoutSplit(ctx.films, { seed: 9 }).record;
    await writeMembers(other, (key) => (key === 'lstm' ? otherSplit : ctx.split.record));
    await expect(fusionRecipe.train({ ...ctx, modelsDir: other }, FusionRecipeOptionsSchema.parse({ members: 'cnn,lstm' })))
      .rejects.toThrow(/fusion: member lstm .* was trained on another split than this run: seed 9 instead of 0/);
  }, 300_000);

  it('stops within 2 s of a stop request while cross-validating a fusion of every film (it blocked for tens of seconds)', async () => {
    const films = readDataset(resolveDatasetDir()).films;
    const controller = new AbortController();
    const big = await recipeContext({ workDir: join(work, 'every-film'), key: 'fusion', limit: films.length, films, signal: controller.signal });
    // Cross-fitted members as the default run leaves them: a prediction for every film, out of fold.
    let s = 3;
    const noise = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const ids = films.map((f) => f.id);
    const outOfFold = () => Float32Array.from(films.flatMap((f) => Array.from(f.labels, (y) => 0.02 + 0.3 * y + 0.6 * noise())));
    const films_ = (probabilities: Float32Array) => ({ scheme: 'out-of-fold' as const, train: ids, heldOut: ids, heldOutProbabilities: probabilities });
    const cnn = createPosterCnn({ variant: 'study', imageSize: 16, filters: [2, 2, 2], denseUnits: 4, seed: 1 });
    await savePosterClassifier(join(big.modelsDir, 'cnn'), { model: cnn, films: films_(outOfFold()), metadata: fixtureMetadata({ name: 'cnn', variant: 'study', split: big.folds.record, preprocessing: { ...posterPreprocessing(16) } }) });
    const vectorizer = new TextVectorizer({ maxTokens: 100, sequenceLength: 8 }).adapt(films.slice(0, 50).map((f) => f.overview));
    const lstm = createOverviewModel({ vocabularySize: vectorizer.vocabularySize, sequenceLength: 8, embeddingDim: 4, lstmUnits: [2] });
    await saveOverviewClassifier(join(big.modelsDir, 'lstm'), { model: lstm, vectorizer, films: films_(outOfFold()), metadata: fixtureMetadata({ name: 'lstm', variant: 'bilstm', split: big.folds.record }) });
    tf.dispose([cnn, lstm] as unknown as tf.Tensor[]);

    // A timer stands for the signal: it fires only when the fusion lets the event loop run.
    const due = Date.now() + 1500;
    setTimeout(() => controller.abort(new Error('stopped: test')), 1500);
    await expect(fusionRecipe.train(big, FusionRecipeOptionsSchema.parse({ members: 'cnn,lstm' }))).rejects.toThrow(TrainingInterrupted);
    expect(Date.now() - due).toBeLessThan(stopBoundMs());
    expect(existsSync(join(big.modelsDir, 'fusion'))).toBe(false);
  }, 300_000);

  it('leaves out, at load, a fusion whose member was retrained after it, naming why', async () => {
    await writeMembers(ctx.modelsDir, undefined, 2);
    await expect(openModelsDir(ctx.modelsDir, { requireAll: true })).rejects.toThrow(/fusion was fitted on cnn .* but .*cnn is .*: refit the fusion/);
  }, 300_000);
});
