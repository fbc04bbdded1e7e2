import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGES_DIR, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { decodePoster, pixelsToBatchTensor } from '@filmgenre/data-images';
import { ENCODER_RUNTIMES, type EncoderRuntime } from '@filmgenre/onnx-runtime';
import { initBackend } from '@filmgenre/tf-runtime';
import { DEFAULT_FEATURE_SPEC, PosterFeatureExtractor, readNsfwjsFiles, type FeatureExtractorSpec } from './feature-extractor.js';
import { ancestors, layersConfig } from './trunk-plan.js';

/**
 * The compiled trunk against what the features were before it: the nsfwjs Keras layers model cut
 * at the spec's nodes, run by tf.loadLayersModel (BatchNormalization, ReLU and ZeroPadding2D as
 * separate layers), input scaled and pooled by tensor ops. Parity, per feature row:
 *   max |compiled − reference| ≤ 1e-4 · max |reference|
 * i.e. 1e-4 relative to the row's largest feature (features are ReLU6 means and maxima in [0, 6],
 * or block outputs of either sign; a near-zero feature has no meaningful relative error of its own).
 */
const TOLERANCE = 1e-4;
const RUNTIMES = ENCODER_RUNTIMES.filter((r): r is EncoderRuntime => r !== 'auto');

/** The original layers model, cut to the layers `outputs` need, its input size freed. */
async function originalModel(trunk: 'mobilenet_v2' | 'inception_v3', outputs: string[]): Promise<tf.LayersModel> {
  const { modelJson, weights } = readNsfwjsFiles(trunk);
  const config = layersConfig(modelJson);
  const keep = ancestors(config, outputs);
  config.layers = config.layers.filter((l) => keep.has(l.name));
  config.output_layers = outputs.map((name) => [name, 0, 0]);
  for (const layer of config.layers) if (layer.class_name === 'InputLayer') layer.config.batch_input_shape = [null, null, null, 3];
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest!.flatMap((g) => g.weights), weightData: weights.slice().buffer,
  }), { strict: false });
}

/** Today's features by the original model: [0,1] → [-1,1], the layers, then each output mean- and max-pooled. */
async function referenceFeatures(model: tf.LayersModel, pixels: Uint8Array, spec: FeatureExtractorSpec, flip: boolean): Promise<Float32Array> {
  const features = tf.tidy(() => {
    const x = tf.sub(tf.mul(pixelsToBatchTensor(pixels, { width: spec.inputWidth, height: spec.inputHeight }, { flip }), 2), 1);
    const maps = [model.apply(x, { training: false })].flat() as tf.Tensor4D[];
    return tf.concat(maps.flatMap((m) => spec.pooling.map((p) => (p === 'mean' ? tf.mean(m, [1, 2]) : tf.max(m, [1, 2])))), 1);
  });
  const data = (await features.data()) as Float32Array;
  features.dispose();
  return data;
}

/** max over rows of max|a − b| / max|b|. */
function worstRowError(a: Float32Array, b: Float32Array, dim: number): number {
  expect(a).toHaveLength(b.length);
  let worst = 0;
  for (let r = 0; r < b.length / dim; r++) {
    let diff = 0;
    let scale = 0;
    for (let i = r * dim; i < (r + 1) * dim; i++) {
      diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
      scale = Math.max(scale, Math.abs(b[i]!));
    }
    expect(scale).toBeGreaterThan(0);
    worst = Math.max(worst, diff / scale);
  }
  return worst;
}

async function posterPixels(ids: string[], width: number, height: number): Promise<Uint8Array> {
  const per = width * height * 3;
  const flat = new Uint8Array(ids.length * per);
  const decoded = await Promise.all(ids.map((id) => decodePoster(join(resolveDatasetDir(), IMAGES_DIR, `${id}.jpg`), { width, height })));
  decoded.forEach((p, i) => flat.set(p, i * per));
  return flat;
}

let ids: string[];
beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
  // A small slice of the real posters: every 500th film of the dataset.
  ids = readDataset(resolveDatasetDir()).films.filter((_, i) => i % 500 === 0).map((f) => f.id);
});

describe('compiled MobileNetV2 trunk (the default features) equals the original layers model', () => {
  const spec = DEFAULT_FEATURE_SPEC;
  let original: tf.LayersModel;
  let pixels: Uint8Array;
  const expected: Record<'plain' | 'flip', Float32Array> = { plain: new Float32Array(), flip: new Float32Array() };
  beforeAll(async () => {
    original = await originalModel('mobilenet_v2', ['block_10_expand_relu', 'block_10_project_BN']);
    pixels = await posterPixels(ids, spec.inputWidth, spec.inputHeight);
    expected.plain = await referenceFeatures(original, pixels, spec, false);
    expected.flip = await referenceFeatures(original, pixels, spec, true);
  });
  afterAll(() => original?.dispose());

  it.each(RUNTIMES)('on %s, plain and mirrored, within 1e-4 of each row\'s largest feature', async (runtime) => {
    const extractor = await PosterFeatureExtractor.create(spec, { runtime });
    try {
      expect(extractor.runtime).toMatch(new RegExp(`^${runtime} `));
      expect(extractor.featureDim).toBe(960);
      expect(ids.length).toBeGreaterThanOrEqual(10);
      for (const flip of [false, true] as const) {
        const error = worstRowError(await extractor.extract(pixels, { flip }), expected[flip ? 'flip' : 'plain'], 960);
        expect(error).toBeLessThan(TOLERANCE);
      }
    } finally {
      extractor.dispose();
    }
  });
});

describe('compiled InceptionV3 trunk (Concatenate, pools, BatchNormalization without scale) equals the original', () => {
  it.each(RUNTIMES)('on %s, mixed5 and an earlier block, mean- and max-pooled', async (runtime) => {
    const spec: FeatureExtractorSpec = { trunk: 'inception_v3', nodes: ['mixed2', 'mixed5'], pooling: ['mean', 'max'], inputWidth: 96, inputHeight: 192, inputRange: 'symmetric' };
    const original = await originalModel('inception_v3', spec.nodes);
    const extractor = await PosterFeatureExtractor.create(spec, { runtime });
    try {
      const pixels = await posterPixels(ids.slice(0, 3), spec.inputWidth, spec.inputHeight);
      expect(extractor.featureDim).toBe((288 + 768) * 2);
      const error = worstRowError(await extractor.extract(pixels), await referenceFeatures(original, pixels, spec, false), extractor.featureDim);
      expect(error).toBeLessThan(TOLERANCE);
    } finally {
      extractor.dispose();
      original.dispose();
    }
  });
});
