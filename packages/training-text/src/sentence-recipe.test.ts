import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openModelDir } from '@filmgenre/model-artifact';
import { loadSentenceClassifier, SentenceEncoder } from '@filmgenre/model-sentence-encoder';
import { recipeContext } from '@filmgenre/training/testing';
import { sentenceRecipe, SentenceRecipeOptionsSchema } from './sentence-recipe.js';

const work = mkdtempSync(join(tmpdir(), 'training-text-sentence-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('sentenceRecipe on 200 real films', () => {
  it('cross-fits heads over sentence embeddings; the shipped model embeds an overview exactly as training did', async () => {
    const ctx = await recipeContext({ workDir: work, key: 'sentence', limit: 200 });
    const trained = await sentenceRecipe.train(ctx, SentenceRecipeOptionsSchema.parse({ epochs: 3, batchSize: 32, bags: 1 }));
    const artifact = openModelDir(trained.dir);
    expect(artifact.metadata).toMatchObject({ name: 'sentence', kind: 'sentence-classifier', modality: 'text', split: ctx.folds.record });
    expect(Object.keys(artifact.metadata.files)).toEqual(expect.arrayContaining(['encoder/model.json', 'encoder/vocab.json', 'model.json', 'films.json']));
    expect(artifact.films().heldOut).toEqual(ctx.films.map((f) => f.id));
    expect(trained.outOfSample?.report.films).toBe(200);

    const classifier = await loadSentenceClassifier(trained.dir);
    const overviews = ctx.films.slice(0, 5).map((f) => f.overview);
    const served = await classifier.predictWithFeatures(overviews);
    const encoder = await SentenceEncoder.load({ cacheDir: join(ctx.cacheDir, 'embeddings') });
    const trainedOn = await encoder.embed(overviews);
    // The metadata says which runtime computed the embeddings the heads trained on.
    expect(artifact.metadata.encoderRuntime).toBe(encoder.info.runtime);
    expect(artifact.metadata.preprocessing).toMatchObject({ encoder: { runtime: encoder.info.runtime } });
    encoder.dispose();
    expect(served.featureDim).toBe(512);
    Array.from(served.features).forEach((v, i) => expect(v).toBeCloseTo(trainedOn[i]!, 5));
    expect(Array.from(served.probabilities).every((p) => p > 0 && p < 1)).toBe(true);
    classifier.dispose();
  }, 600_000);
});
