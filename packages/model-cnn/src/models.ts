import * as tf from '@tensorflow/tfjs';
import { NUM_GENRES } from '@filmgenre/core';
import { z } from 'zod';

type Initializer = ReturnType<typeof tf.initializers.heNormal>;
type Regularizer = ReturnType<typeof tf.regularizers.l2>;

export const POSTER_VARIANTS = ['study', 'residual', 'pretrained'] as const;
export type PosterVariant = (typeof POSTER_VARIANTS)[number];

/** Name of the layer whose output is the poster feature vector used for fusion. */
export const FEATURES_LAYER = 'poster_features';
export const OUTPUT_LAYER = 'genres';

export const PosterCnnOptionsSchema = z.object({
  variant: z.enum(['study', 'residual']).default('study'),
  /** Side of the square input; three 2× downsamplings need a multiple of 8. */
  imageSize: z.number().int().min(8).max(512).refine((s) => s % 8 === 0, 'must be a multiple of 8').default(64),
  dropout: z.number().min(0).max(0.9).default(0.3),
  denseUnits: z.number().int().min(1).max(4096).default(256),
  /** Channels of the three stages (study: two 3×3 convs each; residual: one block each). */
  filters: z.tuple([z.number().int().min(1), z.number().int().min(1), z.number().int().min(1)]).default([32, 64, 128]),
  /** L2 weight decay on conv and dense kernels (0 = off, as in the study). */
  l2: z.number().min(0).max(1).default(0),
  /** study only: 'flatten' as in the study, or global average pooling (40× fewer dense weights at 64 px). */
  pooling: z.enum(['flatten', 'gap']).default('flatten'),
  /** study only: BatchNormalization after each conv (the study had none; residual always uses it). */
  batchNorm: z.boolean().default(false),
  /** Moving-average momentum of BatchNormalization statistics; lower settles faster on short runs. */
  batchNormMomentum: z.number().gt(0).lt(1).default(0.99),
  numGenres: z.number().int().min(1).default(NUM_GENRES),
  seed: z.number().int().optional(),
}).strict();
export type PosterCnnOptions = z.input<typeof PosterCnnOptionsSchema>;
export type ResolvedPosterCnnOptions = z.output<typeof PosterCnnOptionsSchema>;

export const FeatureHeadOptionsSchema = z.object({
  featureDim: z.number().int().min(1),
  /** 0 = plain logistic regression on the features. */
  hiddenUnits: z.number().int().min(0).max(4096).default(256),
  dropout: z.number().min(0).max(0.9).default(0.5),
  /** Dropout on the features themselves: 5k posters are few for 1792 inputs. */
  inputDropout: z.number().min(0).max(0.9).default(0.2),
  l2: z.number().min(0).max(1).default(1e-4),
  numGenres: z.number().int().min(1).default(NUM_GENRES),
  seed: z.number().int().optional(),
}).strict();
export type FeatureHeadOptions = z.input<typeof FeatureHeadOptionsSchema>;

/** Parses options, turning zod issues into one readable message. */
function parseOptions<S extends z.ZodType>(schema: S, options: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(options ?? {});
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`invalid ${what} options: ${details}`);
  }
  return parsed.data;
}

export function resolvePosterCnnOptions(options: PosterCnnOptions = {}): ResolvedPosterCnnOptions {
  return parseOptions(PosterCnnOptionsSchema, options, 'poster CNN');
}

/** Seeded initialisers make tests and runs reproducible; each layer gets its own seed. */
function initialiser(seed: number | undefined, counter: { n: number }): Initializer {
  return tf.initializers.heNormal(seed === undefined ? {} : { seed: seed + counter.n++ });
}

function outputInit(seed: number | undefined, counter: { n: number }): Initializer {
  return tf.initializers.glorotUniform(seed === undefined ? {} : { seed: seed + counter.n++ });
}

function regulariser(l2: number): Regularizer | undefined {
  return l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined;
}

/** Builds the from-scratch poster CNN ('study' or 'residual'); not compiled (the trainer chooses the optimiser). */
export function createPosterCnn(options: PosterCnnOptions = {}): tf.LayersModel {
  const o = resolvePosterCnnOptions(options);
  return o.variant === 'study' ? studyCnn(o) : residualCnn(o);
}

