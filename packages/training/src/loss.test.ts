import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@filmgenre/tf-runtime';
import { positiveClassWeights, weightedBinaryCrossentropy } from './loss.js';

beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
});

describe('positiveClassWeights', () => {
  it('grows with rarity, respects strength and the cap, and ignores empty genres', () => {
    expect(positiveClassWeights([50, 10, 0, 1], 100, 1, 20)).toEqual([1, 9, 1, 20]);
    expect(positiveClassWeights([10], 100, 0.5)[0]).toBeCloseTo(3, 6);
    expect(positiveClassWeights([10], 100, 0)).toEqual([1]);
  });
});

describe('weightedBinaryCrossentropy', () => {
  it('equals Keras binary cross-entropy when every weight is 1', () => {
    const yTrue = tf.tensor2d([[1, 0], [0, 1]]);
    const yPred = tf.tensor2d([[0.9, 0.2], [0.3, 0.6]]);
    const expected = -(Math.log(0.9) + Math.log(0.8) + Math.log(0.7) + Math.log(0.6)) / 4;
    expect(weightedBinaryCrossentropy([1, 1])(yTrue, yPred).dataSync()[0]).toBeCloseTo(expected, 5);
    expect(tf.metrics.binaryCrossentropy(yTrue, yPred).mean().dataSync()[0]).toBeCloseTo(expected, 5);
  });

  it('scales only the positive terms of a genre', () => {
    const yTrue = tf.tensor2d([[1, 0], [0, 1]]);
    const yPred = tf.tensor2d([[0.9, 0.2], [0.3, 0.6]]);
    const expected = -(3 * Math.log(0.9) + Math.log(0.8) + Math.log(0.7) + Math.log(0.6)) / 4;
    expect(weightedBinaryCrossentropy([3, 1])(yTrue, yPred).dataSync()[0]).toBeCloseTo(expected, 5);
  });
});
