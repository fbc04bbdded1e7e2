import * as tf from '@tensorflow/tfjs';
import { hashString, NUM_GENRES, type StatefulRng } from '@filmgenre/core';
import { join } from 'node:path';
import { fitWithEarlyStopping, type EpochLog } from './fit.js';
import { compileForTraining, positiveClassWeights } from './loss.js';
import { TrainingInterrupted } from './recipe.js';
import { featureRowBatches, pickRows, predictRows } from './rows.js';

export interface CrossFitOptions {
  /** Log prefix, e.g. `cnn`. */
  name: string;
  /** n×dim frozen features, one row per film. */
  features: Float32Array;
  dim: number;
  /** The same films' features of a mirrored view (posters), drawn with even odds per epoch. */
  mirrored?: Float32Array;
  /** n×25 0/1 labels. */
  labels: Float32Array;
  /** The fold of each row (core's foldPlan). */
  folds: Int32Array;
  /** A fresh, uncompiled head for one fold; each fold's head gets its own name. */
  createHead(fold: number): tf.LayersModel;
  learningRate: number;
  classWeightStrength: number;
  epochs: number;
  batchSize: number;
  patience: number;
  /** Share of each fold's training rows kept aside for its early stopping (default 0.1). */
  earlyStoppingFraction?: number;
  seed: number;
  checkpointDir: string;
  resume: boolean;
  identity: Record<string, unknown>;
  rng?: StatefulRng;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface CrossFitResult {
  /** n×25: each film predicted by the head that did not train on its fold. */
  outOfFold: Float32Array;
  /** One trained head per fold (the caller disposes them, or ensembles them with ensembleHeads). */
  heads: tf.LayersModel[];
  histories: EpochLog[][];
  bestEpochs: number[];
}

/**
 * Cross-fitting of a small head over frozen features: for each fold, a head is trained on the other
 * folds (early-stopped on a seeded slice of them, never on the fold it will predict) and predicts
 * its fold. The out-of-fold predictions are honest estimates for every film: what thresholds,
 * fusion and reported metrics are fitted and measured on. Each fold checkpoints like any fit, so a
 * resumed run skips the folds already done.
 */
export async function crossFitHeads(options: CrossFitOptions): Promise<CrossFitResult> {
  const k = NUM_GENRES;
  const n = options.labels.length / k;
  const K = Math.max(...options.folds) + 1;
  const fraction = options.earlyStoppingFraction ?? 0.1;
  const outOfFold = new Float32Array(n * k);
  const heads: tf.LayersModel[] = [];
  const histories: EpochLog[][] = [];
  const bestEpochs: number[] = [];
  try {
    for (let fold = 0; fold < K; fold++) {
      const scored: number[] = [];
      const fit: number[] = [];
      const stop: number[] = [];
      for (let i = 0; i < n; i++) {
        if (options.folds[i] === fold) scored.push(i);
        else if (hashString(`early-stopping:${options.seed}:${fold}:${i}`) / 4294967296 < fraction) stop.push(i);
        else fit.push(i);
      }
      const fitLabels = pickRows(options.labels, k, fit);
      const positives = Array.from({ length: k }, (_, g) => fit.reduce((s, r) => s + options.labels[r * k + g]!, 0));
      const weights = positiveClassWeights(positives, fit.length, options.classWeightStrength);
      const head = options.createHead(fold);
      heads.push(head);
      compileForTraining(head, options.learningRate, weights);
      const fitFeatures = pickRows(options.features, options.dim, fit);
      const fitMirrored = options.mirrored ? pickRows(options.mirrored, options.dim, fit) : undefined;
      const stopFeatures = pickRows(options.features, options.dim, stop);
      const result = await fitWithEarlyStopping(
        {
          name: `${options.name} fold ${fold + 1}/${K}`,
          model: head,
          stepsPerEpoch: Math.ceil(fit.length / options.batchSize),
          trainBatches: (epoch) => featureRowBatches({
            features: fitFeatures, ...(fitMirrored ? { mirrored: fitMirrored } : {}), labels: fitLabels, dim: options.dim,
            batchSize: options.batchSize, seed: options.seed * 31 + fold, epoch,
          }),
          predictValidation: () => predictRows(head, stopFeatures, options.dim),
          validationLabels: pickRows(options.labels, k, stop),
          positiveWeights: weights,
        },
        {
          epochs: options.epochs, patience: options.patience, checkpointDir: join(options.checkpointDir, `fold-${fold}`), resume: options.resume,
          identity: { ...options.identity, fold, folds: K }, ...(options.rng ? { rng: options.rng } : {}),
          ...(options.signal ? { signal: options.signal } : {}), ...(options.log ? { log: options.log } : {}),
        },
      );
      if (result.interrupted) throw new TrainingInterrupted(`${options.name}: stopped in fold ${fold + 1}`);
      histories.push(result.history);
      bestEpochs.push(result.bestEpoch);
      const predicted = await predictRows(head, pickRows(options.features, options.dim, scored), options.dim);
      scored.forEach((row, j) => outOfFold.set(predicted.subarray(j * k, (j + 1) * k), row * k));
    }
  } catch (error) {
    heads.forEach((h) => h.dispose());
    throw error;
  }
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
