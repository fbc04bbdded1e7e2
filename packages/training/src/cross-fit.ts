import * as tf from '@tensorflow/tfjs';
import { foldRows, hashString, NUM_GENRES } from '@filmgenre/core';
import { join } from 'node:path';
import { fitWithEarlyStopping, type EpochLog, type FitOptions } from './fit.js';
import { compileForTraining, positiveClassWeights } from './loss.js';
import { createEpochBar } from './progress.js';
import { TrainingInterrupted } from './recipe.js';
import { featureRowBatches, pickRows, predictRows } from './rows.js';

export interface CrossFitOptions extends Pick<FitOptions, 'epochs' | 'patience' | 'checkpointDir' | 'resume' | 'identity' | 'rng' | 'signal' | 'log'> {
  /** Log prefix, e.g. `cnn`. */
  name: string;
  /** n×dim frozen features, one row per film. */
  features: Float32Array;
  dim: number;
  /** The same films' features of a mirrored view (posters), drawn with even odds per epoch. */
  mirrored?: Float32Array;
  /** Train on `mirrored` half the time (default true when it is given). */
  trainOnMirrored?: boolean;
  /** Predict each film as the mean of the head over its features and over `mirrored` (test-time augmentation). */
  mirrorAtTest?: boolean;
  /** n×25 0/1 labels. */
  labels: Float32Array;
  /** The fold of each row (core's foldPlan). */
  folds: Int32Array;
  /** A fresh, uncompiled head for one fold and bag; each gets its own name. */
  createHead(fold: number, bag: number): tf.LayersModel;
  /** Heads per fold, each with its own initialisation and early-stopping slice, averaged (default 1). */
  bags?: number;
  learningRate: number;
  classWeightStrength: number;
  batchSize: number;
  /**
   * Train on features z-scored with each head's own training rows, then fold the scaling into the
   * head's first dense layer, so the shipped head still takes the raw features (default false).
   */
  standardize?: boolean;
  /** Share of each fold's training rows kept aside for its early stopping (default 0.1). */
  earlyStoppingFraction?: number;
  seed: number;
}

export interface CrossFitResult {
  /** n×25: each film predicted by the head that did not train on its fold. */
  outOfFold: Float32Array;
  /** The trained heads, folds × bags (the caller disposes them, or ensembles them with ensembleHeads). */
  heads: tf.LayersModel[];
  histories: EpochLog[][];
  bestEpochs: number[];
}

/**
 * Cross-fitting of a small head over frozen features: for each fold, `bags` heads are trained on the
 * other folds (each early-stopped on its own seeded slice of them, never on the fold it will
 * predict) and their average predicts the fold. The out-of-fold predictions are honest estimates for
 * every film: what thresholds, fusion and reported metrics are fitted and measured on. Each head
 * checkpoints like any fit, so a resumed run skips the heads already done.
 */
export async function crossFitHeads(options: CrossFitOptions): Promise<CrossFitResult> {
  const k = NUM_GENRES;
  const n = options.labels.length / k;
  const K = Math.max(...options.folds) + 1;
  const fraction = options.earlyStoppingFraction ?? 0.1;
  if (options.mirrorAtTest && !options.mirrored) throw new RangeError(`${options.name}: mirrorAtTest needs the mirrored view's features`);
  const outOfFold = new Float32Array(n * k);
  const heads: tf.LayersModel[] = [];
  const histories: EpochLog[][] = [];
  const bestEpochs: number[] = [];
  try {
    const bags = options.bags ?? 1;
    // One progress line per head (with an ETA over all of them), not one per epoch of each.
    const progress = createEpochBar(`[${options.name}] heads`, K * bags, { metrics: false });
    for (let fold = 0; fold < K; fold++) {
      const { scored, rest } = foldRows(options.folds, fold);
      const scoredFeatures = pickRows(options.features, options.dim, scored);
      const scoredMirrored = options.mirrorAtTest ? pickRows(options.mirrored!, options.dim, scored) : undefined;
      for (let bag = 0; bag < bags; bag++) {
        const fit: number[] = [];
        const stop: number[] = [];
        for (const i of rest) (hashString(`early-stopping:${options.seed}:${fold}:${bag}:${i}`) / 4294967296 < fraction ? stop : fit).push(i);
        const fitLabels = pickRows(options.labels, k, fit);
        const positives = Array.from({ length: k }, (_, g) => fit.reduce((s, r) => s + options.labels[r * k + g]!, 0));
        const weights = positiveClassWeights(positives, fit.length, options.classWeightStrength);
        const head = options.createHead(fold, bag);
        heads.push(head);
        compileForTraining(head, options.learningRate, weights);
        const scaling = options.standardize ? columnScaling(options.features, options.dim, fit) : undefined;
        const fitFeatures = standardized(pickRows(options.features, options.dim, fit), options.dim, scaling);
        const fitMirrored = options.mirrored && options.trainOnMirrored !== false ? standardized(pickRows(options.mirrored, options.dim, fit), options.dim, scaling) : undefined;
        const stopFeatures = standardized(pickRows(options.features, options.dim, stop), options.dim, scaling);
        const label = bags > 1 ? `${options.name} fold ${fold + 1}/${K} bag ${bag + 1}/${bags}` : `${options.name} fold ${fold + 1}/${K}`;
        const result = await fitWithEarlyStopping(
          {
            name: label,
            model: head,
            stepsPerEpoch: Math.ceil(fit.length / options.batchSize),
            trainBatches: (epoch) => featureRowBatches({
              features: fitFeatures, ...(fitMirrored ? { mirrored: fitMirrored } : {}), labels: fitLabels, dim: options.dim,
              batchSize: options.batchSize, seed: (options.seed * 31 + fold) * 31 + bag, epoch,
            }),
            predictValidation: () => predictRows(head, stopFeatures, options.dim),
            validationLabels: pickRows(options.labels, k, stop),
            positiveWeights: weights,
          },
          {
            epochs: options.epochs, patience: options.patience, checkpointDir: join(options.checkpointDir, `fold-${fold}-bag-${bag}`), resume: options.resume,
            identity: { ...options.identity, fold, folds: K, bag, bags }, ...(options.rng ? { rng: options.rng } : {}),
            ...(options.signal ? { signal: options.signal } : {}), ...(options.log ? { log: options.log } : {}), quiet: true,
          },
        );
        if (result.interrupted) throw new TrainingInterrupted(`${options.name}: stopped in ${label}`);
        if (scaling) foldScalingIntoFirstDense(head, scaling);
        histories.push(result.history);
        bestEpochs.push(result.bestEpoch);
        progress.update(heads.length, {});
        const views = scoredMirrored ? [scoredFeatures, scoredMirrored] : [scoredFeatures];
        for (const view of views) {
          const predicted = await predictRows(head, view, options.dim);
          scored.forEach((row, j) => {
            for (let g = 0; g < k; g++) outOfFold[row * k + g]! += predicted[j * k + g]! / (bags * views.length);
          });
        }
      }
    }
    progress.stop();
  } catch (error) {
    heads.forEach((h) => h.dispose());
    throw error;
  }
  const epochs = [...bestEpochs].sort((a, b) => a - b);
  options.log?.(`[${options.name}] ${heads.length} heads trained; best epochs ${epochs[0]}–${epochs.at(-1)} (median ${epochs[Math.floor(epochs.length / 2)]})`);
  return { outOfFold, heads, histories, bestEpochs };
}

