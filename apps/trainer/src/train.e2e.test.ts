import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findWorkspaceRoot, NUM_GENRES, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { openModelDir, readModelMetadata } from '@filmgenre/model-artifact';
import { loadModel, predictFilms, type MemberClassifier } from '@filmgenre/model-registry';
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
  it('trains cnn, lstm and fusion into self-describing directories that reload with the predictions training recorded', async () => {
    const run = trainer(['train', '--out', models, '--report-dir', join(work, 'report'), '--limit', '300', '--epochs', '1', '--batch-size', '32', '--seed', '1']);
    expect(run.status, run.stderr).toBe(0);
    // The report's random films carry their posters, embedded: the page is one self-contained file.
    const report = readFileSync(join(work, 'report', 'report.html'), 'utf8');
    expect(report.match(/<img src="data:image\/jpeg;base64,/g)?.length).toBe(12);
    expect(report).not.toMatch(/src="(https?:|file:)/);
    const films = readDataset(dataDir, { limit: 300 }).films;
    for (const key of ['cnn', 'lstm']) {
      const metadata = readModelMetadata(join(models, key));
      expect(metadata).toMatchObject({ name: key, split: { seed: 1, folds: 5, validationFold: 0, films: 300 } });
      expect(metadata.thresholds).toHaveLength(NUM_GENRES);
      expect(metadata.versions['@tensorflow/tfjs']).toBe('4.22.0');
      expect(Object.keys(metadata.files)).toContain('films.json');
      const record = openModelDir(join(models, key)).films();
      const model = (await loadModel(join(models, key))) as MemberClassifier;
      const byId = new Map(films.map((f) => [f.id, f]));
      const predicted = await predictFilms(model, record.heldOut.map((id) => byId.get(id)!), { cacheDir: join(root, '.cache') });
      expect(predicted.ids).toEqual(record.heldOut);
      // What serving computes for these films is what training recorded for them.
      Array.from(predicted.output.probabilities).forEach((p, i) => expect(p).toBeCloseTo(record.heldOutProbabilities[i]!, 5));
      model.dispose();
    }
    expect(readModelMetadata(join(models, 'cnn')).training).toMatchObject({ augmentation: { mirroredView: 0.5 } });
    const fusion = readModelMetadata(join(models, 'fusion'));
    expect(fusion).toMatchObject({ name: 'fusion', modality: 'fusion', variant: 'late' });
    expect(Object.keys(fusion.members ?? {}).sort()).toEqual(['cnn', 'lstm']);
    // The weighting was chosen by cross-validation among all three, and the choice is recorded.
    const training = fusion.training as { weighting: string; crossValidatedMicroF1: Record<string, number> };
    expect(Object.keys(training.crossValidatedMicroF1).sort()).toEqual(['equal', 'per-genre', 'shared']);
    expect(training.crossValidatedMicroF1[training.weighting]).toBe(Math.max(...Object.values(training.crossValidatedMicroF1)));
  }, 600_000);

  it('evaluate writes the documented JSON with both macro-F1s, and warns when it scores films the models trained on', () => {
    const output = join(work, 'evaluation.json');
    const run = trainer(['evaluate', '--models', models, '--data', dataDir, '--limit', '120', '--output', output]);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(readFileSync(output, 'utf8'));
    expect(result.n).toBe(120);
    for (const name of ['cnn', 'lstm', 'fusion']) {
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
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/--cnn-augment-strength: /);
    expect(execFileSync('npx', ['tsx', cli, 'train', '--help'], { cwd: root, encoding: 'utf8' })).toMatch(/--lstm-embeddings.*wink-100d/s);
  }, 120_000);
});
