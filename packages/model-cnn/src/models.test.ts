import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@filmgenre/tf-runtime';
import { createFeatureHead, createPosterCnn, posterFeatureDim, posterFeatureModel, resolvePosterCnnOptions } from './models.js';

beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
});

function dispose(model: tf.LayersModel): void {
  model.dispose();
}

describe('createPosterCnn: study', () => {
  it('has the study layout and the hand-computed parameter count (64 px, flatten)', () => {
    const model = createPosterCnn({ variant: 'study' });
    expect(model.inputs[0]!.shape).toEqual([null, 64, 64, 3]);
    expect(model.outputs[0]!.shape).toEqual([null, 25]);
    // convs (3×3, +bias): 3·32+32·32 → 32·64+64·64 → 64·128+128·128, ×9 weights each, + biases.
    const convs = 9 * (3 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128) + (32 + 32 + 64 + 64 + 128 + 128);
    expect(convs).toBe(287_008);
    const dense = 8 * 8 * 128 * 256 + 256; // flatten of 8×8×128 → 256
    const out = 256 * 25 + 25;
    expect(model.countParams()).toBe(convs + dense + out);
    expect(model.countParams()).toBe(2_390_841);
    const convLayers = model.layers.filter((l) => l.getClassName() === 'Conv2D');
    expect(convLayers.map((l) => (l.getConfig() as { filters: number }).filters)).toEqual([32, 32, 64, 64, 128, 128]);
    expect(model.layers.filter((l) => l.getClassName() === 'MaxPooling2D')).toHaveLength(3);
    expect(model.layers.filter((l) => l.getClassName() === 'Dropout')).toHaveLength(2);
    dispose(model);
  });

  it('global average pooling instead of flatten: 287,008 + 128·256+256 + 6,425', () => {
    const model = createPosterCnn({ variant: 'study', pooling: 'gap' });
    expect(model.countParams()).toBe(287_008 + 33_024 + 6_425);
    dispose(model);
  });

  it('batchNorm drops the conv biases and adds 4 parameters per channel', () => {
    const model = createPosterCnn({ variant: 'study', batchNorm: true });
    const channels = 32 + 32 + 64 + 64 + 128 + 128;
    expect(model.countParams()).toBe(2_390_841 - channels + 4 * channels);
    dispose(model);
  });

  it('follows imageSize, filters, denseUnits and numGenres', () => {
    const model = createPosterCnn({ variant: 'study', imageSize: 16, filters: [4, 8, 8], denseUnits: 16, numGenres: 4 });
    expect(model.inputs[0]!.shape).toEqual([null, 16, 16, 3]);
    expect(model.outputs[0]!.shape).toEqual([null, 4]);
    const convs = 9 * (3 * 4 + 4 * 4 + 4 * 8 + 8 * 8 + 8 * 8 + 8 * 8) + (4 + 4 + 8 + 8 + 8 + 8);
    expect(model.countParams()).toBe(convs + (2 * 2 * 8 * 16 + 16) + (16 * 4 + 4));
    dispose(model);
  });
});

describe('createPosterCnn: residual', () => {
  it('builds residual blocks with 1×1 projection shortcuts and global average pooling', () => {
    const model = createPosterCnn({ variant: 'residual' });
    expect(model.inputs[0]!.shape).toEqual([null, 64, 64, 3]);
    expect(model.outputs[0]!.shape).toEqual([null, 25]);
    const names = model.layers.map((l) => l.name);
    expect(names).toEqual(expect.arrayContaining(['block1_add', 'block2_proj', 'block3_proj', 'gap']));
    // Stage 1 keeps 32 channels at stride 1, so its shortcut is the identity.
    expect(names).not.toContain('block1_proj');
    expect((model.getLayer('block3_proj').getConfig() as { kernelSize: number[] }).kernelSize).toEqual([1, 1]);
    // stem 3·32·9 + BN; blocks (two 3×3 convs + BN each, projections 1×1 + BN); dense top.
    const bn = (c: number) => 4 * c;
    const stem = 9 * 3 * 32 + bn(32);
    const block1 = 2 * 9 * 32 * 32 + 2 * bn(32);
    const block2 = 9 * 32 * 64 + 9 * 64 * 64 + 32 * 64 + 3 * bn(64);
    const block3 = 9 * 64 * 128 + 9 * 128 * 128 + 64 * 128 + 3 * bn(128);
    expect(model.countParams()).toBe(stem + block1 + block2 + block3 + (128 * 256 + 256) + (256 * 25 + 25));
    expect(model.getLayer('gap').outputShape).toEqual([null, 128]);
    dispose(model);
  });
});

