import * as tf from '@tensorflow/tfjs';
import { NUM_GENRES } from '@filmgenre/core';
import { z } from 'zod';
import { GatedMultimodalUnit } from './gmu.js';

export const JointFusionOptionsSchema = z.object({
  imageFeatureDim: z.int().positive(),
  textFeatureDim: z.int().positive(),
  hiddenUnits: z.int().positive().default(128),
  dropout: z.number().min(0).lt(1).default(0.3),
  kind: z.enum(['concat', 'gmu']).default('gmu'),
  numGenres: z.int().positive().default(NUM_GENRES),
}).strict();
export type JointFusionOptions = z.output<typeof JointFusionOptionsSchema>;
export type JointFusionOptionsInput = z.input<typeof JointFusionOptionsSchema>;

export const IMAGE_FEATURES_INPUT = 'image_features';
export const TEXT_FEATURES_INPUT = 'text_features';

/**
 * Joint model over the two component models' feature vectors (inputs in the order [image, text]):
 * 'concat' = concatenate → dense ReLU; 'gmu' = gated multimodal unit. Then dropout → sigmoid genres.
 */
export function createJointFusionModel(input: JointFusionOptionsInput): tf.LayersModel {
  const parsed = JointFusionOptionsSchema.safeParse(input);
  if (!parsed.success) {
    throw new RangeError(`invalid joint fusion options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`);
  }
  const o = parsed.data;
  const image = tf.input({ shape: [o.imageFeatureDim], name: IMAGE_FEATURES_INPUT });
  const text = tf.input({ shape: [o.textFeatureDim], name: TEXT_FEATURES_INPUT });
  const hidden = o.kind === 'gmu'
    ? new GatedMultimodalUnit({ units: o.hiddenUnits, name: 'gmu' }).apply([image, text])
    : tf.layers.dense({ units: o.hiddenUnits, activation: 'relu', name: 'hidden' }).apply(
        tf.layers.concatenate({ name: 'concat' }).apply([image, text]),
      );
  const dropped = tf.layers.dropout({ rate: o.dropout, name: 'dropout' }).apply(hidden as tf.SymbolicTensor);
  const out = tf.layers.dense({ units: o.numGenres, activation: 'sigmoid', name: 'genres' }).apply(dropped) as tf.SymbolicTensor;
  return tf.model({ inputs: [image, text], outputs: out, name: `fusion_${o.kind}` });
}
