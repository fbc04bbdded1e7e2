import * as tf from '@tensorflow/tfjs';
import { hashString, NUM_GENRES } from '@filmgenre/core';
import { crossFittedEvaluation, type MultiLabelReport, type ThresholdStrategy } from '@filmgenre/metrics';
import { join } from 'node:path';
import { crossFitHeads, ensembleHeads } from './cross-fit.js';
import type { EpochLog } from './fit.js';
import { publish, type RecipeContext, type TrainedModel } from './recipe.js';

/**
 * The defaults of every head over frozen features (posters' MobileNetV2 features, overviews'
 * USE-lite embeddings), chosen by 5-fold cross-validation on the trainer's folds
 * (docs/benchmarks/encoders.md): an MLP of 512 with dropout 0.5 on z-scored features, unweighted
 * loss, five bagged heads per fold, one shared threshold. Patience 2 rather than 4: a quarter fewer
 * epochs, the fusion's out-of-fold F1 as good (docs/benchmarks/training-speed.md, "Cheaper heads").
 */
export const FROZEN_HEAD_DEFAULTS = {
  epochs: 40, batchSize: 256, learningRate: 2e-3, patience: 2, classWeightStrength: 0, thresholds: 'shared' as ThresholdStrategy,
  hiddenUnits: 512, dropout: 0.5, bags: 5,
};
export type FrozenHeadSettings = typeof FROZEN_HEAD_DEFAULTS;

/** The recipe's options over the defaults: a field left undefined takes FROZEN_HEAD_DEFAULTS'. */
export function frozenHeadSettings(options: { [K in keyof FrozenHeadSettings]?: FrozenHeadSettings[K] | undefined }): FrozenHeadSettings {
  const defined = Object.fromEntries(Object.entries(options).filter(([key, value]) => value !== undefined && key in FROZEN_HEAD_DEFAULTS));
  return { ...FROZEN_HEAD_DEFAULTS, ...defined };
}

export interface FrozenHeadOptions {
  inputDim: number;
  /** 0: a logistic regression on the features (no hidden layer, no dropout). */
  hiddenUnits: number;
  dropout: number;
  seed: number;
  /** Model name, prefixing its layers' names, so the heads can live side by side in one ensemble. */
  name: string;
  /** The hidden layer's initialiser: the poster heads were cross-validated with He's, the others with Glorot's. */
  hiddenInitializer?: 'he-normal' | 'glorot-uniform';
  numGenres?: number;
}

/** The head every frozen-feature model trains: features → dense ReLU → dropout → one sigmoid per genre. */
export function createFrozenFeatureHead(options: FrozenHeadOptions): tf.LayersModel {
  const { name, seed } = options;
  const input = tf.input({ shape: [options.inputDim], name: `${name}_features` });
  let dropped: tf.SymbolicTensor = input;
  if (options.hiddenUnits > 0) {
    const hiddenInit = options.hiddenInitializer === 'he-normal' ? tf.initializers.heNormal({ seed }) : tf.initializers.glorotUniform({ seed });
    const hidden = tf.layers.dense({ units: options.hiddenUnits, activation: 'relu', name: `${name}_hidden`, kernelInitializer: hiddenInit }).apply(input);
    dropped = tf.layers.dropout({ rate: options.dropout, name: `${name}_dropout`, seed }).apply(hidden) as tf.SymbolicTensor;
  }
  const out = tf.layers.dense({
    units: options.numGenres ?? NUM_GENRES, activation: 'sigmoid', name: `${name}_genres`, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
  }).apply(dropped) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name });
}

