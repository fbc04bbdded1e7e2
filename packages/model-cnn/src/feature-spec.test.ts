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
/** The three posters decoded at W×H, RGB uint8 HWC, one after the other. */
let images: Uint8Array;

async function decodeAll(width: number, height: number): Promise<Uint8Array> {
  const pixels = await Promise.all(POSTERS.map((id) => decodePoster(posterPath(id), { width, height })));
  const flat = new Uint8Array(POSTERS.length * width * height * 3);
  pixels.forEach((p, i) => flat.set(p, i * width * height * 3));
  return flat;
}

beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
  const fetchSpy = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('network access during extractor load'));
  keras = await PosterFeatureExtractor.create({ trunk: 'mobilenet_v2', nodes: ['block_10_expand_relu', 'block_10'], pooling: ['mean', 'max'], inputWidth: W, inputHeight: H });
  expect(fetchSpy).not.toHaveBeenCalled();
  fetchSpy.mockRestore();
  root = mkdtempSync(join(tmpdir(), 'model-cnn-features-'));
  images = await decodeAll(W, H);
});
afterAll(() => {
  keras?.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

const run = (e: PosterFeatureExtractor, pixels: Uint8Array, flip = false) => e.extract(pixels, { flip });
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('PosterFeatureExtractor: configurable trunk, nodes, pooling and input size', () => {
  it('concatenates mean and max pools of several ImageNet-pure MobileNetV2 nodes, non-square input', async () => {
    // block_10 expansion: 64 × 6 = 384 channels; block_10 output (its projection): 96.
    expect(keras.featureDim).toBe((384 + 96) * 2);
    expect(keras.resolvedNodes).toEqual(['block_10_expand_relu', 'block_10_project_BN']);
    expect([keras.inputWidth, keras.inputHeight]).toEqual([W, H]);
    expect(() => keras.inputSize).toThrow(/not square/);
    const f = await run(keras, images);
    expect(f).toHaveLength(POSTERS.length * 960);
    expect(f.every(Number.isFinite)).toBe(true);
    // Layout [node1 mean, node1 max, node2 mean, node2 max]: a ReLU6 max is ≥ its mean, within [0, 6].
    const row = f.subarray(0, 960);
    for (let c = 0; c < 384; c++) {
      expect(row[384 + c]!).toBeGreaterThanOrEqual(row[c]! - 1e-6);
      expect(row[384 + c]!).toBeLessThanOrEqual(6 + 1e-6);
    }
    // Batch composition does not change a poster's features.
    const alone = await run(keras, images.subarray(W * H * 3, 2 * W * H * 3));
    expect(maxDiff(alone, f.subarray(960, 1920))).toBeLessThan(1e-4);
  });

  it('mirrors posters left-right on request, exactly as flipping the pixels first', async () => {
    const byHand = new Uint8Array(images.length);
    for (let row = 0; row < POSTERS.length * H; row++) {
      for (let x = 0; x < W; x++) byHand.set(images.subarray((row * W + x) * 3, (row * W + x + 1) * 3), (row * W + W - 1 - x) * 3);
    }
    const flipped = await run(keras, images, true);
    expect(maxDiff(flipped, await run(keras, byHand))).toBe(0);
    expect(maxDiff(flipped, await run(keras, images))).toBeGreaterThan(1e-3);
  });

  it('pools blocks of the 1.4-width graph by alias, and InceptionV3 mixed5 (768-d)', async () => {
    const mid = await PosterFeatureExtractor.create({ trunk: 'mobilenet_v2_mid', nodes: ['block_10', 'block_13_expand'], inputWidth: W, inputHeight: H });
    const inception = await PosterFeatureExtractor.create({ trunk: 'inception_v3', nodes: ['mixed5'], inputWidth: 80, inputHeight: 160 });
    try {
      // 1.4 × 96 = 134.4 → 136 channels out of block 10; block 13 expands 136 × 6 = 816.
      expect(mid.featureDim).toBe((136 + 816) * 2);
      expect(mid.runtime).toMatch(/^tfjs /);
      expect((await run(mid, images)).every(Number.isFinite)).toBe(true);
      expect(inception.featureDim).toBe(768 * 2);
      expect((await run(inception, await decodeAll(80, 160))).every(Number.isFinite)).toBe(true);
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
      expect(maxDiff(await run(loaded, images), await run(keras, images))).toBe(0);
    } finally {
      loaded.dispose();
    }
  });
});

describe('extractPosterFeatures (decode + batches + on-disk cache)', () => {
  it('gives the extractor\'s features for poster files, cached == uncached, flips cached apart', async () => {
    const paths = POSTERS.map(posterPath);
    const cacheDir = join(root, 'cache');
    const direct = await run(keras, images);
    const uncached = await extractPosterFeatures(keras, paths, { batchSize: 2 });
    expect(maxDiff(uncached, direct)).toBeLessThan(1e-5);
    const first = await extractPosterFeatures(keras, paths, { cacheDir, batchSize: 2 });
    const progress = vi.fn();
    const second = await extractPosterFeatures(keras, paths, { cacheDir, onProgress: progress });
    expect(progress).not.toHaveBeenCalled();
    expect(maxDiff(first, second)).toBe(0);
    expect(maxDiff(first, uncached)).toBe(0);
    const flipped = await extractPosterFeatures(keras, paths, { cacheDir, flip: true });
    expect(maxDiff(flipped, await run(keras, images, true))).toBeLessThan(1e-5);
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
    expect(maxDiff(f.subarray(0, dim), (await run(keras, images)).subarray(0, dim))).toBeLessThan(1e-5);
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
