import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { FastBiLSTM } from './bilstm-layer.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('FastBiLSTM', () => {
  for (const returnSequences of [true, false]) {
    for (const masked of [false, true]) {
      it(`matches tf.layers.bidirectional(lstm) in outputs and gradients (returnSequences ${returnSequences}, mask ${masked})`, () => {
        const ref = tf.layers.bidirectional({
          layer: tf.layers.lstm({ units: 5, returnSequences, recurrentActivation: 'sigmoid' }) as tf.RNN,
          mergeMode: 'concat',
        });
        const fast = new FastBiLSTM({ units: 5, returnSequences });
        const x = tf.randomNormal([3, 7, 4], 0, 1, 'float32', 7);
        const mask = masked ? tf.tensor2d([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]]) : undefined;
        ref.apply(x);
        fast.apply(x);
        fast.setWeights(ref.getWeights()); // same weight order as the Bidirectional wrapper
        const yRef = ref.call(x, { mask }) as tf.Tensor;
        const yFast = fast.call(x, { mask }) as tf.Tensor;
        expect(yFast.shape).toEqual(yRef.shape);
        expect(maxAbsDiff(yRef, yFast)).toBeLessThan(1e-5);

        const weights = tf.randomNormal(yRef.shape, 0, 1, 'float32', 3);
        const loss = (layer: tf.layers.Layer) => () => tf.sum(tf.mul(layer.call(x, { mask }) as tf.Tensor, weights)) as tf.Scalar;
        const vars = (layer: tf.layers.Layer) => layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
        const gRef = Object.values(tf.variableGrads(loss(ref), vars(ref)).grads);
        const gFast = Object.values(tf.variableGrads(loss(fast), vars(fast)).grads);
        expect(gFast).toHaveLength(6);
        gRef.forEach((g, i) => expect(maxAbsDiff(g, gFast[i]!)).toBeLessThan(1e-5));
        const dxRef = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(ref.call(xx, { mask }) as tf.Tensor, weights)))(x);
        const dxFast = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(fast.call(xx, { mask }) as tf.Tensor, weights)))(x);
        expect(maxAbsDiff(dxRef, dxFast)).toBeLessThan(1e-5);
        tf.dispose([x, weights, yRef, yFast, dxRef, dxFast, ...gRef, ...gFast, ...(mask ? [mask] : [])]);
        ref.dispose();
        fast.dispose();
      });
    }
  }

  it('does not leak tensors in inference or training steps', () => {
    const fast = new FastBiLSTM({ units: 4, returnSequences: true });
    const x = tf.randomNormal([2, 6, 3]);
    const mask = tf.tensor2d([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]);
    fast.apply(x);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      fast.call(x, { mask });
    });
    expect(tf.memory().numTensors).toBe(before);
    const opt = tf.train.adam(0.01);
    const step = () => opt.minimize(() => tf.sum(fast.call(x, { mask }) as tf.Tensor) as tf.Scalar);
    step(); // creates the optimizer's slots
    const afterFirst = tf.memory().numTensors;
    step();
    step();
    expect(tf.memory().numTensors).toBe(afterFirst);
    opt.dispose();
    tf.dispose([x, mask]);
    fast.dispose();
  });
});