/**
 * One model that averages the heads' probabilities: what a cross-fitted member ships (each film it
 * will meet is scored by every fold's head, as a bagged ensemble). The heads become its layers.
 */
export function ensembleHeads(heads: readonly tf.LayersModel[], dim: number, name = 'head_ensemble'): tf.LayersModel {
  const input = tf.input({ shape: [dim], name: `${name}_features` });
  const outputs = heads.map((head) => head.apply(input) as tf.SymbolicTensor);
  const averaged = outputs.length === 1 ? outputs[0]! : (tf.layers.average({ name: `${name}_mean` }).apply(outputs) as tf.SymbolicTensor);
  return tf.model({ inputs: input, outputs: averaged, name });
}

interface ColumnScaling {
  mean: Float32Array;
  /** 1 / standard deviation (floored, so a constant column stays 0). */
  scale: Float32Array;
}

function columnScaling(features: Float32Array, dim: number, rows: readonly number[]): ColumnScaling {
  const sum = new Float64Array(dim);
  const squares = new Float64Array(dim);
  for (const r of rows) {
    for (let d = 0; d < dim; d++) {
      const v = features[r * dim + d]!;
      sum[d]! += v;
      squares[d]! += v * v;
    }
  }
  const mean = new Float32Array(dim);
  const scale = new Float32Array(dim);
  for (let d = 0; d < dim; d++) {
    mean[d] = sum[d]! / rows.length;
    scale[d] = 1 / Math.max(Math.sqrt(Math.max(0, squares[d]! / rows.length - mean[d]! ** 2)), 1e-6);
  }
  return { mean, scale };
}

function standardized(rows: Float32Array, dim: number, scaling: ColumnScaling | undefined): Float32Array {
  if (!scaling) return rows;
  for (let i = 0; i < rows.length; i++) rows[i] = (rows[i]! - scaling.mean[i % dim]!) * scaling.scale[i % dim]!;
  return rows;
}

/**
 * Makes a head trained on z-scored features take raw ones: its first dense layer computes
 * W·((x − μ)·s) + b = (W·diag(s))·x + (b − W·(μ·s)), exactly, so the scaling costs nothing at serving.
 */
function foldScalingIntoFirstDense(head: tf.LayersModel, scaling: ColumnScaling): void {
  const dense = head.layers.find((layer) => layer.getWeights().length > 0);
  const [kernel, bias] = dense?.getWeights() ?? [];
  const dim = scaling.mean.length;
  if (!dense || !kernel || !bias || kernel.shape.length !== 2 || kernel.shape[0] !== dim) {
    throw new Error(`cannot fold feature scaling into ${head.name}: its first weighted layer is not a dense layer over the ${dim} features`);
  }
  tf.tidy(() => {
    const s = tf.tensor2d(scaling.scale, [dim, 1]);
    const shift = tf.mul(tf.tensor2d(scaling.mean, [1, dim]), tf.tensor2d(scaling.scale, [1, dim]));
    const newKernel = tf.mul(kernel, s);
    const newBias = tf.sub(bias, tf.matMul(shift, kernel).reshape(bias.shape));
    dense.setWeights([newKernel, newBias]);
  });
}
