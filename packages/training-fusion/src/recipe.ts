import { foldOf, foldRows, NUM_GENRES, placeRows, partitionMismatch, yieldToEventLoop, type Film, type SplitRecord } from '@filmgenre/core';
import { artifactDigest, openModelDir, type MemberRecord, type ModelDir } from '@filmgenre/model-artifact';
import {
  applyLateFusion, applyStackedFusion, fitStackedFusion, LATE_FUSION_WEIGHTINGS, saveFusionClassifier, selectLateFusion,
  type LateFusionParams, type StackedFusionParams,
} from '@filmgenre/model-fusion';
import { loadModel, predictFilms, type MemberClassifier } from '@filmgenre/model-registry';
import { crossFittedEvaluation, type MultiLabelReport } from '@filmgenre/metrics';
import {
  CommonOptionsSchema, dataIdentity, frozenHeadSettings, labelMatrix, pickRows, publish, runMetadata, trainFrozenFeatureModel, TrainingInterrupted,
  type CrossFittedModel, type EpochLog, type Recipe, type RecipeContext, type TrainedModel,
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
    const { scored, rest } = foldRows(folds, fold);
    if (scored.length === 0) continue;
    placeRows(out, k, scored, fitOn(kind, options, members, labels, rest, roles).apply(scored));
  }
  return out;
}

/**
 * A head over the members' concatenated features, cross-fitted by training's frozen-feature recipe
 * like the members' own heads (three bags per fold). The members' features are recomputed by running
 * them over every film (as serving would), so this is the one fusion that costs a feature pass of
 * every member. Returns its out-of-fold predictions; `save` writes the fusion directory.
 */
async function fitJoint(
  ctx: RecipeContext, options: FusionRecipeOptions, members: Member[], films: Film[], folds: Int32Array, save: (dir: string, trained: CrossFittedModel) => Promise<unknown>,
): Promise<TrainedModel> {
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
    return await trainFrozenFeatureModel(ctx, {
      key: 'fusion', variant: 'joint', features, dim, ids: films.map((f) => f.id), labels: labelMatrix(films), folds,
      settings: frozenHeadSettings({ ...options, bags: 3, thresholds: options.thresholds }),
      identity: { recipe: 'fusion', kind: 'joint', options: identityOptions, split: ctx.folds.record, members: members.map((m) => m.record.digest), ...dataIdentity(films, {}) },
      save,
    });
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

  const split: SplitRecord = spread ? ctx.folds.record : ctx.split.record;
  const scheme = spread ? 'out-of-fold' as const : 'validation' as const;
  const ids = films.map((f) => f.id);
  const metadataOf = (kind: Kind, thresholds: number[], report: MultiLabelReport, candidates: Kind[], scores: Partial<Record<Kind, { microF1: number; macroF1: number }>>, history: EpochLog[], seconds: number) => ({
    name: 'fusion', variant: kind, thresholds, preprocessing: {},
    members: Object.fromEntries(members.map((m) => [m.key, m.record])),
    metrics: { outOfFold: report, candidates: Object.fromEntries(Object.entries(scores).map(([k, v]) => [k, { microF1: v!.microF1, macroF1: v!.macroF1 }])) },
    history,
    training: { options, chosen: kind, candidates, thresholdStrategy: options.thresholds, films: ids.length, seconds },
    ...runMetadata(ctx, ['@filmgenre/model-fusion', '@filmgenre/training-fusion'], split),
  });

  if (options.kind === 'joint') {
    const trained = await fitJoint(ctx, options, members, films, folds, (dir, joint) => saveFusionClassifier(dir, {
      kind: 'joint', model: joint.model, featureMembers: members.map((m) => m.key),
      films: { scheme, train: [], heldOut: ids, heldOutProbabilities: joint.outOfFold },
      metadata: metadataOf('joint', joint.thresholds, joint.report, ['joint'], { joint: { microF1: joint.report.micro.f1, macroF1: joint.report.macro.f1 } }, joint.histories[0] ?? [], joint.seconds),
    }));
    return { ...trained, outOfSample: { scheme, report: trained.outOfSample!.report } };
  }
  const candidates: Exclude<Kind, 'joint'>[] = options.kind === 'auto' ? AUTO_FUSION_KINDS.filter((k) => k !== 'late' || roles) : [options.kind];
  if (candidates.includes('late') && !roles) throw new Error('fusion: late fusion takes exactly one poster and one overview model; use --fusion-kind stacked');
  const scores: Partial<Record<Kind, { outOfFold: Float32Array; evaluation: ReturnType<typeof crossFittedEvaluation>; microF1: number; macroF1: number }>> = {};
  for (const kind of candidates) {
    const outOfFold = await crossFitFusion(kind, options, probabilities, labels, folds, { signal: ctx.signal, roles });
    const evaluation = crossFittedEvaluation(outOfFold, labels, folds, options.thresholds);
    const { report } = evaluation;
    scores[kind] = { outOfFold, evaluation, microF1: report.micro.f1, macroF1: report.macro.f1 };
    log(`[fusion] ${kind}: out-of-fold micro-F1 ${report.micro.f1.toFixed(3)}, macro-F1 ${report.macro.f1.toFixed(3)}`);
  }
  const chosen = candidates.reduce((best, kind) => (scores[kind]!.microF1 > scores[best]!.microF1 + 1e-9 ? kind : best));
  await yieldToEventLoop();
  if (ctx.signal.aborted) throw new TrainingInterrupted('fusion: stopped before the final fit');
  const { outOfFold, evaluation: { report, thresholds } } = scores[chosen]!;
  const final = fitOn(chosen, options, probabilities, labels, films.map((_, i) => i), roles);
  const dir = join(ctx.modelsDir, 'fusion');
  const seconds = (Date.now() - started) / 1000;
  await publish(ctx, () => saveFusionClassifier(dir, {
    kind: chosen,
    ...(final.late ? { late: final.late } : {}),
    ...(final.stacked ? { stacked: final.stacked } : {}),
    films: { scheme, train: [], heldOut: ids, heldOutProbabilities: outOfFold },
    metadata: metadataOf(chosen, thresholds, report, candidates, scores, [], seconds),
  }));
  log(`[fusion] saved ${dir} (${chosen}): out-of-fold micro-F1 ${report.micro.f1.toFixed(3)}, macro-F1 ${report.macro.f1.toFixed(3)} (fusion and thresholds cross-fitted)`);
  return {
    key: 'fusion', variant: chosen, dir, heldOut: { ids, probabilities: outOfFold, labels },
    outOfSample: { scheme, report }, thresholds, history: [], seconds,
  };
}

/** The fusion recipe, registered in the trainer's list under the key `fusion`; it needs its members first. */
export const fusionRecipe: Recipe<typeof FusionRecipeOptionsSchema> = {
  key: 'fusion',
  modality: 'fusion',
  summary: 'fusion of the poster and overview models',
  options: FusionRecipeOptionsSchema,
  needs: (options) => options.members,
  tunable: false,
  train: trainFusionModel,
};
