import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IMAGES_DIR, resolveDatasetDir } from '@filmgenre/core';
import { decodePoster } from '@filmgenre/data-images';
import { fileSystemIO, initBackend } from '@filmgenre/tf-runtime';
import { FEATURE_EXTRACTOR_SPEC_JSON, PosterFeatureExtractor, resolveFeatureSpec } from './feature-extractor.js';
import { extractPosterFeatures } from './poster-features.js';

// Small, 1:2 inputs keep the test quick; the posters are 150×300 (W×H).
const W = 64;
const H = 128;
const POSTERS = ['tt0084058', 'tt0084867', 'tt0085121'];
const posterPath = (id: string) => join(resolveDatasetDir(), IMAGES_DIR, `${id}.jpg`);
let root: string;
let keras: PosterFeatureExtractor;
let images: tf.Tensor4D;

beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
  const fetchSpy = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('network access during extractor load'));
  keras = await PosterFeatureExtractor.create({ trunk: 'mobilenet_v2', nodes: ['block_10_expand_relu', 'block_10'], pooling: ['mean', 'max'], inputWidth: W, inputHeight: H });
  expect(fetchSpy).not.toHaveBeenCalled();
  fetchSpy.mockRestore();
  root = mkdtempSync(join(tmpdir(), 'model-cnn-features-'));
  const pixels = await Promise.all(POSTERS.map((id) => decodePoster(posterPath(id), { width: W, height: H })));
  const flat = new Uint8Array(POSTERS.length * W * H * 3);
  pixels.forEach((p, i) => flat.set(p, i * W * H * 3));
  images = tf.tidy(() => tf.div(tf.tensor4d(flat, [POSTERS.length, H, W, 3], 'int32').toFloat(), 255) as tf.Tensor4D);
});
afterAll(() => {
  keras?.dispose();
  images?.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

const run = (e: PosterFeatureExtractor, x: tf.Tensor4D, flip = false) => tf.tidy(() => e.extract(x, { flip }).dataSync() as Float32Array);
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('PosterFeatureExtractor: configurable trunk, nodes, pooling and input size', () => {
  it('concatenates mean and max pools of several ImageNet-pure MobileNetV2 nodes, non-square input', () => {
    // block_10 expansion: 64 × 6 = 384 channels; block_10 output (its projection): 96.
    expect(keras.featureDim).toBe((384 + 96) * 2);
    expect(keras.resolvedNodes).toEqual(['block_10_expand_relu', 'block_10_project_BN']);
    expect([keras.inputWidth, keras.inputHeight]).toEqual([W, H]);
    expect(() => keras.inputSize).toThrow(/not square/);
    const f = run(keras, images);
    expect(f).toHaveLength(POSTERS.length * 960);
    expect(f.every(Number.isFinite)).toBe(true);
    // Layout [node1 mean, node1 max, node2 mean, node2 max]: a ReLU6 max is ≥ its mean, within [0, 6].
    const row = f.subarray(0, 960);
    for (let c = 0; c < 384; c++) {
      expect(row[384 + c]!).toBeGreaterThanOrEqual(row[c]! - 1e-6);
      expect(row[384 + c]!).toBeLessThanOrEqual(6 + 1e-6);
    }
    // Batch composition does not change a poster's features.
    const alone = run(keras, images.slice([1, 0, 0, 0], [1, H, W, 3]));
    expect(maxDiff(alone, f.subarray(960, 1920))).toBeLessThan(1e-4);
  });

  it('mirrors posters left-right on request, exactly as flipping the pixels first', () => {
    const flipped = run(keras, images, true);
    const byHand = run(keras, tf.tidy(() => tf.reverse(images, 2) as tf.Tensor4D));
    expect(maxDiff(flipped, byHand)).toBeLessThan(1e-5);
    expect(maxDiff(flipped, run(keras, images))).toBeGreaterThan(1e-3);
  });

  it('pools blocks of the 1.4-width graph by alias, and InceptionV3 mixed5 (768-d)', async () => {
    const mid = await PosterFeatureExtractor.create({ trunk: 'mobilenet_v2_mid', nodes: ['block_10', 'block_13_expand'], inputWidth: W, inputHeight: H });
    const inception = await PosterFeatureExtractor.create({ trunk: 'inception_v3', nodes: ['mixed5'], inputWidth: 80, inputHeight: 160 });
    try {
      // 1.4 × 96 = 134.4 → 136 channels out of block 10; block 13 expands 136 × 6 = 816.
      expect(mid.featureDim).toBe(136 + 816);
      expect(run(mid, images).every(Number.isFinite)).toBe(true);
      expect(inception.featureDim).toBe(768);
      const x = tf.tidy(() => tf.image.resizeBilinear(images, [160, 80]) as tf.Tensor4D);
      expect(run(inception, x).every(Number.isFinite)).toBe(true);
      x.dispose();
    } finally {
      mid.dispose();
      inception.dispose();
    }
  });

  it('has an identity that changes with every setting that changes the features', async () => {
    const variants = [
      keras.spec,
      { ...keras.spec, inputWidth: 96, inputHeight: 192 },
      { ...keras.spec, pooling: ['mean'] as const },
      { ...keras.spec, nodes: ['block_10'] },
      { ...keras.spec, inputRange: 'unit' as const },
    ];
    const ids: string[] = [];
    for (const spec of variants) {
      const e = await PosterFeatureExtractor.create({ ...spec, pooling: [...spec.pooling] });
      ids.push(e.identity);
      e.dispose();
    }
    expect(ids[0]).toBe(keras.identity);
    expect(new Set(ids).size).toBe(variants.length);
  });

  it('rejects unknown nodes, bad sizes and a range the graph applies itself', async () => {
    await expect(PosterFeatureExtractor.create({ trunk: 'mobilenet_v2', nodes: ['block_99'] })).rejects.toThrow(/no layer 'block_99'/);
    await expect(PosterFeatureExtractor.create({ trunk: 'mobilenet_v2_mid', nodes: ['nope'] })).rejects.toThrow(/no node for 'nope'/);
    expect(() => resolveFeatureSpec({ trunk: 'mobilenet_v2', inputWidth: 100 })).toThrow(/multiple of 16/);
    expect(resolveFeatureSpec({ trunk: 'mobilenet_v2', inputWidth: 112, inputHeight: 224 }).inputWidth).toBe(112);
    expect(() => resolveFeatureSpec({ trunk: 'mobilenet_v2_mid', inputWidth: 112 })).toThrow(/multiple of 32/);
    expect(() => resolveFeatureSpec({ trunk: 'inception_v3', inputWidth: 60 })).toThrow(/\[75, 512\]/);
    expect(() => resolveFeatureSpec({ trunk: 'mobilenet_v2_mid', inputRange: 'symmetric' })).toThrow(/scales its input itself/);
  });

  it('saves and reloads a non-default extractor with its spec: identical features', async () => {
    const dir = join(root, 'saved');
    keras.save(dir);
    expect(JSON.parse(readFileSync(join(dir, FEATURE_EXTRACTOR_SPEC_JSON), 'utf8'))).toEqual(keras.spec);
    const stored = JSON.parse(readFileSync(join(dir, FEATURE_EXTRACTOR_SPEC_JSON), 'utf8'));
    const loaded = await PosterFeatureExtractor.fromArtifacts(await fileSystemIO(dir).load!(), stored);
    try {
      expect(loaded.identity).toBe(keras.identity);
      expect(maxDiff(run(loaded, images), run(keras, images))).toBe(0);
    } finally {
      loaded.dispose();
    }
  });
});

describe('extractPosterFeatures (decode + batches + on-disk cache)', () => {
  it('gives the extractor\'s features for poster files, cached == uncached, flips cached apart', async () => {
    const paths = POSTERS.map(posterPath);
    const cacheDir = join(root, 'cache');
    const direct = run(keras, images);
    const uncached = await extractPosterFeatures(keras, paths, { batchSize: 2 });
    expect(maxDiff(uncached, direct)).toBeLessThan(1e-5);
    const first = await extractPosterFeatures(keras, paths, { cacheDir, batchSize: 2 });
    const progress = vi.fn();
    const second = await extractPosterFeatures(keras, paths, { cacheDir, onProgress: progress });
    expect(progress).not.toHaveBeenCalled();
    expect(maxDiff(first, second)).toBe(0);
    expect(maxDiff(first, uncached)).toBe(0);
    const flipped = await extractPosterFeatures(keras, paths, { cacheDir, flip: true });
    expect(maxDiff(flipped, run(keras, images, true))).toBeLessThan(1e-5);
    expect(readdirSync(cacheDir)).toHaveLength(2);
  });

  it('reports a missing or undecodable poster through onBad and keeps the others; throws naming the file without it', async () => {
    const cacheDir = join(root, 'cache-bad');
    const missing = join(root, 'no-such-poster.jpg');
    const garbage = join(root, 'garbage.jpg');
    writeFileSync(garbage, 'not an image');
    const bad = vi.fn();
    const f = await extractPosterFeatures(keras, [posterPath(POSTERS[0]!), missing, garbage], { cacheDir, onBad: bad });
    expect(bad.mock.calls.map((c) => c[0])).toEqual([1, 2]);
    expect(bad.mock.calls[0]![1]).toMatch(/no-such-poster\.jpg/);
    const dim = keras.featureDim;
    expect(maxDiff(f.subarray(0, dim), run(keras, images).subarray(0, dim))).toBeLessThan(1e-5);
    expect(f.subarray(dim).every((v) => v === 0)).toBe(true);
    await expect(extractPosterFeatures(keras, [missing], { cacheDir })).rejects.toThrow(/no-such-poster\.jpg/);
  });

  it('recomputes a poster whose bytes changed instead of serving the old row', async () => {
    const cacheDir = join(root, 'cache-bytes');
    const bytes = readFileSync(posterPath(POSTERS[0]!));
    await extractPosterFeatures(keras, [new Uint8Array(bytes)], { cacheDir });
    const edited = await (await import('sharp')).default(bytes).flop().jpeg({ quality: 90 }).toBuffer();
    const progress = vi.fn();
    const f = await extractPosterFeatures(keras, [new Uint8Array(edited)], { cacheDir, onProgress: progress });
    expect(progress).toHaveBeenCalledTimes(1);
    expect(f.every(Number.isFinite)).toBe(true);
  });
});