function studyCnn(o: ResolvedPosterCnnOptions): tf.LayersModel {
  const counter = { n: 0 };
  const reg = regulariser(o.l2);
  const input = tf.input({ shape: [o.imageSize, o.imageSize, 3], name: 'poster' });
  let x: tf.SymbolicTensor = input;
  o.filters.forEach((filters, stage) => {
    for (let j = 0; j < 2; j++) {
      const name = `conv${stage + 1}_${j + 1}`;
      x = tf.layers.conv2d({
        filters, kernelSize: 3, padding: 'same', name, useBias: !o.batchNorm,
        activation: o.batchNorm ? 'linear' : 'relu', kernelInitializer: initialiser(o.seed, counter), kernelRegularizer: reg,
      }).apply(x) as tf.SymbolicTensor;
      if (o.batchNorm) {
        x = tf.layers.batchNormalization({ name: `${name}_bn`, momentum: o.batchNormMomentum }).apply(x) as tf.SymbolicTensor;
        x = tf.layers.reLU({ name: `${name}_relu` }).apply(x) as tf.SymbolicTensor;
      }
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, name: `pool${stage + 1}` }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.dropout({ rate: o.dropout, name: 'conv_dropout', seed: o.seed }).apply(x) as tf.SymbolicTensor;
  x = (o.pooling === 'flatten' ? tf.layers.flatten({ name: 'flatten' }) : tf.layers.globalAveragePooling2d({ name: 'gap' }))
    .apply(x) as tf.SymbolicTensor;
  return denseTop(input, x, o.denseUnits, o.dropout, o.numGenres, reg, o.seed, counter, 'poster_cnn_study');
}

/**
 * Small ResNet: 3×3 stem, then one basic block per stage (two 3×3 convs + BN, 1×1 projection shortcut
 * where the shape changes, stride 2 from the second stage on), global average pooling, dense top.
 */
function residualCnn(o: ResolvedPosterCnnOptions): tf.LayersModel {
  const counter = { n: 0 };
  const reg = regulariser(o.l2);
  const input = tf.input({ shape: [o.imageSize, o.imageSize, 3], name: 'poster' });
  const conv = (x: tf.SymbolicTensor, filters: number, kernelSize: number, strides: number, name: string) =>
    tf.layers.conv2d({
      filters, kernelSize, strides, padding: 'same', useBias: false, name,
      kernelInitializer: initialiser(o.seed, counter), kernelRegularizer: reg,
    }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor, name: string) =>
    tf.layers.batchNormalization({ name, momentum: o.batchNormMomentum }).apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor, name: string) => tf.layers.reLU({ name }).apply(x) as tf.SymbolicTensor;

  let x = relu(bn(conv(input, o.filters[0], 3, 1, 'stem_conv'), 'stem_bn'), 'stem_relu');
  // Halve once up front so the three blocks run at 1/2, 1/4, 1/8 resolution like the study's pools.
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'stem_pool' }).apply(x) as tf.SymbolicTensor;
  let channels = o.filters[0];
  o.filters.forEach((filters, stage) => {
    const strides = stage === 0 ? 1 : 2;
    const p = `block${stage + 1}`;
    let y = relu(bn(conv(x, filters, 3, strides, `${p}_conv1`), `${p}_bn1`), `${p}_relu1`);
    y = bn(conv(y, filters, 3, 1, `${p}_conv2`), `${p}_bn2`);
    const shortcut = strides !== 1 || channels !== filters ? bn(conv(x, filters, 1, strides, `${p}_proj`), `${p}_proj_bn`) : x;
    x = relu(tf.layers.add({ name: `${p}_add` }).apply([y, shortcut]) as tf.SymbolicTensor, `${p}_out`);
    channels = filters;
  });
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: o.dropout, name: 'gap_dropout', seed: o.seed }).apply(x) as tf.SymbolicTensor;
  return denseTop(input, x, o.denseUnits, o.dropout, o.numGenres, reg, o.seed, counter, 'poster_cnn_residual');
}

/** dense ReLU (the fusion features) → dropout → dense sigmoid, one probability per genre. */
function denseTop(
  input: tf.SymbolicTensor, x: tf.SymbolicTensor, units: number, dropout: number, numGenres: number,
  reg: Regularizer | undefined, seed: number | undefined, counter: { n: number }, name: string,
): tf.LayersModel {
  let h = tf.layers.dense({
    units, activation: 'relu', name: FEATURES_LAYER, kernelInitializer: initialiser(seed, counter), kernelRegularizer: reg,
  }).apply(x) as tf.SymbolicTensor;
  h = tf.layers.dropout({ rate: dropout, name: 'features_dropout', seed }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({
    units: numGenres, activation: 'sigmoid', name: OUTPUT_LAYER, kernelInitializer: outputInit(seed, counter),
  }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name });
}

/**
 * A head over frozen-extractor features: [dropout → dense ReLU] → dropout → dense sigmoid. The trainer's
 * pretrained heads are training's createFrozenFeatureHead; this one serves tests and fixtures.
 */
export function createFeatureHead(options: FeatureHeadOptions): tf.LayersModel {
  const o = parseOptions(FeatureHeadOptionsSchema, options, 'feature head');
  const counter = { n: 0 };
  const reg = regulariser(o.l2);
  const input = tf.input({ shape: [o.featureDim], name: 'features' });
  const x = tf.layers.dropout({ rate: o.inputDropout, name: 'input_dropout', seed: o.seed }).apply(input) as tf.SymbolicTensor;
  if (o.hiddenUnits === 0) {
    const out = tf.layers.dense({
      units: o.numGenres, activation: 'sigmoid', name: OUTPUT_LAYER, kernelInitializer: outputInit(o.seed, counter), kernelRegularizer: reg,
    }).apply(x) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out, name: 'poster_head_pretrained' });
  }
  return denseTop(input, x, o.hiddenUnits, o.dropout, o.numGenres, reg, o.seed, counter, 'poster_head_pretrained');
}

/**
 * The sub-model from the input to the penultimate representation (the input of the final dense layer,
 * i.e. the `poster_features` activations; dropout is the identity at inference) for fusion.
 */
export function posterFeatureModel(model: tf.LayersModel): tf.LayersModel {
  const last = model.layers[model.layers.length - 1];
  if (!last || last.getClassName() !== 'Dense') throw new Error(`model '${model.name}' does not end in a Dense layer`);
  const features = last.input;
  if (Array.isArray(features)) throw new Error(`model '${model.name}': final layer has several inputs`);
  return tf.model({ inputs: model.inputs, outputs: features, name: `${model.name}_features` });
}

/** Dimension of `posterFeatureModel(model)`'s output. */
export function posterFeatureDim(model: tf.LayersModel): number {
  const last = model.layers[model.layers.length - 1]!;
  const shape = (last.input as tf.SymbolicTensor).shape;
  return shape[shape.length - 1] as number;
}
