import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPosterSet } from '@filmgenre/data-images';
import { openModelDir } from '@filmgenre/model-artifact';
import { loadPosterClassifier } from '@filmgenre/model-cnn';
import { recipeContext } from '@filmgenre/training/testing';
import { posterRecipe, PosterRecipeOptionsSchema } from './recipe.js';

const work = mkdtempSync(join(tmpdir(), 'training-image-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('posterRecipe on 150 real films', () => {
  it('trains the pretrained-feature head, publishes a verified directory whose model predicts what training recorded', async () => {
    const ctx = await recipeContext({ workDir: work, key: 'cnn', limit: 150 });
    const options = PosterRecipeOptionsSchema.parse({ epochs: 4, batchSize: 16 });
    const trained = await posterRecipe.train(ctx, options);
    expect(trained.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    expect(trained.history.at(-1)!.loss).toBeLessThan(trained.history[0]!.loss);

    const artifact = openModelDir(trained.dir);
    expect(artifact.metadata).toMatchObject({ name: 'cnn', kind: 'poster-classifier', variant: 'pretrained', split: ctx.split.record });
    // Only the augmentation that really applies to frozen features is recorded.
    expect(artifact.metadata.training['augmentation']).toEqual({ mirroredView: 0.5 });
    const films = artifact.films();
    expect(films.heldOut).toEqual(ctx.split.validation.map((f) => f.id));
    expect(films.train).toHaveLength(ctx.split.train.length);

    // Serving's path (decode → classifier) reproduces the predictions training recorded for the held-out films.
    const classifier = await loadPosterClassifier(trained.dir);
    const set = await loadPosterSet(ctx.split.validation, { size: classifier.imageSize, cacheDir: join(ctx.cacheDir, 'posters') });
    const per = classifier.imageSize ** 2 * 3;
    const probabilities = await classifier.predict(set.ids.map((_, i) => set.pixels.subarray(i * per, (i + 1) * per)));
    Array.from(probabilities).forEach((p, i) => expect(p).toBeCloseTo(films.heldOutProbabilities[i]!, 5));
    classifier.dispose();
  }, 300_000);

  it('publishes nothing when stopped', async () => {
    const controller = new AbortController();
    controller.abort();
    const dir = join(work, 'stopped');
    const ctx = await recipeContext({ workDir: dir, key: 'cnn', limit: 60, signal: controller.signal, cacheDir: join(work, 'cache') });
    // Stopped while decoding posters (an AbortError) or later (TrainingInterrupted): either way, nothing is written.
    await expect(posterRecipe.train(ctx, PosterRecipeOptionsSchema.parse({ epochs: 2 }))).rejects.toThrow(/abort|stopped/i);
    expect(existsSync(join(dir, 'models')) ? readdirSync(join(dir, 'models')).filter((n) => !n.startsWith('.')) : []).toEqual([]);
  }, 300_000);
});
