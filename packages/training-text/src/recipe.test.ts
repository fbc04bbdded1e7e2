import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openModelDir } from '@filmgenre/model-artifact';
import { loadOverviewClassifier } from '@filmgenre/model-lstm';
import { TrainingInterrupted } from '@filmgenre/training';
import { recipeContext } from '@filmgenre/training/testing';
import { overviewRecipe, OverviewRecipeOptionsSchema } from './recipe.js';

const work = mkdtempSync(join(tmpdir(), 'training-text-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('overviewRecipe on 250 real films', () => {
  it('trains the BiLSTM, publishes a verified directory whose model predicts what training recorded', async () => {
    const ctx = await recipeContext({ workDir: work, key: 'lstm', limit: 250 });
    const trained = await overviewRecipe.train(ctx, OverviewRecipeOptionsSchema.parse({ epochs: 3, batchSize: 32 }));
    expect(trained.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(trained.history.at(-1)!.loss).toBeLessThan(trained.history[0]!.loss);
    const artifact = openModelDir(trained.dir);
    expect(artifact.metadata).toMatchObject({ name: 'lstm', kind: 'overview-classifier', variant: 'bilstm', split: ctx.split.record, preprocessing: { sequenceLength: 100 } });
    const films = artifact.films();
    expect(films.heldOut).toEqual(ctx.split.validation.map((f) => f.id));
    // Serving's path (raw overview → vocabulary → model) reproduces what training recorded.
    const classifier = await loadOverviewClassifier(trained.dir);
    const probabilities = await classifier.predict(ctx.split.validation.map((f) => f.overview));
    Array.from(probabilities).forEach((p, i) => expect(p).toBeCloseTo(films.heldOutProbabilities[i]!, 5));
    classifier.dispose();
  }, 300_000);

  it('publishes nothing when stopped', async () => {
    const controller = new AbortController();
    controller.abort();
    const dir = join(work, 'stopped');
    const ctx = await recipeContext({ workDir: dir, key: 'lstm', limit: 80, signal: controller.signal });
    await expect(overviewRecipe.train(ctx, OverviewRecipeOptionsSchema.parse({ epochs: 2 }))).rejects.toThrow(TrainingInterrupted);
    expect(existsSync(join(dir, 'models')) ? readdirSync(join(dir, 'models')).filter((n) => !n.startsWith('.')) : []).toEqual([]);
  }, 300_000);
});
