import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodePoster } from '@filmgenre/data-images';
import { openModelDir } from '@filmgenre/model-artifact';
import { extractPosterFeatures, loadPosterClassifier, PosterFeatureExtractor } from '@filmgenre/model-cnn';
import { recipeContext } from '@filmgenre/training/testing';
import { IMAGE_RECIPES, inceptionRecipe, InceptionRecipeOptionsSchema, POSTER_FEATURES, posterRecipe, PosterRecipeOptionsSchema } from './recipe.js';

const work = mkdtempSync(join(tmpdir(), 'training-image-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('posterRecipe on real films', () => {
  it('pretrained: cross-fits heads over frozen features, ships their ensemble, and serving sees the features training saw', async () => {
    const ctx = await recipeContext({ workDir: work, key: 'cnn', limit: 150 });
    const trained = await posterRecipe.train(ctx, PosterRecipeOptionsSchema.parse({ epochs: 3, batchSize: 32, bags: 1 }));
    const artifact = openModelDir(trained.dir);
    expect(artifact.metadata).toMatchObject({ name: 'cnn', kind: 'poster-classifier', variant: 'pretrained', split: { ...ctx.folds.record, validationFold: null } });
    expect(artifact.metadata.preprocessing).toMatchObject({ inputWidth: 128, inputHeight: 256, featureExtractor: { trunk: 'mobilenet_v2', nodes: ['block_10_expand_relu', 'block_10'] } });
    expect(artifact.metadata.training).toMatchObject({ heads: 5, augmentation: false });
    // Every film is predicted out of fold, by heads that did not train on it.
    const films = artifact.films();
    expect(films.scheme).toBe('out-of-fold');
    expect(films.heldOut).toEqual(ctx.films.map((f) => f.id));
    expect(trained.outOfSample?.report.films).toBe(150);
    expect(Array.from(films.heldOutProbabilities).every((p) => p > 0 && p < 1)).toBe(true);

    // Serving's path (uploaded bytes → decode → classifier) sees exactly the features training computed.
    const classifier = await loadPosterClassifier(trained.dir);
    const sample = ctx.films.slice(0, 4);
    const posters = await Promise.all(sample.map(async (f) => decodePoster(readFileSync(f.posterPath), { width: 128, height: 256 })));
    const served = await classifier.predictWithFeatures(posters);
    const extractor = await PosterFeatureExtractor.create(POSTER_FEATURES['mobilenet-v2-block10']!);
    const trainedOn = await extractPosterFeatures(extractor, sample.map((f) => f.posterPath), { cacheDir: join(ctx.cacheDir, 'features') });
    // Which runtime computed the features the heads trained on ($FILMGENRE_ENCODER_RUNTIME, else onnxruntime where it loads).
    expect(artifact.metadata.encoderRuntime).toBe(extractor.runtime);
    extractor.dispose();
    expect(served.featureDim).toBe(960);
    Array.from(served.features).forEach((v, i) => expect(v).toBeCloseTo(trainedOn[i]!, 4));
    expect(Array.from(served.probabilities).every((p) => p > 0 && p < 1)).toBe(true);
    classifier.dispose();
  }, 600_000);

  it('inception: the second poster member, a head over InceptionV3 features under its own key and seeds', async () => {
    const dir = join(work, 'inception');
    const ctx = await recipeContext({ workDir: dir, key: 'inception', limit: 60, cacheDir: join(work, 'cache') });
    const trained = await inceptionRecipe.train(ctx, InceptionRecipeOptionsSchema.parse({ epochs: 2, batchSize: 32, bags: 1 }));
    expect(trained.key).toBe('inception');
    expect(trained.dir).toBe(join(ctx.modelsDir, 'inception'));
    const artifact = openModelDir(trained.dir);
    expect(artifact.metadata).toMatchObject({ name: 'inception', kind: 'poster-classifier', modality: 'image', variant: 'pretrained' });
    expect(artifact.metadata.training).toMatchObject({ features: 'inception-v3-mixed2-mixed5', heads: 5 });
    expect(artifact.metadata.preprocessing).toMatchObject({ inputWidth: 128, inputHeight: 256, featureExtractor: { trunk: 'inception_v3', nodes: ['mixed2', 'mixed5'], pooling: ['mean'] } });
    const classifier = await loadPosterClassifier(trained.dir);
    const posters = await Promise.all(ctx.films.slice(0, 2).map(async (f) => decodePoster(readFileSync(f.posterPath), { width: 128, height: 256 })));
    const served = await classifier.predictWithFeatures(posters);
    // mixed2 (288 channels) and mixed5 (768), mean-pooled.
    expect(served.featureDim).toBe(288 + 768);
    expect(Array.from(served.probabilities).every((p) => p > 0 && p < 1)).toBe(true);
    classifier.dispose();
    // The trainer registers the image team's list as it is: the poster model first, then this one.
    expect(IMAGE_RECIPES.map((recipe) => recipe.key)).toEqual(['cnn', 'inception']);
  }, 600_000);

  it('study: trains the CNN once with early stopping on the validation fold', async () => {
    const dir = join(work, 'study');
    const ctx = await recipeContext({ workDir: dir, key: 'cnn', limit: 60, cacheDir: join(work, 'cache') });
    const trained = await posterRecipe.train(ctx, PosterRecipeOptionsSchema.parse({ variant: 'study', epochs: 1, batchSize: 16 }));
    expect(trained.history).toHaveLength(1);
    const metadata = openModelDir(trained.dir).metadata;
    expect(metadata).toMatchObject({ variant: 'study', split: ctx.split.record, preprocessing: { inputWidth: 64, inputHeight: 64 } });
    expect(metadata.training['augmentation']).toEqual({ flip: 0.5, translate: 4, brightness: 0.1, contrast: 0.1 });
    (await loadPosterClassifier(trained.dir)).dispose();
  }, 600_000);

  it('publishes nothing when stopped', async () => {
    const controller = new AbortController();
    controller.abort();
    const dir = join(work, 'stopped');
    const ctx = await recipeContext({ workDir: dir, key: 'cnn', limit: 60, signal: controller.signal, cacheDir: join(work, 'cache') });
    // Stopped while computing features (TrainingInterrupted) or decoding (an AbortError): either way, nothing is written.
    await expect(posterRecipe.train(ctx, PosterRecipeOptionsSchema.parse({ epochs: 2 }))).rejects.toThrow(/abort|stopped|interrupted/i);
    expect(existsSync(join(dir, 'models')) ? readdirSync(join(dir, 'models')).filter((n) => !n.startsWith('.')) : []).toEqual([]);
  }, 300_000);
});
