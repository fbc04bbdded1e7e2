import * as tf from '@tensorflow/tfjs';
import { hashString, seedMathRandom } from '@filmgenre/core';
import type { FeatureMatrix } from './features.js';

/**
 * A small head trained on frozen features: one-vs-rest logistic regression ('linear': one dense
 * sigmoid layer) or one hidden ReLU layer with dropout ('mlp'); Adam, binary cross-entropy,
 * optionally weighted for positives; early stopping on an inner validation slice of the training
 * folds (never the scored fold), keeping the best epoch's weights.
 */
export interface HeadConfig {
  kind: 'linear' | 'mlp';
  hidden?: number;
  dropout?: number;
  /** Dropout on the input features (both kinds). */
  inputDropout?: number;
  learningRate?: number;
  batchSize?: number;
  maxEpochs?: number;
  patience?: number;
  /** Smallest drop of the inner validation loss that counts as progress (default 1e-4). */
  minDelta?: number;
  /** Positive-class weight per genre: (negatives/positives)^strength, at most 10; 0 = unweighted. */
  positiveWeightStrength?: number;
  l2?: number;
  /** z-score the features with the training rows' statistics (default true; off for TF-IDF rows). */
  standardize?: boolean;
  /**
   * Start the output biases at each genre's log-odds in the training rows. Without it a linear head
   * starts at p = 0.5 for every genre and early stopping can halt it long before the biases reach
   * the ~10% base rate (its out-of-fold probabilities then averaged 0.2–0.5).
   */
  priorBias?: boolean;
  /** Heads with different seeds (and inner validation slices) averaged: a bagged ensemble. */
  seeds?: number;
}

export function describeHead(h: HeadConfig): string {
  const parts = [h.kind === 'linear' ? 'LR' : `MLP ${h.hidden ?? 512}`];
  if (h.kind === 'mlp') parts.push(`drop ${h.dropout ?? 0.5}`);
  if (h.inputDropout) parts.push(`in-drop ${h.inputDropout}`);
  if (h.positiveWeightStrength) parts.push(`pos-w ^${h.positiveWeightStrength}`);
  if (h.l2) parts.push(`l2 ${h.l2}`);
  if ((h.seeds ?? 1) > 1) parts.push(`×${h.seeds} seeds`);
  return parts.join(', ');
}

/** Fold of each film: a seeded hash of its Id, so a film's fold never depends on the others. */
export function assignFolds(ids: readonly string[], k: number, seed: number): Int32Array {
  return Int32Array.from(ids, (id) => hashString(`${seed}:fold:${id}`) % k);
}

export interface CvOptions {
  labels: Uint8Array;
  numGenres: number;
  folds: Int32Array;
  ids: readonly string[];
  /** Mirrored-poster features, added as extra training rows (and averaged into predictions if `tta`). */
  augment?: FeatureMatrix;
  tta?: boolean;
  seed?: number;
  /** Features that depend on the training rows (TF-IDF): built per fold. */
  featuresFor?: (trainRows: number[]) => FeatureMatrix;
  log?: (line: string) => void;
}

export interface CvResult {
  /** Out-of-fold probabilities, n × k. */
  oof: Float32Array;
  /** Best epoch per fold (first seed). */
  epochs: number[];
  seconds: number;
}

function gather(m: FeatureMatrix, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * m.dim);
  rows.forEach((r, j) => out.set(m.data.subarray(r * m.dim, (r + 1) * m.dim), j * m.dim));
  return out;
}

function gatherLabels(labels: Uint8Array, k: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * k);
  rows.forEach((r, j) => {
    for (let g = 0; g < k; g++) out[j * k + g] = labels[r * k + g]!;
  });
  return out;
}

/** Column means and standard deviations of the given rows (std floored so constant columns stay 0). */
function standardiser(m: FeatureMatrix, rows: readonly number[]): { mean: Float32Array; scale: Float32Array } {
  const mean = new Float64Array(m.dim);
  const sq = new Float64Array(m.dim);
  for (const r of rows) {
    for (let d = 0; d < m.dim; d++) {
      const v = m.data[r * m.dim + d]!;
      mean[d]! += v;
      sq[d]! += v * v;
    }
  }
  const scale = new Float32Array(m.dim);
  const mu = new Float32Array(m.dim);
  for (let d = 0; d < m.dim; d++) {
    mu[d] = mean[d]! / rows.length;
    const variance = Math.max(0, sq[d]! / rows.length - mu[d]! ** 2);
    scale[d] = 1 / Math.max(Math.sqrt(variance), 1e-6);
  }
  return { mean: mu, scale };
}

