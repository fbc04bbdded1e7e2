import * as tf from '@tensorflow/tfjs';
import { onnxRuntimeUnavailable } from '@filmgenre/onnx-runtime';
import { initBackend } from '@filmgenre/tf-runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import { baggedHeadsOf, compileFeatureHeads } from './heads.js';

beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
});

const DIM = 12;
const GENRES = 5;

/** Bagged heads as training builds them (training's createFrozenFeatureHead, averaged by its ensemble). */
function baggedHeads(count: number, hiddenUnits: number): tf.LayersModel {
  const input = tf.input({ shape: [DIM] });
  const heads = Array.from({ length: count }, (_, h) => {
    const headInput = tf.input({ shape: [DIM] });
    let x: tf.SymbolicTensor = headInput;
    if (hiddenUnits > 0) {
      x = tf.layers.dense({ units: hiddenUnits, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: h }), biasInitializer: tf.initializers.randomNormal({ seed: 50 + h }) }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.dropout({ rate: 0.5 }).apply(x) as tf.SymbolicTensor;
    }
    const out = tf.layers.dense({ units: GENRES, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: 100 + h }), biasInitializer: tf.initializers.randomNormal({ seed: 150 + h }) }).apply(x) as tf.SymbolicTensor;
    return tf.model({ inputs: headInput, outputs: out, name: `head_${h}` }).apply(input) as tf.SymbolicTensor;
  });
  const output = count === 1 ? heads[0]! : (tf.layers.average().apply(heads) as tf.SymbolicTensor);
  return tf.model({ inputs: input, outputs: output });
}

function rows(n: number): Float32Array {
  let state = 7;
  return Float32Array.from({ length: n * DIM }, () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 2);
}

const onnx = onnxRuntimeUnavailable() === undefined;

describe('compileFeatureHeads', () => {
  it.runIf(onnx).each([
    ['five MLP heads, averaged', 5, 8],
    ['one MLP head', 1, 8],
    ['three logistic regressions, averaged', 3, 0],
  ])('runs %s on onnxruntime with the probabilities tfjs gives', async (_, count, hidden) => {
    const model = baggedHeads(count, hidden);
    const heads = await compileFeatureHeads(model, { runtime: 'onnxruntime' });
    expect(heads.runtime).toBe('onnxruntime');
    for (const n of [1, 7]) {
      const features = rows(n);
      const expected = tf.tidy(() => (model.predict(tf.tensor2d(features, [n, DIM])) as tf.Tensor).dataSync());
      const got = await heads.predict(features, n);
      expect(got).toHaveLength(n * GENRES);
      for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(expected[i]!, 6);
    }
    heads.dispose();
    model.dispose();
  });

  it('leaves a model of another shape to tfjs, and tfjs when asked', async () => {
    const conv = tf.sequential({ layers: [tf.layers.reshape({ targetShape: [DIM, 1], inputShape: [DIM] }), tf.layers.conv1d({ filters: 2, kernelSize: 3 }), tf.layers.flatten(), tf.layers.dense({ units: GENRES, activation: 'sigmoid' })] });
    expect(baggedHeadsOf(conv)).toBeUndefined();
    const relu = tf.sequential({ layers: [tf.layers.dense({ units: GENRES, activation: 'relu', inputShape: [DIM] })] });
    expect(baggedHeadsOf(relu)).toBeUndefined();
    const convHeads = await compileFeatureHeads(conv, { runtime: 'onnxruntime' });
    expect(convHeads.runtime).toBe('tfjs');
    const bagged = baggedHeads(2, 4);
    const onTfjs = await compileFeatureHeads(bagged, { runtime: 'tfjs' });
    expect(onTfjs.runtime).toBe('tfjs');
    const features = rows(3);
    expect(Array.from(await onTfjs.predict(features, 3))).toEqual(Array.from(tf.tidy(() => (bagged.predict(tf.tensor2d(features, [3, DIM])) as tf.Tensor).dataSync())));
    for (const m of [conv, relu, bagged]) m.dispose();
  });

  it.runIf(onnx)('refuses rows that do not match the features given', async () => {
    const model = baggedHeads(2, 4);
    const heads = await compileFeatureHeads(model, { runtime: 'onnxruntime' });
    await expect(heads.predict(rows(2), 3)).rejects.toThrow(/expected 3 rows of 12 features, got 24 values/);
    heads.dispose();
    model.dispose();
  });
});