describe('createFeatureHead', () => {
  it('maps 1792-d features to 25 sigmoid outputs through a hidden layer', () => {
    const head = createFeatureHead({ featureDim: 1792 });
    expect(head.inputs[0]!.shape).toEqual([null, 1792]);
    expect(head.outputs[0]!.shape).toEqual([null, 25]);
    expect(head.countParams()).toBe(1792 * 256 + 256 + 256 * 25 + 25);
    expect(posterFeatureDim(head)).toBe(256);
    head.dispose();
  });

  it('hiddenUnits 0 is a logistic regression whose features are its inputs', () => {
    const head = createFeatureHead({ featureDim: 1792, hiddenUnits: 0 });
    expect(head.countParams()).toBe(1792 * 25 + 25);
    expect(posterFeatureDim(head)).toBe(1792);
    head.dispose();
  });
});

describe('options validation', () => {
  it('fills defaults', () => {
    expect(resolvePosterCnnOptions({})).toMatchObject({
      variant: 'study', imageSize: 64, dropout: 0.3, denseUnits: 256, filters: [32, 64, 128], l2: 0,
      pooling: 'flatten', batchNorm: false, numGenres: 25,
    });
  });

  it.each([
    [{ imageSize: 60 }, /imageSize: must be a multiple of 8/],
    [{ imageSize: 64.5 }, /imageSize/],
    [{ variant: 'vgg' }, /variant/],
    [{ dropout: 1.5 }, /dropout/],
    [{ filters: [32, 64] }, /filters/],
    [{ denseUnits: 0 }, /denseUnits/],
    [{ l2: -1 }, /l2/],
    [{ imagesize: 64 }, /imagesize|Unrecognized/i],
  ])('rejects %j', (options, message) => {
    expect(() => createPosterCnn(options as never)).toThrow(/invalid poster CNN options/);
    expect(() => createPosterCnn(options as never)).toThrow(message);
  });

  it('rejects a feature head without featureDim', () => {
    expect(() => createFeatureHead({} as never)).toThrow(/invalid feature head options: featureDim/);
  });
});

describe('posterFeatureModel', () => {
  it('exposes the penultimate dense activations of a trained CNN', () => {
    const model = createPosterCnn({ imageSize: 16, filters: [4, 4, 4], denseUnits: 12, seed: 1 });
    const features = posterFeatureModel(model);
    expect(features.outputs[0]!.shape).toEqual([null, 12]);
    tf.tidy(() => {
      const x = tf.randomUniform([3, 16, 16, 3], 0, 1, 'float32', 2);
      const f = features.predict(x) as tf.Tensor;
      expect(f.shape).toEqual([3, 12]);
      // The features feed the output layer: applying it by hand reproduces the model's output.
      const [kernel, bias] = model.getLayer('genres').getWeights();
      const manual = tf.sigmoid(tf.add(tf.matMul(f as tf.Tensor2D, kernel as tf.Tensor2D), bias!));
      const direct = model.predict(x) as tf.Tensor;
      expect(tf.max(tf.abs(tf.sub(manual, direct))).dataSync()[0]).toBeLessThan(1e-5);
    });
    model.dispose();
  });
});
