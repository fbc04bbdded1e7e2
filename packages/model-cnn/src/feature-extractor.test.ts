import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IMAGES_DIR, resolveDatasetDir } from '@filmgenre/core';
import { decodePoster } from '@filmgenre/data-images';
import { encoderRuntimeLabel, resolveEncoderRuntime } from '@filmgenre/onnx-runtime';
import { initBackend } from '@filmgenre/tf-runtime';
import { fixtureFilms, fixtureMetadata, resealModelDir } from '@filmgenre/model-artifact/testing';
import { loadPosterClassifier, posterPreprocessing, savePosterClassifier } from './classifier.js';
import { DEFAULT_FEATURE_SPEC, FEATURE_EXTRACTOR_DIR, PosterFeatureExtractor } from './feature-extractor.js';
import { createFeatureHead } from './models.js';

const { inputWidth: W, inputHeight: H } = DEFAULT_FEATURE_SPEC;
const DIM = 960;
const POSTERS = ['tt0084058', 'tt0084867'];
let extractor: PosterFeatureExtractor;
let root: string;
let pixels: Uint8Array[];

beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
  // Loading must not touch the network: any fetch fails the test.
  const fetchSpy = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('network access during extractor load'));
  extractor = await PosterFeatureExtractor.create();
  expect(fetchSpy).not.toHaveBeenCalled();
  fetchSpy.mockRestore();
  root = mkdtempSync(join(tmpdir(), 'model-cnn-extractor-'));
  pixels = await Promise.all(POSTERS.map((id) => decodePoster(join(resolveDatasetDir(), IMAGES_DIR, `${id}.jpg`), { width: W, height: H })));
});
afterAll(() => {
  extractor?.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

const features = (images: Uint8Array[]) => {
  const flat = new Uint8Array(images.length * W * H * 3);
  images.forEach((p, i) => flat.set(p, i * W * H * 3));
  return extractor.extract(flat);
};

describe('PosterFeatureExtractor: the default (nsfwjs MobileNetV2-1.0 to block_10, offline)', () => {
  it('describes itself and the runtime that computes it', () => {
    expect(extractor.spec).toEqual(DEFAULT_FEATURE_SPEC);
    expect(extractor.featureDim).toBe(DIM);
    expect(extractor.info).toMatchObject({ inputWidth: 128, inputHeight: 256, featureDim: DIM });
    expect(extractor.info.licence).toMatch(/MIT/);
    // Where $FILMGENRE_ENCODER_RUNTIME says, else onnxruntime (it loads on every machine of this project).
    expect(extractor.runtime).toBe(encoderRuntimeLabel(resolveEncoderRuntime(), 'wasm'));
    expect(extractor.runtime).toMatch(/^(onnxruntime \d+\.\d+\.\d+|tfjs wasm)$/);
  });

  it('gives finite, non-trivial 960-d features for real posters, different per poster, whatever the batch', async () => {
    const f = await features(pixels);
    expect(f).toHaveLength(2 * DIM);
    expect(f.every(Number.isFinite)).toBe(true);
    const [a, b] = [f.subarray(0, DIM), f.subarray(DIM)];
    // The block_10 expansion is a ReLU6: its 384 means and maxima lie in [0, 6], and a real image activates most channels.
    const expansion = [...a.subarray(0, 768), ...b.subarray(0, 768)];
    expect(Math.min(...expansion)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...expansion)).toBeLessThanOrEqual(6);
    expect(a.subarray(0, 384).filter((v) => v > 0).length).toBeGreaterThan(200);
    const diff = a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / DIM;
    const scale = a.reduce((s, v) => s + Math.abs(v), 0) / DIM;
    expect(diff).toBeGreaterThan(0.1 * scale);
    // Batch composition does not change a poster's features.
    const alone = await features([pixels[1]!]);
    for (let i = 0; i < DIM; i++) expect(alone[i]).toBeCloseTo(b[i]!, 4);
  });

  it('rejects input that is not whole posters, and input sizes the trunk cannot pool cleanly', async () => {
    await expect(extractor.extract(new Uint8Array(W * H * 3 + 1))).rejects.toThrow(/not a whole number of 128×256×3 posters/);
    await expect(PosterFeatureExtractor.create({ inputSize: 100 })).rejects.toThrow(/multiple of 16/);
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

    const direct = await features(pixels);
    const expected = tf.tidy(() => (head.predict(tf.tensor2d(direct, [2, DIM])) as tf.Tensor).dataSync());
    head.dispose();

    const classifier = await loadPosterClassifier(dir);
    expect([classifier.inputWidth, classifier.inputHeight]).toEqual([W, H]);
    expect(classifier.metadata.preprocessing).toMatchObject({ inputWidth: W, inputHeight: H, featureExtractor: { dir: FEATURE_EXTRACTOR_DIR, featureDim: DIM } });
    await classifier.predict([pixels[0]!]);
    const before = tf.memory().numTensors;
    const probabilities = await classifier.predict(pixels);
    const both = await classifier.predictWithFeatures(pixels);
    expect(tf.memory().numTensors).toBe(before);
    // The heads run compiled (model-artifact's compileFeatureHeads: onnxruntime where it loads), so
    // equal to the saved tfjs head to float rounding, and deterministic.
    probabilities.forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 6));
    expect(Array.from(both.probabilities)).toEqual(Array.from(probabilities));
    // What fusion reads from a head over a frozen trunk: the trunk's own pooled features.
    expect(both.featureDim).toBe(DIM);
    expect(Array.from(both.features)).toEqual(Array.from(direct));
    classifier.dispose();

    // A poster size the trunk was not trained at: even with the metadata's checksums forged to match.
    resealModelDir(dir, (m) => (m['preprocessing'] = { ...(m['preprocessing'] as object), inputWidth: 64, inputHeight: 64 }));
    await expect(loadPosterClassifier(dir)).rejects.toThrow(`${join(dir, 'metadata.json')}: preprocessing.inputWidth × inputHeight is 64×64, but the model was trained at ${W}×${H}`);

    unlinkSync(join(dir, FEATURE_EXTRACTOR_DIR, 'weights.bin'));
    await expect(loadPosterClassifier(dir)).rejects.toThrow(`${join(dir, FEATURE_EXTRACTOR_DIR, 'weights.bin')}: listed in metadata.json but missing`);
  });

  it('with testTimeMirror, scores a poster by the head\'s mean over it and its mirror image; fusion still reads the poster\'s own features', async () => {
    const head = createFeatureHead({ featureDim: extractor.featureDim, hiddenUnits: 32, seed: 5 });
    const dir = join(root, 'pretrained-mirror');
    await savePosterClassifier(dir, {
      model: head, featureExtractor: extractor, films: fixtureFilms(),
      metadata: fixtureMetadata({ name: 'poster-pretrained', variant: 'pretrained', preprocessing: { ...posterPreprocessing(extractor, { testTimeMirror: true }) } }),
    });
    const flat = new Uint8Array(2 * W * H * 3);
    pixels.forEach((p, i) => flat.set(p, i * W * H * 3));
    const direct = await extractor.extract(flat);
    const mirrored = await extractor.extract(flat, { flip: true });
    const expected = tf.tidy(() => tf.div(tf.add(head.predict(tf.tensor2d(direct, [2, DIM])) as tf.Tensor, head.predict(tf.tensor2d(mirrored, [2, DIM])) as tf.Tensor), 2).dataSync());
    const plainOnly = tf.tidy(() => (head.predict(tf.tensor2d(direct, [2, DIM])) as tf.Tensor).dataSync());
    head.dispose();
    const classifier = await loadPosterClassifier(dir);
    expect(classifier.metadata.preprocessing['testTimeMirror']).toBe(true);
    const both = await classifier.predictWithFeatures(pixels);
    Array.from(both.probabilities).forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 6));
    expect(Array.from(both.probabilities).some((p, i) => Math.abs(p - plainOnly[i]!) > 1e-6)).toBe(true);
    expect(Array.from(both.features)).toEqual(Array.from(direct));
    classifier.dispose();

    resealModelDir(dir, (m) => (m['preprocessing'] = { ...(m['preprocessing'] as object), testTimeMirror: 'yes' }));
    await expect(loadPosterClassifier(dir)).rejects.toThrow(/preprocessing\.testTimeMirror must be true or false, got "yes"/);
  });
});