export interface FrozenFeatureModelArgs {
  /** The model's key: its directory under the models dir, its log prefix and its heads' names. */
  key: string;
  variant: string;
  /** n×dim frozen features, one row per film, in the order of `ids`. */
  features: Float32Array;
  dim: number;
  /** The same films' features of a mirrored view, drawn with even odds per epoch. */
  mirrored?: Float32Array;
  /** Train on `mirrored` half the time (default true when it is given). */
  trainOnMirrored?: boolean;
  /** Score each film by the heads' mean over its features and `mirrored` (what the shipped model must then do too). */
  mirrorAtTest?: boolean;
  ids: string[];
  /** n×25 0/1 labels. */
  labels: Float32Array;
  /** Each film's fold (the run's). */
  folds: Int32Array;
  settings: FrozenHeadSettings;
  hiddenInitializer?: FrozenHeadOptions['hiddenInitializer'];
  /** What makes two trainings the same, for checkpoints: the recipe's options, the split, digests of the inputs. */
  identity: Record<string, unknown>;
  /** Writes the model directory from the trained ensemble (its heads averaged) and what the cross-fitting measured. */
  save(dir: string, trained: CrossFittedModel): Promise<unknown>;
  /** When the model's training began (Date.now()), if before the heads' (e.g. with computing the features). */
  started?: number;
}

export interface CrossFittedModel {
  /** One model averaging every head, taking the raw features: what ships. */
  model: tf.LayersModel;
  /** n×25: each film predicted by the heads that did not train on its fold. */
  outOfFold: Float32Array;
  /** Out-of-fold scores, each fold's decisions at thresholds tuned on the other folds. */
  report: MultiLabelReport;
  /** The thresholds shipped, tuned on every film's out-of-fold prediction. */
  thresholds: number[];
  heads: number;
  bestEpochs: number[];
  histories: EpochLog[][];
  seconds: number;
}

/**
 * The frozen-feature recipe: features → cross-fitted bagged heads → out-of-fold evaluation with
 * cross-fitted thresholds → the ensemble saved as `<modelsDir>/<key>`. Every film's prediction comes
 * from heads that never saw it; those predictions choose the thresholds and are what fusion fits on.
 */
export async function trainFrozenFeatureModel(ctx: RecipeContext, args: FrozenFeatureModelArgs): Promise<TrainedModel> {
  const started = args.started ?? Date.now();
  const { key, settings, dim, labels, folds, ids } = args;
  const cross = await crossFitHeads({
    name: key, features: args.features, dim, ...(args.mirrored ? { mirrored: args.mirrored } : {}), ...(args.mirrorAtTest ? { mirrorAtTest: true } : {}),
    ...(args.trainOnMirrored === false ? { trainOnMirrored: false } : {}), labels, folds,
    createHead: (fold, bag) => createFrozenFeatureHead({
      inputDim: dim, hiddenUnits: settings.hiddenUnits, dropout: settings.dropout, seed: hashString(`${ctx.seed}:${key}:${fold}:${bag}`),
      name: `${key}_head_f${fold}_b${bag}`, ...(args.hiddenInitializer ? { hiddenInitializer: args.hiddenInitializer } : {}),
    }),
    bags: settings.bags, standardize: true, learningRate: settings.learningRate, classWeightStrength: settings.classWeightStrength,
    epochs: settings.epochs, batchSize: settings.batchSize, patience: settings.patience,
    seed: ctx.seed, checkpointDir: ctx.checkpointDir, resume: ctx.resume, rng: ctx.rng, signal: ctx.signal, log: ctx.log, identity: args.identity,
  });
  // The ensemble holds the heads as layers and disposes them with itself.
  const model = ensembleHeads(cross.heads, dim, `${key}_heads`);
  try {
    const { report, thresholds } = crossFittedEvaluation(cross.outOfFold, labels, folds, settings.thresholds);
    const dir = join(ctx.modelsDir, key);
    const seconds = (Date.now() - started) / 1000;
    const trained: CrossFittedModel = {
      model, outOfFold: cross.outOfFold, report, thresholds, heads: cross.heads.length, bestEpochs: cross.bestEpochs, histories: cross.histories, seconds,
    };
    await publish(ctx, () => args.save(dir, trained));
    ctx.log(`[${key}] saved ${dir}: out-of-fold micro-F1 ${report.micro.f1.toFixed(3)}, macro-F1 ${report.macro.f1.toFixed(3)} (thresholds cross-fitted)`);
    return {
      key, variant: args.variant, dir, heldOut: { ids, probabilities: cross.outOfFold, labels },
      outOfSample: { scheme: 'out-of-fold', report }, thresholds, history: cross.histories[0] ?? [], seconds,
    };
  } finally {
    model.dispose();
  }
}
