import * as tf from '@tensorflow/tfjs';
import { foldOf, hashString, NUM_GENRES, partitionMismatch, yieldToEventLoop, type Film, type SplitRecord } from '@filmgenre/core';
import { artifactDigest, openModelDir, type MemberRecord, type ModelDir } from '@filmgenre/model-artifact';
import {
  applyLateFusion, applyStackedFusion, fitStackedFusion, LATE_FUSION_WEIGHTINGS, saveFusionClassifier, selectLateFusion,
  type LateFusionParams, type StackedFusionParams,
} from '@filmgenre/model-fusion';
import { loadModel, predictFilms, type MemberClassifier } from '@filmgenre/model-registry';
import { crossFittedEvaluation } from '@filmgenre/metrics';
import {
  CommonOptionsSchema, crossFitHeads, dataIdentity, ensembleHeads, labelMatrix, pickRows, publish, runMetadata, TrainingInterrupted,
  type EpochLog, type Recipe, type RecipeContext, type TrainedModel,
} from '@filmgenre/training';
import { join } from 'node:path';
import { z } from 'zod';

export const FUSION_WEIGHTINGS = ['auto', ...LATE_FUSION_WEIGHTINGS] as const;
/** What `--fusion-kind auto` chooses among, by cross-validation on the members' out-of-fold predictions. */
export const AUTO_FUSION_KINDS = ['stacked', 'late'] as const;
export const FUSION_RECIPE_KINDS = ['auto', 'stacked', 'late', 'joint'] as const;
type Kind = Exclude<(typeof FUSION_RECIPE_KINDS)[number], 'auto'>;

export const FusionRecipeOptionsSchema = CommonOptionsSchema.extend({
  kind: z.enum(FUSION_RECIPE_KINDS).default('auto').describe(
    "stacked: per-genre logistic regression over the members' logits; late: weighted average of one poster and one overview model; " +
    "joint: a head over the members' concatenated features (recomputes them); auto: stacked or late, whichever cross-validates better",
  ),
  members: z.string().default('cnn,sentence,lexical').describe('keys of the models it fuses, comma-separated')
    .transform((value) => value.split(',').map((key) => key.trim()).filter(Boolean)),
  weighting: z.enum(FUSION_WEIGHTINGS).default('auto')
    .describe('late fusion: one 0.5 for all genres, one fitted weight, one per genre, or auto (the best by 2-fold cross-validation inside the fitting films)'),
  l2: z.number().min(0).default(1).describe('stacked fusion: ridge penalty on the member weights'),
  // Shrunk toward the shared one: the shared threshold's micro-F1 and most of per-genre's macro-F1 (docs/benchmarks/encoders.md).
  thresholds: CommonOptionsSchema.shape.thresholds.unwrap().default('shrunk').describe('how the per-genre thresholds are tuned, on the fusion\'s own out-of-fold predictions'),
});
export type FusionRecipeOptions = z.output<typeof FusionRecipeOptionsSchema>;

interface Member {
  key: string;
  dir: ModelDir;
  record: MemberRecord;
  heldOut: Map<string, number>;
  probabilities: Float32Array;
}

/**
 * A member model as the fusion sees it, refused unless it was trained on exactly the run's films and
 * folds: otherwise the fusion would be fitted (and scored) on films the member trained on.
 */
function openMember(ctx: RecipeContext, key: string): Member {
  const dirPath = join(ctx.modelsDir, key);
  const dir = openModelDir(dirPath);
  const { metadata } = dir;
  if (metadata.modality === 'fusion') throw new Error(`fusion: ${dirPath} is itself a fusion model; fuse single-modality models`);
  const mismatch = partitionMismatch(ctx.folds.record, metadata.split);
  if (mismatch) {
    throw new Error(
      `fusion: member ${key} (${dirPath}) was trained on another split than this run: ${mismatch}. ` +
        `Fitting on it would score films it trained on; retrain ${key} with the same --seed, --folds and data (or train everything: --model all)`,
    );
  }
  const films = dir.films();
  return {
    key, dir,
    record: { kind: metadata.kind, modality: metadata.modality as 'image' | 'text', variant: metadata.variant, digest: artifactDigest(metadata), createdAt: metadata.createdAt },
    heldOut: new Map(films.heldOut.map((id, i) => [id, i])),
    probabilities: films.heldOutProbabilities,
  };
}

