import { DatasetOptionsSchema, FoldOptionsSchema } from '@filmgenre/core';
import { BackendOptionSchema } from '@filmgenre/tf-runtime';
import { CommonOptionsSchema } from '@filmgenre/training';
import { z } from 'zod';
import { DEFAULT_MODELS, RECIPES, TUNABLE_MODELS } from './recipes.js';

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
  model: z.enum(TUNABLE_MODELS as [string, ...string[]]).default('lstm').describe('which model to tune'),
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

/** A slice of a catalogue: shard `index` (from 0) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

/**
 * Kubernetes' Indexed Job sets JOB_COMPLETION_INDEX in each pod; the count is not set by Kubernetes,
 * so the Job's manifest passes its `completions` as JOB_COMPLETIONS (see README).
 */
export const SHARD_INDEX_ENV = 'JOB_COMPLETION_INDEX';
export const SHARD_COUNT_ENV = 'JOB_COMPLETIONS';

const ShardSchema = z.string().regex(/^\d+\/\d+$/, 'expected I/N, e.g. 0/4 (shard I, from 0, of N)')
  .transform((value) => ({ index: Number(value.split('/')[0]), count: Number(value.split('/')[1]) }))
  .refine((s) => s.count >= 1 && s.index < s.count, { message: 'I must be below N, and N at least 1' });

export const PredictConfigSchema = z.object({
  models: z.string().default('models').describe('models directory (one sub-directory per model)'),
  data: z.string().optional().describe('catalogue directory: the CSV (Id and Overview; genre columns optional) and Images/<Id>.jpg'),
  output: z.string().describe('where the JSON lines go (one per film, in the CSV\'s order), with <output>.manifest.json beside it'),
  shard: ShardSchema.optional().describe(`score only slice I of N (from 0), a contiguous run of the catalogue's films; default $${SHARD_INDEX_ENV}/$${SHARD_COUNT_ENV} when set, else 0/1`),
  limit,
  backend: BackendOptionSchema,
  cacheDir,
});
export type PredictConfig = z.output<typeof PredictConfigSchema>;

/** --shard, else the Indexed Job's environment, else the whole catalogue. */
export function resolveShard(flag: Shard | undefined, env: NodeJS.ProcessEnv = process.env): Shard {
  if (flag) return flag;
  const index = env[SHARD_INDEX_ENV];
  if (index === undefined) return { index: 0, count: 1 };
  const count = env[SHARD_COUNT_ENV];
  if (count === undefined) throw new Error(`${SHARD_INDEX_ENV} is ${index} but ${SHARD_COUNT_ENV} is not set: give the Job's completions as ${SHARD_COUNT_ENV}, or pass --shard I/N`);
  const parsed = ShardSchema.safeParse(`${index}/${count}`);
  if (!parsed.success) throw new Error(`${SHARD_INDEX_ENV}=${index}, ${SHARD_COUNT_ENV}=${count}: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

export const MergeConfigSchema = z.object({
  output: z.string().describe('the joined JSON lines, with <output>.manifest.json beside it'),
});
export type MergeConfig = z.output<typeof MergeConfigSchema>;
