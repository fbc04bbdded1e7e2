import * as tf from '@tensorflow/tfjs';
import { precisionMetric, recallMetric } from '@filmgenre/metrics';
import { fusedAdam } from '@filmgenre/wasm-kernels';

const EPSILON = 1e-7;

/**
 * Positive-class weight per genre: ((negatives / positives) ^ strength), capped. strength 0 is plain
 * binary cross-entropy; 0.5 (square root) is a common compromise that lifts rare genres' recall
 * without flooding precision. Genres with no positive example get weight 1.
 */
export function positiveClassWeights(positives: readonly number[], total: number, strength: number, maxWeight = 20): number[] {
  return positives.map((p) => {
    if (p <= 0 || strength === 0) return 1;
    return Math.min(maxWeight, Math.max(1, ((total - p) / p) ** strength));
  });
}

/** Binary cross-entropy with a per-genre weight on the positive term, averaged like Keras's BCE. */
export function weightedBinaryCrossentropy(positiveWeights: readonly number[]): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar {
  const weights = tf.keep(tf.tensor1d(positiveWeights as number[]));
  return (yTrue, yPred) =>
    tf.tidy(() => {
      const p = tf.clipByValue(yPred, EPSILON, 1 - EPSILON);
      const positive = tf.mul(tf.mul(yTrue, tf.log(p)), weights);
      const negative = tf.mul(tf.sub(1, yTrue), tf.log(tf.sub(1, p)));
      return tf.neg(tf.mean(tf.add(positive, negative))) as tf.Scalar;
    });
}

/** Positive-class weights from the training films' 0/1 labels (see positiveClassWeights). */
export function classWeightsFor(films: readonly { labels: Uint8Array }[], strength: number): number[] {
  const positives = new Array<number>(films[0]?.labels.length ?? 0).fill(0);
  for (const film of films) film.labels.forEach((y, g) => (positives[g]! += y));
  return positiveClassWeights(positives, films.length, strength);
}

/**
 * Every model trains the same way: Adam (tf.train.adam's algorithm, one fused update per variable
 * on wasm), class-weighted BCE, precision and recall in the epoch logs.
 */
export function compileForTraining(model: tf.LayersModel, learningRate: number, classWeights: readonly number[]): void {
  model.compile({ optimizer: fusedAdam(learningRate), loss: weightedBinaryCrossentropy(classWeights), metrics: [precisionMetric, recallMetric] });
}