/** The head's weights as plain variables: a hand-written loop is several times faster than model.fit here. */
interface Head {
  vars: tf.Variable[];
  forward: (x: tf.Tensor2D, training: boolean) => tf.Tensor2D;
  dispose: () => void;
}

function glorot(fanIn: number, fanOut: number): tf.Variable {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return tf.variable(tf.randomUniform([fanIn, fanOut], -limit, limit, 'float32', Math.floor(Math.random() * 2 ** 31)));
}

function buildHead(dim: number, k: number, h: HeadConfig, priorLogits?: Float32Array): Head {
  const inputDrop = h.inputDropout ?? 0;
  const drop = (x: tf.Tensor2D, rate: number, training: boolean) =>
    training && rate > 0 ? (tf.dropout(x, rate, undefined, Math.floor(Math.random() * 2 ** 31)) as tf.Tensor2D) : x;
  if (h.kind === 'mlp') {
    const hidden = h.hidden ?? 512;
    const w1 = glorot(dim, hidden);
    const b1 = tf.variable(tf.zeros([hidden]));
    const w2 = glorot(hidden, k);
    const b2 = tf.variable(priorLogits ? tf.tensor1d(priorLogits) : tf.zeros([k]));
    return {
      vars: [w1, b1, w2, b2],
      forward: (x, training) => {
        const a = tf.relu(tf.add(tf.matMul(drop(x, inputDrop, training), w1), b1)) as tf.Tensor2D;
        return tf.add(tf.matMul(drop(a, h.dropout ?? 0.5, training), w2), b2) as tf.Tensor2D;
      },
      dispose: () => tf.dispose([w1, b1, w2, b2]),
    };
  }
  const w = glorot(dim, k);
  const b = tf.variable(priorLogits ? tf.tensor1d(priorLogits) : tf.zeros([k]));
  return {
    vars: [w, b],
    forward: (x, training) => tf.add(tf.matMul(drop(x, inputDrop, training), w), b) as tf.Tensor2D,
    dispose: () => tf.dispose([w, b]),
  };
}

/** Mean binary cross-entropy from logits, positives weighted per genre. */
function bceFromLogits(logits: tf.Tensor2D, y: tf.Tensor2D, weights: tf.Tensor1D | undefined): tf.Scalar {
  // log σ(z) = −softplus(−z), log(1 − σ(z)) = −softplus(z)
  const pos = tf.mul(y, tf.softplus(tf.neg(logits)));
  const neg = tf.mul(tf.sub(1, y), tf.softplus(logits));
  return tf.mean(tf.add(weights ? tf.mul(pos, weights) : pos, neg)) as tf.Scalar;
}

/**
 * k-fold cross-validation of a head on one feature matrix: returns out-of-fold probabilities.
 * Per fold: standardise with the training rows' statistics, hold out 10% of them (seeded by Id) for
 * early stopping, train, predict the held-out fold with the best epoch.
 */
