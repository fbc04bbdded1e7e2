import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findWorkspaceRoot, NUM_GENRES, readDataset, resolveDatasetDir, splitTrainValidation } from '@filmgenre/core';
import { loadPosterSet } from '@filmgenre/data-images';
import { initBackend, readModelMetadata } from '@filmgenre/tf-runtime';
import { loadPosterClassifier } from '@filmgenre/model-cnn';
import { loadOverviewClassifier } from '@filmgenre/model-lstm';
import { TrainConfigSchema } from './config.js';
import type { TrainContext } from './tasks/context.js';
import { trainOverviewModel } from './tasks/overview.js';
import { trainPosterModel } from './tasks/poster.js';
import { trainFusionModel } from './tasks/fusion.js';

// End to end on a slice of the real dataset: train both models briefly, reload the artifacts from disk,
// and check they predict exactly what the in-memory models predicted; then run the CLI's evaluate.
const root = findWorkspaceRoot();
const dataDir = resolveDatasetDir();
let work: string;
let ctx: TrainContext;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'trainer-e2e-'));
  const backend = await initBackend('wasm', { log: () => {} });
  const config = TrainConfigSchema.parse({ out: join(work, 'models'), epochs: 1, limit: 300, batchSize: 32, seed: 1 });
  const dataset = readDataset(dataDir, { limit: 300 });
  ctx = {
    config, dataset, split: splitTrainValidation(dataset.films, { seed: 1 }), backend, outDir: config.out,
    checkpointRoot: join(config.out, '.checkpoints'), cacheDir: join(root, '.cache'), signal: new AbortController().signal, log: () => {},
  };
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('trainer end to end on 300 real films', () => {
  it('trains the CNN, saves a self-describing artifact, and reloads it with identical predictions', async () => {
    const trained = await trainPosterModel(ctx);
    expect(trained.fit!.history).toHaveLength(1);
    const metadata = readModelMetadata(trained.dir);
    expect(metadata).toMatchObject({ name: 'cnn', modality: 'image', variant: 'pretrained', preprocessing: { imageSize: 160 } });
    expect(metadata.thresholds).toHaveLength(NUM_GENRES);
    expect(metadata.versions['@tensorflow/tfjs']).toBe('4.22.0');
    const reloaded = await loadPosterClassifier(trained.dir);
    const set = await loadPosterSet(ctx.split.validation, { size: reloaded.imageSize, cacheDir: join(ctx.cacheDir, 'posters') });
    expect(set.ids).toEqual(trained.validationIds);
    const per = reloaded.imageSize ** 2 * 3;
    const probabilities = await reloaded.predict(set.ids.map((_, i) => set.pixels.subarray(i * per, (i + 1) * per)));
    expect(Array.from(probabilities)).toEqual(Array.from(trained.validationProbabilities));
    reloaded.dispose();
  }, 300_000);

  it('trains the LSTM and reloads it with identical predictions', async () => {
    const trained = await trainOverviewModel(ctx);
    const reloaded = await loadOverviewClassifier(trained.dir);
    expect(reloaded.metadata).toMatchObject({ name: 'lstm', modality: 'text', preprocessing: { sequenceLength: 100 } });
    const probabilities = await reloaded.predict(ctx.split.validation.map((f) => f.overview));
    expect(Array.from(probabilities)).toEqual(Array.from(trained.validationProbabilities));
    reloaded.dispose();
  }, 300_000);

  it('fits late fusion on the two saved models', async () => {
    const trained = await trainFusionModel(ctx);
    const metadata = readModelMetadata(trained.dir);
    expect(metadata).toMatchObject({ name: 'fusion', modality: 'fusion', variant: 'late' });
    // The weighting was chosen by cross-validation among all three, and the choice is recorded.
    const training = metadata.training as { weighting: string; crossValidatedMicroF1: Record<string, number> };
    expect(Object.keys(training.crossValidatedMicroF1).sort()).toEqual(['equal', 'per-genre', 'shared']);
    const best = Math.max(...Object.values(training.crossValidatedMicroF1));
    expect(training.crossValidatedMicroF1[training.weighting]).toBe(best);
    expect(trained.validationProbabilities.length).toBe(trained.validationIds.length * NUM_GENRES);
  }, 300_000);

  it('evaluate writes the documented JSON for the saved models', () => {
    const output = join(work, 'evaluation.json');
    execFileSync('npx', ['tsx', join(root, 'apps/trainer/src/main.ts'), 'evaluate', '--models', ctx.outDir, '--data', dataDir, '--limit', '120', '--output', output, '--backend', 'wasm'], {
      cwd: root, stdio: ['ignore', 'ignore', 'pipe'],
    });
    expect(existsSync(output)).toBe(true);
    const result = JSON.parse(readFileSync(output, 'utf8'));
    expect(result.n).toBe(120);
    for (const name of ['cnn', 'lstm', 'fusion']) {
      const model = result.models[name];
      for (const key of ['loss', 'microPrecision', 'microRecall', 'microF1', 'macroF1']) {
        expect(typeof model[key]).toBe('number');
        expect(Number.isFinite(model[key])).toBe(true);
      }
      expect(Object.keys(model.perGenre)).toHaveLength(NUM_GENRES);
    }
  }, 300_000);
});
