import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findWorkspaceRoot, NUM_GENRES, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { openModelDir, readModelMetadata } from '@filmgenre/model-artifact';
import { loadModel, predictFilms, type MemberClassifier } from '@filmgenre/model-registry';
import { encoderRuntimeLabel, resolveEncoderRuntime } from '@filmgenre/onnx-runtime';
import { initBackend } from '@filmgenre/tf-runtime';

// End to end on a slice of the real dataset, through the CLI a user runs: train every model briefly,
// reload each artifact the way serving does and check it predicts exactly what training recorded,
// score the models with `evaluate`, and check the split guards.
const root = findWorkspaceRoot();
const dataDir = resolveDatasetDir();
const cli = join(root, 'apps/trainer/src/main.ts');
let work: string;
let models: string;

function trainer(args: string[]) {
  return spawnSync('npx', ['tsx', cli, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, FILMGENRE_BACKEND: 'wasm' } });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'trainer-e2e-'));
  models = join(work, 'models');
  await initBackend('wasm', { log: () => {} });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('trainer end to end on 300 real films', () => {
  it('trains the default models (cnn, sentence, lexical, fusion) into self-describing directories that reload and predict', async () => {
    const run = trainer(['train', '--out', models, '--report-dir', join(work, 'report'), '--limit', '300', '--epochs', '1', '--batch-size', '32', '--seed', '1']);
    expect(run.status, run.stderr).toBe(0);
    // Which runtime computes the frozen encoders' features: said at the start, in the report and in the poster model's metadata.
    const encoders = encoderRuntimeLabel(resolveEncoderRuntime(), 'wasm');
    expect(run.stderr).toContain(`[encoders] frozen encoders on ${encoders}`);
    expect(readFileSync(join(work, 'report', 'report.html'), 'utf8')).toContain(encoders);
    expect(readModelMetadata(join(models, 'cnn')).encoderRuntime).toBe(encoders);
    // The report's random films carry their posters, embedded: the page is one self-contained file.
    const report = readFileSync(join(work, 'report', 'report.html'), 'utf8');
    expect(report.match(/<img src="data:image\/jpeg;base64,/g)?.length).toBe(12);
    expect(report).not.toMatch(/src="(https?:|file:)/);
    const films = readDataset(dataDir, { limit: 300 }).films;
    for (const key of ['cnn', 'sentence', 'lexical']) {
      const metadata = readModelMetadata(join(models, key));
      // Cross-fitted: every film predicted out of fold, the split recorded with no validation fold.
      expect(metadata).toMatchObject({ name: key, split: { seed: 1, folds: 5, validationFold: null, films: 300 } });
      expect(metadata.thresholds).toHaveLength(NUM_GENRES);
      expect(metadata.versions['@tensorflow/tfjs']).toBe('4.22.0');
      const record = openModelDir(join(models, key)).films();
      expect(record).toMatchObject({ scheme: 'out-of-fold', heldOut: films.map((f) => f.id) });
      // Reloaded the way serving loads it, it predicts every film.
      const model = (await loadModel(join(models, key))) as MemberClassifier;
      const predicted = await predictFilms(model, films.slice(0, 20), { cacheDir: join(root, '.cache') });
      expect(predicted.ids).toHaveLength(20);
      expect(Array.from(predicted.output.probabilities).every((p) => p > 0 && p < 1)).toBe(true);
      model.dispose();
    }
    const fusion = readModelMetadata(join(models, 'fusion'));
    expect(fusion).toMatchObject({ name: 'fusion', modality: 'fusion' });
    expect(Object.keys(fusion.members ?? {}).sort()).toEqual(['cnn', 'lexical', 'sentence']);
    // Late fusion takes one poster and one overview model: over three members the stack is the one candidate, and it is recorded.
    const candidates = fusion.metrics['candidates'] as Record<string, { microF1: number }>;
    expect(Object.keys(candidates)).toEqual(['stacked']);
    expect(candidates[fusion.variant]!.microF1).toBe(Math.max(...Object.values(candidates).map((c) => c.microF1)));
  }, 900_000);

  it('evaluate writes the documented JSON with both macro-F1s, and warns when it scores films the models trained on', () => {
    const output = join(work, 'evaluation.json');
    const run = trainer(['evaluate', '--models', models, '--data', dataDir, '--limit', '120', '--output', output]);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(readFileSync(output, 'utf8'));
    expect(result.n).toBe(120);
    for (const name of ['cnn', 'sentence', 'lexical', 'fusion']) {
      const model = result.models[name];
      for (const key of ['loss', 'microPrecision', 'microRecall', 'microF1', 'macroF1', 'macroF1AllGenres']) {
        expect(Number.isFinite(model[key]), `${name}.${key}`).toBe(true);
      }
      expect(model.macroF1AllGenres).toBeLessThanOrEqual(model.macroF1);
      expect(Object.keys(model.perGenre)).toHaveLength(NUM_GENRES);
      expect(result.overlap[name].trainedOn + result.overlap[name].validatedOn).toBeGreaterThan(0);
    }
    expect(run.stderr).toMatch(/warning: cnn trained on \d+ and was validated on \d+ of these 120 films: its scores here are not held-out/);
  }, 300_000);

  it('refuses to fit fusion over members trained on another split', () => {
    const run = trainer(['train', '--model', 'fusion', '--out', models, '--report-dir', join(work, 'report2'), '--limit', '300', '--seed', '2']);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/fusion: member cnn .* was trained on another split than this run: seed 1 instead of 2/);
    // The published fusion model is untouched.
    expect(readModelMetadata(join(models, 'fusion')).split.seed).toBe(1);
  }, 300_000);

  it('names the flag of a bad option', () => {
    const run = trainer(['train', '--cnn-augment-strength', '7', '--out', models]);
    expect(run.status).toBe(2); // a refused command line, as for an unknown flag
    expect(run.stderr).toMatch(/--cnn-augment-strength: /);
    expect(execFileSync('npx', ['tsx', cli, 'train', '--help'], { cwd: root, encoding: 'utf8' })).toMatch(/--lstm-embeddings.*wink-100d/s);
  }, 120_000);
});