export async function crossValidate(features: FeatureMatrix | undefined, head: HeadConfig, options: CvOptions): Promise<CvResult> {
  const start = performance.now();
  const { labels, numGenres: k, folds, ids } = options;
  const n = folds.length;
  const numFolds = Math.max(...folds) + 1;
  const oof = new Float32Array(n * k);
  const epochs: number[] = [];
  const seeds = head.seeds ?? 1;
  const batchSize = head.batchSize ?? 128;
  const maxEpochs = head.maxEpochs ?? 60;
  const patience = head.patience ?? 5;
  for (let f = 0; f < numFolds; f++) {
    const trainAll: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < n; i++) (folds[i] === f ? test : trainAll).push(i);
    const m = options.featuresFor ? options.featuresFor(trainAll) : features!;
    const { mean, scale } = head.standardize === false
      ? { mean: new Float32Array(m.dim), scale: new Float32Array(m.dim).fill(1) }
      : standardiser(m, trainAll);
    const standardise = (data: Float32Array, rows: number) => {
      for (let r = 0; r < rows; r++) for (let d = 0; d < m.dim; d++) data[r * m.dim + d] = (data[r * m.dim + d]! - mean[d]!) * scale[d]!;
      return data;
    };
    let weights: Float32Array | undefined;
    if (head.positiveWeightStrength) {
      weights = new Float32Array(k);
      for (let g = 0; g < k; g++) {
        let pos = 0;
        for (const i of trainAll) pos += labels[i * k + g]!;
        weights[g] = pos > 0 ? Math.min(10, ((trainAll.length - pos) / pos) ** head.positiveWeightStrength) : 1;
      }
    }
    const testX = tf.tensor2d(standardise(gather(m, test), test.length), [test.length, m.dim]);
    const testFlipX = options.augment && options.tta ? tf.tensor2d(standardise(gather(options.augment, test), test.length), [test.length, m.dim]) : undefined;
    const sum = new Float32Array(test.length * k);
    for (let s = 0; s < seeds; s++) {
      const seed = (options.seed ?? 0) * 1000 + f * 10 + s;
      seedMathRandom(hashString(`head:${seed}`));
      const inner: number[] = [];
      const fit: number[] = [];
      for (const i of trainAll) (hashString(`${seed}:inner:${ids[i]}`) % 10 === 0 ? inner : fit).push(i);
      const fitRows = options.augment ? [...fit, ...fit] : fit;
      const fitData = new Float32Array(fitRows.length * m.dim);
      fitData.set(gather(m, fit), 0);
      if (options.augment) fitData.set(gather(options.augment, fit), fit.length * m.dim);
      const x = tf.tensor2d(standardise(fitData, fitRows.length), [fitRows.length, m.dim]) as tf.Tensor2D;
      const y = tf.tensor2d(gatherLabels(labels, k, fitRows), [fitRows.length, k]) as tf.Tensor2D;
      const vx = tf.tensor2d(standardise(gather(m, inner), inner.length), [inner.length, m.dim]);
      const vy = tf.tensor2d(gatherLabels(labels, k, inner), [inner.length, k]);
      let priorLogits: Float32Array | undefined;
      if (head.priorBias) {
        priorLogits = new Float32Array(k);
        for (let g = 0; g < k; g++) {
          let pos = 0;
          for (const i of fit) pos += labels[i * k + g]!;
          const rate = Math.min(1 - 1e-3, Math.max(1e-3, pos / fit.length));
          priorLogits[g] = Math.log(rate / (1 - rate));
        }
      }
      const model = buildHead(m.dim, k, head, priorLogits);
      const optimizer = tf.train.adam(head.learningRate ?? 1e-3);
      const weightTensor = weights ? tf.tensor1d(weights) : undefined;
      const l2 = head.l2 ?? 0;
      let best = Infinity;
      let bestEpoch = 0;
      let bestWeights: tf.Tensor[] = model.vars.map((v) => v.clone());
      const rows = fitRows.length;
      for (let epoch = 1; epoch <= maxEpochs; epoch++) {
        const order = tf.util.createShuffledIndices(rows);
        for (let b0 = 0; b0 < rows; b0 += batchSize) {
          const idx = tf.tensor1d(Int32Array.from(order.subarray(b0, Math.min(rows, b0 + batchSize))), 'int32');
          optimizer.minimize(() => {
            const xb = tf.gather(x, idx) as tf.Tensor2D;
            const yb = tf.gather(y, idx) as tf.Tensor2D;
            const loss = bceFromLogits(model.forward(xb, true), yb, weightTensor);
            return l2 > 0 ? (tf.add(loss, tf.mul(l2, tf.addN(model.vars.filter((v) => v.rank === 2).map((v) => tf.sum(tf.square(v)))))) as tf.Scalar) : loss;
          }, false, model.vars);
          idx.dispose();
        }
        const loss = tf.tidy(() => bceFromLogits(model.forward(vx, false), vy, undefined).dataSync()[0]!);
        if (loss < best - (head.minDelta ?? 1e-4)) {
          best = loss;
          bestEpoch = epoch;
          tf.dispose(bestWeights);
          bestWeights = model.vars.map((v) => v.clone());
        } else if (epoch - bestEpoch >= patience) break;
      }
      model.vars.forEach((v, j) => v.assign(bestWeights[j]!));
      tf.dispose(bestWeights);
      optimizer.dispose();
      weightTensor?.dispose();
      if (s === 0) epochs.push(bestEpoch);
      const predicted = tf.tidy(() => {
        const p = tf.sigmoid(model.forward(testX, false));
        return testFlipX ? tf.div(tf.add(p, tf.sigmoid(model.forward(testFlipX, false))), 2) : p;
      });
      const values = predicted.dataSync();
      for (let j = 0; j < values.length; j++) sum[j]! += values[j]! / seeds;
      predicted.dispose();
      model.dispose();
      tf.dispose([x, y, vx, vy]);
    }
    test.forEach((i, j) => oof.set(sum.subarray(j * k, (j + 1) * k), i * k));
    options.log?.(`[cv]   fold ${f + 1}/${numFolds}: best epoch ${epochs[epochs.length - 1]}, ${((performance.now() - start) / 1000).toFixed(0)} s so far`);
    tf.dispose([testX, ...(testFlipX ? [testFlipX] : [])]);
  }
  return { oof, epochs, seconds: (performance.now() - start) / 1000 };
}