/** A fusion fitted on some films, applied to others. */
interface Fitted {
  kind: Kind;
  apply(rows: readonly number[]): Float32Array;
  late?: LateFusionParams;
  stacked?: StackedFusionParams;
}

type FitOptions = Pick<FusionRecipeOptions, 'l2' | 'weighting'>;

function fitOn(kind: 'stacked' | 'late', options: FitOptions, members: Record<string, Float32Array>, labels: Float32Array, rows: readonly number[], roles?: { image: string; text: string }): Fitted {
  const k = NUM_GENRES;
  const on = (p: Float32Array, r: readonly number[]) => pickRows(p, k, r);
  if (kind === 'stacked') {
    const stacked = fitStackedFusion({ members: Object.fromEntries(Object.entries(members).map(([key, p]) => [key, on(p, rows)])), labels: on(labels, rows), numGenres: k, l2: options.l2 });
    return { kind, stacked, apply: (r) => applyStackedFusion(stacked, Object.fromEntries(Object.entries(members).map(([key, p]) => [key, on(p, r)]))) };
  }
  const { image, text } = roles!;
  const selection = selectLateFusion({
    imageProbs: on(members[image]!, rows), textProbs: on(members[text]!, rows), labels: on(labels, rows), numGenres: k,
    ...(options.weighting === 'auto' ? {} : { candidates: [options.weighting] }),
  });
  const late = selection.params;
  return { kind, late, apply: (r) => applyLateFusion(late, on(members[image]!, r), on(members[text]!, r)) };
}

/**
 * Out-of-fold predictions of a fusion kind: each fold fused by a fusion fitted on the other folds
 * (late fusion takes one poster and one overview member, `roles`). Between folds (a fit takes up to a
 * second) it lets a stop request in, and honours it.
 */
export async function crossFitFusion(
  kind: 'stacked' | 'late', options: FitOptions, members: Record<string, Float32Array>, labels: Float32Array, folds: Int32Array,
  { signal, roles }: { signal?: AbortSignal; roles?: { image: string; text: string } } = {},
): Promise<Float32Array> {
  const k = NUM_GENRES;
  const out = new Float32Array(labels.length);
  const K = Math.max(...folds) + 1;
  for (let fold = 0; fold < K; fold++) {
    await yieldToEventLoop();
    if (signal?.aborted) throw new TrainingInterrupted(`fusion: stopped while cross-validating ${kind} fusion`);
    const fit: number[] = [];
    const scored: number[] = [];
    folds.forEach((f, i) => (f === fold ? scored : fit).push(i));
    if (scored.length === 0) continue;
    const predicted = fitOn(kind, options, members, labels, fit, roles).apply(scored);
    scored.forEach((row, j) => out.set(predicted.subarray(j * k, (j + 1) * k), row * k));
  }
  return out;
}

/**
 * A head over the members' concatenated features, cross-fitted like the members' own heads. The
 * members' features are recomputed by running them over every film (as serving would), so this is
 * the one fusion that costs a feature pass of every member.
 */
