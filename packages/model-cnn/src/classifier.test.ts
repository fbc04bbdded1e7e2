import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENRES } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { fixtureFilms, fixtureMetadata, resealModelDir } from '@filmgenre/model-artifact/testing';
import { loadPosterClassifier, posterPreprocessing, savePosterClassifier, PREDICT_BATCH } from './classifier.js';
import { createPosterCnn, posterFeatureModel, type PosterVariant } from './models.js';

const SIZE = 16;
let root: string;

beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
  root = mkdtempSync(join(tmpdir(), 'model-cnn-test-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function metadata(variant: PosterVariant, imageSize: number, overrides: Record<string, unknown> = {}) {
  return fixtureMetadata({ name: `poster-${variant}`, variant, preprocessing: { ...posterPreprocessing(imageSize) }, ...overrides });
}

/** Deterministic pseudo-random posters as the data pipeline would hand them over. */
function posters(n: number, size: number, seed: number): Uint8Array[] {
  let s = seed;
  return Array.from({ length: n }, () => Uint8Array.from({ length: size * size * 3 }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 24;
  }));
}

describe('save → load round trip', () => {
  it.each(['study', 'residual'] as const)('%s: identical probabilities and features, leak-free predict', async (variant) => {
    const model = createPosterCnn({ variant, imageSize: SIZE, filters: [4, 8, 8], denseUnits: 12, seed: 11 });
    const dir = join(root, variant);
    await savePosterClassifier(dir, { model, films: fixtureFilms(), metadata: metadata(variant, SIZE) });

    // Reference computed in memory from the same input, before loading.
    const input = posters(PREDICT_BATCH + 5, SIZE, 3); // more than one internal batch
    const expected = tf.tidy(() => {
      const x = tf.tensor4d(Uint8Array.from(input.flatMap((p) => [...p])), [input.length, SIZE, SIZE, 3], 'int32').toFloat().div(255);
      return { probs: (model.predict(x) as tf.Tensor).dataSync(), feats: (posterFeatureModel(model).predict(x) as tf.Tensor).dataSync() };
    });
    model.dispose();

    const classifier = await loadPosterClassifier(dir);
    expect([classifier.inputWidth, classifier.inputHeight]).toEqual([SIZE, SIZE]);
    expect(classifier.metadata.variant).toBe(variant);
    await classifier.predict(input.slice(0, 1)); // warm-up: tfjs may keep a few tensors on first use
    const before = tf.memory().numTensors;
    const probabilities = await classifier.predict(input);
    const both = await classifier.predictWithFeatures(input);
    expect(tf.memory().numTensors).toBe(before);

    expect(probabilities).toHaveLength(input.length * GENRES.length);
    expect(Array.from(probabilities)).toEqual(Array.from(expected.probs));
    expect(Array.from(both.probabilities)).toEqual(Array.from(expected.probs));
    expect(both.featureDim).toBe(12);
    expect(Array.from(both.features)).toEqual(Array.from(expected.feats));
    classifier.dispose();
  });

  it('rejects posters of the wrong size, naming the poster', async () => {
    const model = createPosterCnn({ imageSize: SIZE, filters: [2, 2, 2], denseUnits: 4, seed: 1 });
    const dir = join(root, 'wrong-size');
    await savePosterClassifier(dir, { model, films: fixtureFilms(), metadata: metadata('study', SIZE) });
    model.dispose();
    const classifier = await loadPosterClassifier(dir);
    await expect(classifier.predict([...posters(1, SIZE, 1), new Uint8Array(10)])).rejects.toThrow(/poster 1: expected 16×16×3 = 768 bytes/);
    classifier.dispose();
    await expect(classifier.predict(posters(1, SIZE, 1))).rejects.toThrow(/disposed/);
  });
});

describe('savePosterClassifier validation', () => {
  it('refuses metadata that does not describe the model', async () => {
    const model = createPosterCnn({ imageSize: SIZE, filters: [2, 2, 2], denseUnits: 4 });
    await expect(savePosterClassifier(join(root, 'x'), { model, films: fixtureFilms(), metadata: metadata('study', 32) }))
      .rejects.toThrow(/input shape \[null,16,16,3\] does not match \[null,32,32,3\]/);
    await expect(savePosterClassifier(join(root, 'x'), { model, films: fixtureFilms(), metadata: metadata('pretrained', SIZE) }))
      .rejects.toThrow(/needs its featureExtractor/);
    model.dispose();
  });
});

describe('loadPosterClassifier errors name the directory and the file', () => {
  let dir: string;
  beforeAll(async () => {
    const model = createPosterCnn({ imageSize: SIZE, filters: [2, 2, 2], denseUnits: 4 });
    dir = join(root, 'broken');
    await savePosterClassifier(dir, { model, films: fixtureFilms(), metadata: metadata('study', SIZE) });
    model.dispose();
  });

  it('missing directory', async () => {
    await expect(loadPosterClassifier(join(root, 'nope'))).rejects.toThrow(`${join(root, 'nope')}: model directory not found`);
  });

  it('invalid metadata.json', async () => {
    const path = join(dir, 'metadata.json');
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(good), variant: 'residual' }));
    await expect(loadPosterClassifier(dir)).rejects.toThrow(`${path}: field 'variant' changed after training`);
    resealModelDir(dir, (m) => (m['variant'] = 'lstm'));
    await expect(loadPosterClassifier(dir)).rejects.toThrow(`${path}: variant 'lstm' is not one of study, residual, pretrained`);
    writeFileSync(path, '{ not json');
    await expect(loadPosterClassifier(dir)).rejects.toThrow(`${path}: not valid JSON`);
    writeFileSync(path, good);
  });

  it('a directory of another kind', async () => {
    const path = join(dir, 'metadata.json');
    const good = readFileSync(path, 'utf8');
    resealModelDir(dir, (m) => (m['kind'] = 'overview-classifier'));
    await expect(loadPosterClassifier(dir)).rejects.toThrow(`${path}: kind is 'overview-classifier', expected 'poster-classifier'`);
    writeFileSync(path, good);
  });

  it('missing weights.bin, then missing model.json', async () => {
    unlinkSync(join(dir, 'weights.bin'));
    await expect(loadPosterClassifier(dir)).rejects.toThrow(`${join(dir, 'weights.bin')}: listed in metadata.json but missing`);
    unlinkSync(join(dir, 'model.json'));
    await expect(loadPosterClassifier(dir)).rejects.toThrow(`${join(dir, 'model.json')}: listed in metadata.json but missing`);
  });
});
