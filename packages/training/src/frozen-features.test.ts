import * as tf from '@tensorflow/tfjs';
import { createRng, foldPlan, holdoutSplit, NUM_GENRES, seedMathRandom, type Film } from '@filmgenre/core';
import { crossFittedEvaluation } from '@filmgenre/metrics';
import { initBackend } from '@filmgenre/tf-runtime';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFrozenFeatureHead, FROZEN_HEAD_DEFAULTS, frozenHeadSettings, trainFrozenFeatureModel, type CrossFittedModel } from './frozen-features.js';
import type { RecipeContext } from './recipe.js';

const work = mkdtempSync(join(tmpdir(), 'frozen-features-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
});

describe('createFrozenFeatureHead', () => {
  it('builds features → hidden → dropout → genres with named layers, seeded: the same seed gives the same weights', () => {
    const make = (seed: number) => createFrozenFeatureHead({ inputDim: 6, hiddenUnits: 4, dropout: 0.5, seed, name: 'h' });
    const [a, b, c] = [make(3), make(3), make(4)];
    expect(a.layers.map((l) => l.name)).toEqual(['h_features', 'h_hidden', 'h_dropout', 'h_genres']);
    expect(a.outputs[0]!.shape).toEqual([null, NUM_GENRES]);
    const weights = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));
    expect(weights(a)).toEqual(weights(b));
    expect(weights(a)).not.toEqual(weights(c));
    tf.dispose([a, b, c] as unknown as tf.Tensor[]);
  });

  it('hidden units 0 is a logistic regression on the features', () => {
    const head = createFrozenFeatureHead({ inputDim: 6, hiddenUnits: 0, dropout: 0.5, seed: 1, name: 'lr' });
    expect(head.layers.map((l) => l.name)).toEqual(['lr_features', 'lr_genres']);
    head.dispose();
  });
});

describe('frozenHeadSettings', () => {
  it('takes each option given and the default for every other, ignoring fields that are not head settings', () => {
    expect(frozenHeadSettings({})).toEqual(FROZEN_HEAD_DEFAULTS);
    const settings = frozenHeadSettings({ learningRate: 0.01, patience: undefined, bags: 2, ...({ variant: 'x' } as object) });
    expect(settings).toEqual({ ...FROZEN_HEAD_DEFAULTS, learningRate: 0.01, bags: 2 });
  });
});

describe('trainFrozenFeatureModel', () => {
  it('cross-fits the heads, scores them out of fold, and saves their ensemble with what it measured', async () => {
    // 240 films whose genre g (of 3) is present iff feature g is positive.
    const n = 240;
    const dim = 6;
    const rng = createRng(9);
    const films: Film[] = Array.from({ length: n }, (_, i) => ({ id: `tt${String(i).padStart(7, '0')}`, labels: new Uint8Array(NUM_GENRES) }) as unknown as Film);
    const features = Float32Array.from({ length: n * dim }, () => rng() * 2 - 1);
    const labels = new Float32Array(n * NUM_GENRES);
    for (let i = 0; i < n; i++) for (let g = 0; g < 3; g++) labels[i * NUM_GENRES + g] = features[i * dim + g]! > 0 ? 1 : 0;
    const ctx: RecipeContext = {
      films, split: holdoutSplit(films, { seed: 0 }), folds: foldPlan(films, { seed: 0 }), seed: 0, backend: { name: 'cpu' } as RecipeContext['backend'],
      cacheDir: join(work, 'cache'), modelsDir: join(work, 'models'), checkpointDir: join(work, 'ckpt'), resume: false,
      signal: new AbortController().signal, rng: seedMathRandom(1), log: () => {},
    };
    const saved: { dir: string; trained: CrossFittedModel; prediction: Float32Array }[] = [];
    const settings = frozenHeadSettings({ epochs: 30, batchSize: 32, learningRate: 0.02, hiddenUnits: 8, dropout: 0.1, bags: 2, patience: 5 });
    const result = await trainFrozenFeatureModel(ctx, {
      key: 'toy', variant: 'mlp', features, dim, ids: films.map((f) => f.id), labels, folds: ctx.folds.folds, settings, identity: { test: 1 },
      save: async (dir, trained) => {
        // The ensemble is alive while saving: it takes the raw features and averages the heads.
        const prediction = tf.tidy(() => (trained.model.predict(tf.tensor2d(features.subarray(0, 4 * dim), [4, dim])) as tf.Tensor).dataSync() as Float32Array);
        saved.push({ dir, trained, prediction: Float32Array.from(prediction) });
      },
    });
    expect(saved).toHaveLength(1);
    const { dir, trained, prediction } = saved[0]!;
    expect(dir).toBe(join(ctx.modelsDir, 'toy'));
    expect(trained.heads).toBe(ctx.folds.k * 2);
    expect(trained.bestEpochs).toHaveLength(trained.heads);
    expect(prediction.every((p) => p > 0 && p < 1)).toBe(true);
    // What the recipe reports is what cross-fitted evaluation of the out-of-fold predictions gives.
    const expected = crossFittedEvaluation(trained.outOfFold, labels, ctx.folds.folds, settings.thresholds);
    expect(trained.thresholds).toEqual(expected.thresholds);
    expect(trained.report.micro.f1).toBe(expected.report.micro.f1);
    expect(trained.report.micro.f1).toBeGreaterThan(0.8);
    expect(result).toMatchObject({ key: 'toy', variant: 'mlp', dir, thresholds: trained.thresholds, outOfSample: { scheme: 'out-of-fold' } });
    expect(result.heldOut.ids).toEqual(films.map((f) => f.id));
    expect(result.heldOut.probabilities).toBe(trained.outOfFold);
    // A stopped run publishes nothing.
    const stopped = new AbortController();
    stopped.abort();
    await expect(trainFrozenFeatureModel({ ...ctx, signal: stopped.signal }, {
      key: 'stopped', variant: 'mlp', features, dim, ids: films.map((f) => f.id), labels, folds: ctx.folds.folds, settings, identity: { test: 2 },
      save: async () => saved.push({} as never),
    })).rejects.toThrow(/stopped/);
    expect(saved).toHaveLength(1);
    expect(existsSync(join(ctx.modelsDir, 'stopped'))).toBe(false);
  }, 120_000);
});
