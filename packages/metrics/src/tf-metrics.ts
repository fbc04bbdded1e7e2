import * as tf from '@tensorflow/tfjs';

/** Threshold of the training-time metrics, as Keras' Precision/Recall defaults. */
export const TRAINING_METRIC_THRESHOLD = 0.5;

type MetricFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;

// tfjs-layers names a custom metric after the function's `name` ("precision" → logs "precision"
// and "val_precision"), so the names are set explicitly rather than left to the variable names.
function named(name: string, fn: MetricFn): MetricFn {
  Object.defineProperty(fn, 'name', { value: name });
  return fn;
}

function counts(yTrue: tf.Tensor, yPred: tf.Tensor): { tp: tf.Scalar; predicted: tf.Scalar; actual: tf.Scalar } {
  const truth = tf.cast(tf.greaterEqual(yTrue, 0.5), 'float32');
  const pred = tf.cast(tf.greaterEqual(yPred, TRAINING_METRIC_THRESHOLD), 'float32');
  return { tp: tf.sum(tf.mul(truth, pred)), predicted: tf.sum(pred), actual: tf.sum(truth) };
}

/**
 * Micro precision over a batch with probabilities thresholded at 0.5 (p ≥ 0.5 counts as predicted),
 * 0 when nothing is predicted. tfjs' own `tf.metrics.precision` compares predictions with exactly 1,
 * so on sigmoid outputs it is almost always 0.
 *
 * Use in `model.compile({ metrics: [precisionMetric, recallMetric] })`; the epoch logs then carry
 * `precision`, `recall`, `val_precision`, `val_recall`. Like every tfjs/Keras-1 style metric, the
 * epoch value is the mean of per-batch values, not the precision of the whole epoch: use
 * evaluateMultiLabel() on the full predictions for reported numbers.
 */
export const precisionMetric: MetricFn = named('precision', (yTrue, yPred) =>
  tf.tidy(() => {
    const { tp, predicted } = counts(yTrue, yPred);
    return tf.where(tf.greater(predicted, 0), tf.div(tp, tf.maximum(predicted, 1)), tf.scalar(0)) as tf.Scalar;
  }),
);

/** Micro recall over a batch at threshold 0.5, 0 when the batch has no positive label. See precisionMetric. */
export const recallMetric: MetricFn = named('recall', (yTrue, yPred) =>
  tf.tidy(() => {
    const { tp, actual } = counts(yTrue, yPred);
    return tf.where(tf.greater(actual, 0), tf.div(tp, tf.maximum(actual, 1)), tf.scalar(0)) as tf.Scalar;
  }),
);
