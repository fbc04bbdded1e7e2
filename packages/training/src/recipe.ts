import type { Film, FoldPlan, HoldoutSplit, SplitRecord, StatefulRng } from '@filmgenre/core';
import { THRESHOLD_STRATEGIES, type MultiLabelReport } from '@filmgenre/metrics';
import { provenance, type Modality, type ModelMetadataInput } from '@filmgenre/model-artifact';
import type { BackendInfo } from '@filmgenre/tf-runtime';
import { GENRES } from '@filmgenre/core';
import { z } from 'zod';
import type { EpochLog } from './fit.js';

/** Everything a recipe gets from the run; the trainer app builds it, the recipe owns the rest. */
export interface RecipeContext {
  /** Every usable development film of the run (after --limit). */
  films: readonly Film[];
  /** Fold 0 held out: for models trained once with early stopping on validation. */
  split: HoldoutSplit<Film>;
  /** Every film's fold (the same hash as `split`): for models cross-fitted over all folds. */
  folds: FoldPlan<Film>;
  seed: number;
  backend: BackendInfo;
  /** Root of the decode / feature caches (`<workspace>/.cache` unless told otherwise). */
  cacheDir: string;
  /** Where this recipe's checkpoints go. */
  checkpointDir: string;
  /** The models directory: this recipe publishes `<modelsDir>/<key>`, fusion reads its members there. */
  modelsDir: string;
  resume: boolean;
  /** Aborted on Ctrl-C / SIGTERM: stop after the current batch and publish nothing. */
  signal: AbortSignal;
  /** The seeded stream Math.random draws from while this recipe runs (checkpointed for an exact resume). */
  rng: StatefulRng;
  log(line: string): void;
}

/** What a recipe reports back: its held-out predictions feed the run report. */
export interface TrainedModel {
  key: string;
  variant: string;
  /** The published model directory. */
  dir: string;
  /** Predictions for films the model did not train on: the validation fold, or every film out of fold. */
  heldOut: { ids: string[]; probabilities: Float32Array; labels: Float32Array };
  /**
   * How the held-out predictions were made, and their honest scores when the recipe computed them
   * (out of fold with cross-fitted thresholds); otherwise the report scores them with `thresholds`.
   */
  outOfSample?: { scheme: 'validation' | 'out-of-fold'; report: MultiLabelReport };
  thresholds: number[];
  history: EpochLog[];
  bestEpoch?: number;
  seconds: number;
}

/**
 * A modality team's training: its options (with the team's defaults), and how to train, tune and
 * publish its model. The trainer registers recipes in one list; it never needs to know more.
 */
export interface Recipe<Schema extends z.ZodObject = z.ZodObject> {
  /** Model key: the directory under the models dir and the CLI prefix of its options (`--cnn-variant`). */
  key: string;
  modality: Modality;
  /** One line for --help. */
  summary: string;
  options: Schema;
  /** Keys of models that must be trained (or present) before this one: fusion's members. */
  needs?(options: z.output<Schema>): readonly string[];
  /** `false`: nothing for `tune` to search (it uses no learning rate, dropout or class weights). */
  tunable?: false;
  train(ctx: RecipeContext, options: z.output<Schema>): Promise<TrainedModel>;
}

/** A stop was requested: the recipe stopped early and published nothing. */
export class TrainingInterrupted extends Error {
  override name = 'TrainingInterrupted';
}

/**
 * Options every recipe understands, so the trainer's `--epochs`, `--batch-size`… reach all of them.
 * Recipes extend this with their own fields and defaults.
 */
export const CommonOptionsSchema = z.object({
  epochs: z.int().positive().optional().describe('maximum epochs (default per model)'),
  batchSize: z.int().positive().max(1024).optional().describe('batch size (default per model)'),
  learningRate: z.number().positive().max(1).optional().describe('Adam learning rate (default per model)'),
  dropout: z.number().min(0).lt(1).optional().describe('dropout rate (default per model)'),
  patience: z.int().nonnegative().default(3).describe('early stopping: epochs without validation-loss improvement'),
  classWeightStrength: z.number().min(0).max(1).default(0.5).describe('positive-class weight = (neg/pos)^strength; 0 disables'),
  thresholds: z.enum(THRESHOLD_STRATEGIES).default('micro').describe("per-genre thresholds: one shared (micro-F1), tuned together for pooled micro-F1, each genre's own F1, or shrunk (each genre's own, pulled back toward the shared one)"),
});

/** The metadata fields every model directory shares, filled from the run: genres, split, provenance. */
export function runMetadata(ctx: Pick<RecipeContext, 'split' | 'backend'>, packages: readonly string[], split: SplitRecord = ctx.split.record): Pick<ModelMetadataInput, 'genres' | 'split' | 'versions' | 'gitCommit' | 'backend' | 'createdAt'> {
  return { genres: [...GENRES], split, ...provenance(packages, ctx.backend.name) };
}

/** Publishes a model unless the run was stopped: an interrupted run never writes `<modelsDir>/<key>`. */
export async function publish(ctx: Pick<RecipeContext, 'signal'>, save: () => Promise<unknown>): Promise<void> {
  if (ctx.signal.aborted) throw new TrainingInterrupted('stopped before publishing');
  await save();
}
