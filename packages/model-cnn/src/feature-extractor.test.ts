import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IMAGES_DIR, resolveDatasetDir } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { fixtureFilms, fixtureMetadata } from '@filmgenre/model-artifact/testing';
import { loadPosterClassifier, posterPreprocessing, savePosterClassifier } from './classifier.js';
import { FEATURE_EXTRACTOR_DIR, PosterFeatureExtractor, PRETRAINED_FEATURE_DIM } from './feature-extractor.js';
import { createFeatureHead } from './models.js';

// Small input keeps the test quick; the graph accepts any multiple of 32.
const SIZE = 96;
const POSTERS = ['tt0084058', 'tt0084867'];
let extractor: PosterFeatureExtractor;
let root: string;
let pixels: Uint8Array[];

/** The data pipeline's decoding, done here with sharp directly: stretch to SIZE×SIZE, RGB uint8 HWC. */
async function decode(id: string): Promise<Uint8Array> {
  const path = join(resolveDatasetDir(), IMAGES_DIR, `${id}.jpg`);
  const { data } = await sharp(path).removeAlpha().resize(SIZE, SIZE, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
  // Loading must not touch the network: any fetch fails the test.
  const fetchSpy = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('network access during extractor load'));
  extractor = await PosterFeatureExtractor.fromNsfwjs({ inputSize: SIZE });
  expect(fetchSpy).not.toHaveBeenCalled();
  fetchSpy.mockRestore();
  root = mkdtempSync(join(tmpdir(), 'model-cnn-extractor-'));
  pixels = await Promise.all(POSTERS.map(decode));
});
afterAll(() => {
  extractor?.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

function features(images: Uint8Array[]): Float32Array {
  return tf.tidy(() => {
    const flat = new Uint8Array(images.length * SIZE * SIZE * 3);
    images.forEach((p, i) => flat.set(p, i * SIZE * SIZE * 3));
    const x = tf.tensor4d(flat, [images.length, SIZE, SIZE, 3], 'int32').toFloat().div(255) as tf.Tensor4D;
    return extractor.extract(x).dataSync() as Float32Array;
  });
}

describe('PosterFeatureExtractor (nsfwjs MobileNetV2-1.4, offline)', () => {
  it('describes itself', () => {
    expect(extractor.featureDim).toBe(PRETRAINED_FEATURE_DIM);
    expect(extractor.info).toMatchObject({ inputSize: SIZE, featureDim: 1792 });
    expect(extractor.info.licence).toMatch(/MIT/);
  });

  it('gives finite, non-trivial 1792-d features for real posters, different per poster', () => {
    const f = features(pixels);
    expect(f).toHaveLength(2 * 1792);
    expect(f.every(Number.isFinite)).toBe(true);
    const a = f.subarray(0, 1792);
    const b = f.subarray(1792);
    // ReLU6 averages: in [0, 6], and a real image activates a good share of the channels.
    expect(Math.min(...f)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...f)).toBeLessThanOrEqual(6);
    expect(a.filter((v) => v > 0).length).toBeGreaterThan(500);
    const diff = a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / 1792;
    const scale = a.reduce((s, v) => s + v, 0) / 1792;
    expect(diff).toBeGreaterThan(0.1 * scale);
    // Batch composition does not change a poster's features.
    const alone = features([pixels[1]!]);
    for (let i = 0; i < 1792; i++) expect(alone[i]).toBeCloseTo(b[i]!, 4);
  });

  it('rejects input sizes the trunk cannot pool cleanly', async () => {
    await expect(PosterFeatureExtractor.fromNsfwjs({ inputSize: 100 })).rejects.toThrow(/multiple of 32/);
  });
});

describe("'pretrained' classifier directory", () => {
  it('is self-contained: save → load gives identical predictions, leak-free', async () => {
    const head = createFeatureHead({ featureDim: extractor.featureDim, hiddenUnits: 32, seed: 4 });
    const dir = join(root, 'pretrained');
    await savePosterClassifier(dir, {
      model: head, featureExtractor: extractor, films: fixtureFilms(),
      metadata: fixtureMetadata({ name: 'poster-pretrained', variant: 'pretrained', preprocessing: { ...posterPreprocessing(extractor) } }),
    });
    expect(existsSync(join(dir, FEATURE_EXTRACTOR_DIR, 'model.json'))).toBe(true);
    expect(existsSync(join(dir, FEATURE_EXTRACTOR_DIR, 'weights.bin'))).toBe(true);

    const expected = tf.tidy(() => (head.predict(tf.tensor2d(features(pixels), [2, 1792])) as tf.Tensor).dataSync());
    head.dispose();

    const classifier = await loadPosterClassifier(dir);
    expect([classifier.inputWidth, classifier.inputHeight]).toEqual([SIZE, SIZE]);
    expect(classifier.metadata.preprocessing).toMatchObject({ inputWidth: SIZE, inputHeight: SIZE, featureExtractor: { dir: FEATURE_EXTRACTOR_DIR, featureDim: 1792 } });
    await classifier.predict([pixels[0]!]);
    const before = tf.memory().numTensors;
    const probabilities = await classifier.predict(pixels);
    const both = await classifier.predictWithFeatures(pixels);
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(probabilities)).toEqual(Array.from(expected));
    expect(Array.from(both.probabilities)).toEqual(Array.from(expected));
    // What fusion reads from a head over a frozen trunk: the trunk's own pooled features.
    expect(both.featureDim).toBe(1792);
    const direct = features(pixels);
    Array.from(both.features).forEach((v, i) => expect(v).toBeCloseTo(direct[i]!, 4));
    classifier.dispose();

    unlinkSync(join(dir, FEATURE_EXTRACTOR_DIR, 'weights.bin'));
    await expect(loadPosterClassifier(dir)).rejects.toThrow(`${join(dir, FEATURE_EXTRACTOR_DIR, 'weights.bin')}: listed in metadata.json but missing`);
  });
});
