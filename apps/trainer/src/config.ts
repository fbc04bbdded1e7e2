import { DatasetOptionsSchema, FoldOptionsSchema } from '@filmgenre/core';
import { BackendOptionSchema } from '@filmgenre/tf-runtime';
import { CommonOptionsSchema } from '@filmgenre/training';
import { z } from 'zod';
import { DEFAULT_MODELS, RECIPES } from './recipes.js';

const KEYS = RECIPES.map((r) => r.key);

const { data, limit, cacheDir } = DatasetOptionsSchema.shape;
const { seed, folds } = FoldOptionsSchema.shape;

/**
 * The trainer's own options for `train` (the run, not the models: those are the recipes'). CLI flags,
 * their help and defaults derive from this schema and from each recipe's options.
 */
export const TrainRunSchema = z.object({
  model: z.string().default(DEFAULT_MODELS.join(','))
    .describe(`which models to train, comma-separated, in this order: ${KEYS.join(', ')}; all: every one`)
    .transform((value) => (value === 'all' ? KEYS : value.split(',').map((key) => key.trim()).filter(Boolean)))
    .refine((keys) => keys.length > 0 && keys.every((key) => KEYS.includes(key)), { message: `must name models among ${KEYS.join(', ')} (or all)` }),
  data,
  out: z.string().default('models').describe('models directory: each model is written to <out>/<key>/'),
  reportDir: z.string().optional().describe('where the run report goes (default reports/<timestamp>)'),
  limit,
  seed,
  folds,
  backend: BackendOptionSchema,
  resume: z.boolean().default(false).describe('continue an interrupted run from its last completed epoch (same options and data)'),
  cacheDir,
});
export type TrainRun = z.output<typeof TrainRunSchema>;

/**
 * `--epochs`, `--batch-size`…: given once, they reach every recipe of the run. None has a default
 * here: a flag left out must leave each recipe its own (per model, chosen by cross-validation), not
 * impose the shared schema's fallback on all of them.
 */
export const CommonFlagsSchema = CommonOptionsSchema.extend({
  patience: CommonOptionsSchema.shape.patience.unwrap().optional().describe('early stopping: epochs without validation-loss improvement (default per model)'),
  classWeightStrength: CommonOptionsSchema.shape.classWeightStrength.unwrap().optional().describe('positive-class weight = (neg/pos)^strength; 0 disables (default per model)'),
  thresholds: CommonOptionsSchema.shape.thresholds.unwrap().optional().describe("tune one shared threshold, per-genre thresholds for pooled micro-F1, each genre's own F1, or each genre's own shrunk toward the shared one (default per model)"),
});

export const EvaluateConfigSchema = z.object({
  models: z.string().default('models').describe('models directory (one sub-directory per model)'),
  data,
  output: z.string().optional().describe('write the JSON result here (default: stdout)'),
  limit,
  backend: BackendOptionSchema,
  cacheDir,
});
export type EvaluateConfig = z.output<typeof EvaluateConfigSchema>;

export const TuneConfigSchema = z.object({
  model: z.enum(['cnn', 'lstm', 'sentence']).default('lstm').describe('which model to tune'),
  budgetMinutes: z.number().positive().default(20).describe('wall-clock budget'),
  trials: z.int().positive().default(12).describe('maximum number of trials'),
  epochs: z.int().positive().optional().describe('maximum epochs per trial (default per model)'),
  limit,
  data,
  out: z.string().default('reports/tune').describe('leaderboard directory'),
  seed,
  folds,
  backend: BackendOptionSchema,
  cacheDir,
});
export type TuneConfig = z.output<typeof TuneConfigSchema>;
