import * as tf from '@tensorflow/tfjs';
import { GENRES } from '@filmgenre/core';
import { fixtureFilms, fixtureMetadata } from '@filmgenre/model-artifact/testing';
import { createPosterCnn, posterPreprocessing, savePosterClassifier } from '@filmgenre/model-cnn';
import { initBackend } from '@filmgenre/tf-runtime';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectModelsDir, loadModelsDir } from './models-dir.js';

const work = mkdtempSync(join(tmpdir(), 'model-registry-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
});

/**
 * A tiny poster model; `nan`: weights that are not numbers (refused when the weights are read);
 * `overflow`: finite weights so large that a blank poster gives NaN (+Inf − Inf), which only the
 * warm-up pass can catch. In both the files are intact: their hashes match.
 */
async function posterModel(dir: string, poison?: 'nan' | 'overflow'): Promise<void> {
  const model = createPosterCnn({ variant: 'study', imageSize: 16, filters: [2, 2, 2], denseUnits: 4, seed: 3 });
  const weights = model.getWeights();
  if (poison === 'nan') model.setWeights(weights.map((w, i) => (i === 0 ? tf.fill(w.shape, Number.NaN) : w)));
  if (poison === 'overflow') {
    // The first bias lifts a blank input to 3e38; the next kernel's ±3e38 then sums +Inf and −Inf.
    const alternating = (w: tf.Tensor) => tf.tensor(Float32Array.from({ length: w.size }, (_, j) => (j % 2 ? -3e38 : 3e38)), w.shape);
    model.setWeights(weights.map((w, i) => (i === 1 ? tf.fill(w.shape, 3e38) : i === 2 ? alternating(w) : w)));
  }
  await savePosterClassifier(dir, { model, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'cnn', variant: 'study', preprocessing: { ...posterPreprocessing(16) } }) });
  model.dispose();
}

describe('inspectModelsDir', () => {
  it('names what is wrong with a models directory', async () => {
    expect(() => inspectModelsDir(join(work, 'absent'))).toThrow(/models directory .*absent not found: train models first/);
    mkdirSync(join(work, 'empty'));
    expect(() => inspectModelsDir(join(work, 'empty'))).toThrow(/holds no model directory/);
    const dir = join(work, 'misnamed');
    await posterModel(join(dir, 'posters'));
    expect(() => inspectModelsDir(dir)).toThrow(/the model is named 'cnn' but sits in posters\//);
    const genres = join(work, 'genres');
    await posterModel(join(genres, 'cnn'));
    const path = join(genres, 'cnn', 'metadata.json');
    const metadata = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify({ ...metadata, genres: [...GENRES].reverse() }));
    expect(() => inspectModelsDir(genres)).toThrow(/genres do not match the dataset's 25 genres in order \(first difference at position 1\)/);
    writeFileSync(path, JSON.stringify({ ...metadata, kind: 'mystery' }));
    expect(() => inspectModelsDir(genres)).toThrow(/kind 'mystery' is not one of poster-classifier, overview-classifier, sentence-classifier, fusion/);
  });
});

describe('loadModelsDir', () => {
  it('loads, verifies and warms up a sound directory, and refuses weights that give non-finite outputs', async () => {
    await posterModel(join(work, 'sound', 'cnn'));
    const loaded = await loadModelsDir(join(work, 'sound'));
    expect(Object.keys(loaded.members)).toEqual(['cnn']);
    loaded.dispose();
    await posterModel(join(work, 'nan', 'cnn'), 'nan');
    await expect(loadModelsDir(join(work, 'nan'))).rejects.toThrow(/nan\/cnn\/model.json: .*weight 'conv.*' holds NaN at index 0: the weights are damaged/);
    await posterModel(join(work, 'overflow', 'cnn'), 'overflow');
    await expect(loadModelsDir(join(work, 'overflow'))).rejects.toThrow(/cnn model gives non-finite outputs on a blank input .*: its weights are broken; retrain it/);
  });
});