async function fitJoint(ctx: RecipeContext, options: FusionRecipeOptions, members: Member[], films: Film[], folds: Int32Array) {
  const loaded = await Promise.all(members.map(async (m) => (await loadModel(m.dir.dir)) as MemberClassifier));
  try {
    const parts: { data: Float32Array; dim: number }[] = [];
    for (const model of loaded) {
      const result = await predictFilms(model, films, { cacheDir: ctx.cacheDir, signal: ctx.signal });
      if (result.skipped.length) throw new Error(`fusion: ${model.metadata.name} could not read ${result.skipped.length} of the films it was trained on (e.g. ${result.skipped[0]!.id})`);
      parts.push({ data: result.output.features, dim: result.output.featureDim });
    }
    const dim = parts.reduce((s, p) => s + p.dim, 0);
    const features = new Float32Array(films.length * dim);
    films.forEach((_, i) => {
      let at = i * dim;
      for (const p of parts) {
        features.set(p.data.subarray(i * p.dim, (i + 1) * p.dim), at);
        at += p.dim;
      }
    });
    const { epochs: _epochs, patience: _patience, ...identityOptions } = options;
    const cross = await crossFitHeads({
      name: 'fusion', features, dim, labels: labelMatrix(films), folds,
      createHead: (fold, bag) => {
        const name = `fusion_head_f${fold}_b${bag}`;
        const input = tf.input({ shape: [dim], name: `${name}_features` });
        const hidden = tf.layers.dense({ units: 512, activation: 'relu', name: `${name}_hidden`, kernelInitializer: tf.initializers.glorotUniform({ seed: hashString(`${ctx.seed}:${name}`) }) }).apply(input);
        const dropped = tf.layers.dropout({ rate: options.dropout ?? 0.5, name: `${name}_dropout` }).apply(hidden);
        const out = tf.layers.dense({ units: NUM_GENRES, activation: 'sigmoid', name: `${name}_genres` }).apply(dropped) as tf.SymbolicTensor;
        return tf.model({ inputs: input, outputs: out, name });
      },
      bags: 3, standardize: true, learningRate: options.learningRate ?? 2e-3, classWeightStrength: options.classWeightStrength,
      epochs: options.epochs ?? 40, batchSize: options.batchSize ?? 256, patience: options.patience,
      seed: ctx.seed, checkpointDir: ctx.checkpointDir, resume: ctx.resume, rng: ctx.rng, signal: ctx.signal, log: ctx.log,
      identity: { recipe: 'fusion', kind: 'joint', options: identityOptions, split: ctx.folds.record, members: members.map((m) => m.record.digest), ...dataIdentity(films, {}) },
    });
    return { outOfFold: cross.outOfFold, model: ensembleHeads(cross.heads, dim, 'fusion_heads'), heads: cross.heads, histories: cross.histories };
  } finally {
    loaded.forEach((m) => m.dispose());
  }
}

/**
 * Fuses the members' predictions. Everything is fitted on the members' held-out predictions (out of
 * fold for cross-fitted members, the validation fold otherwise), never on predictions for films a
 * member trained on; the fusion's own scores come from fusions fitted on other folds than the films
 * they score, and its thresholds are tuned on those out-of-fold fused predictions.
 */
