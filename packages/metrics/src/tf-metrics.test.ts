import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { precisionMetric, recallMetric } from './tf-metrics.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const value = (t: tf.Tensor) => {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
};

describe('precisionMetric / recallMetric', () => {
  it('threshold sigmoid outputs at 0.5 and count over the whole batch', () => {
    // Predicted (p ≥ 0.5): [1 1 0], [1 1 0] → 4 predicted; labels [1 0 1], [0 1 0] → 3 positives; hits (0,0), (1,1).
    const yTrue = tf.tensor2d([[1, 0, 1], [0, 1, 0]]);
    const yPred = tf.tensor2d([[0.9, 0.6, 0.4], [0.7, 0.5, 0.1]]);
    const before = tf.memory().numTensors;
    expect(value(precisionMetric(yTrue, yPred))).toBeCloseTo(2 / 4, 6);
    expect(value(recallMetric(yTrue, yPred))).toBeCloseTo(2 / 3, 6);
    expect(tf.memory().numTensors).toBe(before); // nothing leaked
    tf.dispose([yTrue, yPred]);
  });

  it('return 0 rather than NaN when nothing is predicted or nothing is positive', () => {
    const zeros = tf.zeros([2, 3]);
    const ones = tf.ones([2, 3]);
    const low = tf.fill([2, 3], 0.2);
    expect(value(precisionMetric(ones, low))).toBe(0);
    expect(value(recallMetric(zeros, low))).toBe(0);
    tf.dispose([zeros, ones, low]);
  });

  it('appear as precision / recall (and val_…) in model.fit logs', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, activation: 'sigmoid', inputShape: [4] })] });
    model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: [precisionMetric, recallMetric] });
    const x = tf.randomUniform([8, 4], 0, 1, 'float32', 1);
    const y = tf.tensor2d(Array.from({ length: 8 }, (_, i) => [i % 2, (i >> 1) % 2, 1]));
    const history = await model.fit(x, y, { epochs: 1, batchSize: 4, validationData: [x, y], verbose: 0 });
    expect(Object.keys(history.history).sort()).toEqual(['loss', 'precision', 'recall', 'val_loss', 'val_precision', 'val_recall']);
    for (const values of Object.values(history.history)) expect(Number.isFinite(values[0] as number)).toBe(true);
    tf.dispose([x, y]);
    model.dispose();
  });
});