async function trainFusionModel(ctx: RecipeContext, options: FusionRecipeOptions): Promise<TrainedModel> {
  const started = Date.now();
  const { log } = ctx;
  if (options.members.length < 2) throw new Error(`fusion needs at least two members, got ${options.members.join(', ') || 'none'}`);
  const members = options.members.map((key) => openMember(ctx, key));
  const films = ctx.films.filter((f) => members.every((m) => m.heldOut.has(f.id)));
  if (films.length < 50) throw new Error(`fusion: the members share held-out predictions for only ${films.length} films (members trained on the validation fold only share those)`);
  const labels = labelMatrix(films);
  const probabilities = Object.fromEntries(members.map((m) => [m.key, pickRows(m.probabilities, NUM_GENRES, films.map((f) => m.heldOut.get(f.id)!))]));
  // The run's folds when the films span them (cross-fitted members); inside a single fold, a second hash splits it.
  const runFolds = Int32Array.from(films, (f) => foldOf(f.id, { seed: ctx.seed, folds: ctx.folds.k }));
  const spread = new Set(runFolds).size > 1;
  const folds = spread ? runFolds : Int32Array.from(films, (f) => foldOf(f.id, { seed: ctx.seed + 7919, folds: ctx.folds.k }));
  const images = members.filter((m) => m.record.modality === 'image');
  const texts = members.filter((m) => m.record.modality === 'text');
  const roles = images.length === 1 && texts.length === 1 && members.length === 2 ? { image: images[0]!.key, text: texts[0]!.key } : undefined;
  log(`[fusion] members ${members.map((m) => `${m.key} (${m.record.variant})`).join(', ')}: ${films.length} films with held-out predictions of each, ${spread ? 'the run\'s folds' : 're-split into folds'}`);

  const candidates: Kind[] = options.kind === 'auto' ? AUTO_FUSION_KINDS.filter((k) => k !== 'late' || roles) : [options.kind];
  if (candidates.includes('late') && !roles) throw new Error('fusion: late fusion takes exactly one poster and one overview model; use --fusion-kind stacked');
  const scores: Partial<Record<Kind, { outOfFold: Float32Array; evaluation: ReturnType<typeof crossFittedEvaluation>; microF1: number; macroF1: number }>> = {};
  let joint: Awaited<ReturnType<typeof fitJoint>> | undefined;
  for (const kind of candidates) {
    let outOfFold: Float32Array;
    if (kind === 'joint') {
      joint = await fitJoint(ctx, options, members, films, folds);
      outOfFold = joint.outOfFold;
    } else {
      outOfFold = await crossFitFusion(kind, options, probabilities, labels, folds, { signal: ctx.signal, roles });
    }
    const evaluation = crossFittedEvaluation(outOfFold, labels, folds, options.thresholds);
    const { report } = evaluation;
    scores[kind] = { outOfFold, evaluation, microF1: report.micro.f1, macroF1: report.macro.f1 };
    log(`[fusion] ${kind}: out-of-fold micro-F1 ${report.micro.f1.toFixed(3)}, macro-F1 ${report.macro.f1.toFixed(3)}`);
  }
  const chosen = candidates.reduce((best, kind) => (scores[kind]!.microF1 > scores[best]!.microF1 + 1e-9 ? kind : best));
  await yieldToEventLoop();
  if (ctx.signal.aborted) throw new TrainingInterrupted('fusion: stopped before the final fit');
  const { outOfFold, evaluation: { report, thresholds } } = scores[chosen]!;
  const final = chosen === 'joint' ? undefined : fitOn(chosen, options, probabilities, labels, films.map((_, i) => i), roles);
  const dir = join(ctx.modelsDir, 'fusion');
  const ids = films.map((f) => f.id);
  const split: SplitRecord = spread ? ctx.folds.record : ctx.split.record;
  const seconds = (Date.now() - started) / 1000;
  const history: EpochLog[] = joint?.histories[0] ?? [];
  try {
    await publish(ctx, () => saveFusionClassifier(dir, {
      kind: chosen,
      ...(final?.late ? { late: final.late } : {}),
      ...(final?.stacked ? { stacked: final.stacked } : {}),
      ...(joint ? { model: joint.model, featureMembers: members.map((m) => m.key) } : {}),
      films: { scheme: spread ? 'out-of-fold' : 'validation', train: [], heldOut: ids, heldOutProbabilities: outOfFold },
      metadata: {
        name: 'fusion', variant: chosen, thresholds, preprocessing: {},
        members: Object.fromEntries(members.map((m) => [m.key, m.record])),
        metrics: { outOfFold: report, candidates: Object.fromEntries(Object.entries(scores).map(([k, v]) => [k, { microF1: v!.microF1, macroF1: v!.macroF1 }])) },
        history,
        training: { options, chosen, candidates, thresholdStrategy: options.thresholds, films: ids.length, seconds },
        ...runMetadata(ctx, ['@filmgenre/model-fusion', '@filmgenre/training-fusion'], split),
      },
    }));
  } finally {
    // The ensemble holds the heads as layers and disposes them with itself.
    joint?.model.dispose();
  }
  log(`[fusion] saved ${dir} (${chosen}): out-of-fold micro-F1 ${report.micro.f1.toFixed(3)}, macro-F1 ${report.macro.f1.toFixed(3)} (fusion and thresholds cross-fitted)`);
  return {
    key: 'fusion', variant: chosen, dir, heldOut: { ids, probabilities: outOfFold, labels },
    outOfSample: { scheme: spread ? 'out-of-fold' : 'validation', report }, thresholds, history, seconds,
  };
}

/** The fusion recipe, registered in the trainer's list under the key `fusion`; it needs its members first. */
export const fusionRecipe: Recipe<typeof FusionRecipeOptionsSchema> = {
  key: 'fusion',
  modality: 'fusion',
  summary: 'fusion of the poster and overview models',
  options: FusionRecipeOptionsSchema,
  needs: (options) => options.members,
  train: trainFusionModel,
};
