import * as tf from '@tensorflow/tfjs';
import { NUM_GENRES, splitMismatch, type Film } from '@filmgenre/core';
import { evaluateMultiLabel } from '@filmgenre/metrics';
import { artifactDigest, openModelDir, type MemberRecord, type ModelDir } from '@filmgenre/model-artifact';
import {
  applyLateFusion, createJointFusionModel, FUSION_KINDS, LATE_FUSION_WEIGHTINGS, saveFusionClassifier, selectLateFusion,
} from '@filmgenre/model-fusion';
import { loadModel, predictFilms, type MemberClassifier } from '@filmgenre/model-registry';
import {
  classWeightsFor, CommonOptionsSchema, compileForTraining, epochRng, fitWithEarlyStopping, labelMatrix, pickRows, publish, runMetadata,
  TrainingInterrupted, tuneThresholds, type Batch, type EpochLog, type Recipe, type RecipeContext, type TrainedModel,
} from '@filmgenre/training';
import { shuffleInPlace } from '@filmgenre/core';
import { join } from 'node:path';
import { z } from 'zod';

export const FUSION_WEIGHTINGS = ['auto', ...LATE_FUSION_WEIGHTINGS] as const;

export const FusionRecipeOptionsSchema = CommonOptionsSchema.extend({
  kind: z.enum(FUSION_KINDS).default('late').describe('late: weighted average of the members\' probabilities; joint: a gated multimodal unit over their features'),
  weighting: z.enum(FUSION_WEIGHTINGS).default('auto')
    .describe('late fusion image weights: one 0.5 for all genres, one fitted for all, one per genre, or auto (the best of the three by 2-fold cross-validation inside the validation split)'),
  imageMember: z.string().default('cnn').describe('key of the poster model it fuses'),
  textMember: z.string().default('lstm').describe('key of the overview model it fuses'),
});
export type FusionRecipeOptions = z.output<typeof FusionRecipeOptionsSchema>;

/**
 * A member model as the fusion sees it, refused unless it was trained and validated on exactly the
 * run's split: otherwise the fusion would be fitted (and scored) on films the member trained on.
 */
function openMember(ctx: RecipeContext, key: string, modality: 'image' | 'text'): ModelDir {
  const dir = join(ctx.modelsDir, key);
  const member = openModelDir(dir);
  if (member.metadata.modality !== modality) throw new Error(`fusion: ${dir} is a ${member.metadata.modality} model, expected ${modality}`);
  const mismatch = splitMismatch(ctx.split.record, member.metadata.split);
  if (mismatch) {
    throw new Error(
      `fusion: member ${key} (${dir}) was trained on another split than this run: ${mismatch}. ` +
        `Fitting on it would score films it trained on; retrain ${key} with the same --seed, --folds and data (or train everything: --model all)`,
    );
  }
  return member;
}

function memberRecord(member: ModelDir): MemberRecord {
  const m = member.metadata;
  return { kind: m.kind, modality: m.modality as 'image' | 'text', variant: m.variant, digest: artifactDigest(m.files), createdAt: m.createdAt };
}

/** Each member's held-out probabilities, aligned on the films both predicted (in validation order). */
function heldOutOfMembers(ctx: RecipeContext, image: ModelDir, text: ModelDir) {
  const [a, b] = [image.films(), text.films()];
  const rowOf = (ids: string[]) => new Map(ids.map((id, i) => [id, i]));
  const [ia, ib] = [rowOf(a.heldOut), rowOf(b.heldOut)];
  const films = ctx.split.validation.filter((f) => ia.has(f.id) && ib.has(f.id));
  return {
    films,
    image: pickRows(a.heldOutProbabilities, NUM_GENRES, films.map((f) => ia.get(f.id)!)),
    text: pickRows(b.heldOutProbabilities, NUM_GENRES, films.map((f) => ib.get(f.id)!)),
  };
}

/** Both members' features and probabilities on the same films (those with a decodable poster). */
async function memberOutputs(ctx: RecipeContext, image: MemberClassifier, text: MemberClassifier, films: readonly Film[]) {
  const a = await predictFilms(image, films, { cacheDir: ctx.cacheDir, signal: ctx.signal });
  const kept = new Set(a.ids);
  const keptFilms = films.filter((f) => kept.has(f.id));
  const b = await predictFilms(text, keptFilms, { cacheDir: ctx.cacheDir, signal: ctx.signal });
  return { films: keptFilms, image: a.output, text: b.output };
}

/** Predicts a two-input joint model over feature rows in batches. */
async function predictJoint(model: tf.LayersModel, image: Float32Array, imageDim: number, text: Float32Array, textDim: number): Promise<Float32Array> {
  const n = image.length / imageDim;
  const out = new Float32Array(n * NUM_GENRES);
  for (let start = 0; start < n; start += 256) {
    const count = Math.min(256, n - start);
    const probs = tf.tidy(() => model.predict([
      tf.tensor2d(image.subarray(start * imageDim, (start + count) * imageDim), [count, imageDim]),
      tf.tensor2d(text.subarray(start * textDim, (start + count) * textDim), [count, textDim]),
    ]) as tf.Tensor);
    out.set((await probs.data()) as Float32Array, start * NUM_GENRES);
    probs.dispose();
  }
  return out;
}

interface FusionFit {
  probabilities: Float32Array;
  films: Film[];
  history: EpochLog[];
  bestEpoch?: number;
  save: (args: { dir: string; metadata: Parameters<typeof saveFusionClassifier>[1]['metadata']; films: Parameters<typeof saveFusionClassifier>[1]['films'] }) => Promise<unknown>;
  variant: string;
  training: Record<string, unknown>;
  dispose(): void;
}

/** Late fusion fitted on the members' validation predictions; its weighting chosen by 2-fold CV inside them. */
function fitLate(ctx: RecipeContext, options: FusionRecipeOptions, image: ModelDir, text: ModelDir): FusionFit {
  const held = heldOutOfMembers(ctx, image, text);
  const labels = labelMatrix(held.films);
  const selection = selectLateFusion({
    imageProbs: held.image, textProbs: held.text, labels, numGenres: NUM_GENRES,
    ...(options.weighting === 'auto' ? {} : { candidates: [options.weighting] }),
  });
  ctx.log(`[fusion] late weighting: ${selection.weighting} (2-fold cross-validated micro-F1 inside validation: ${Object.entries(selection.crossValidatedMicroF1).map(([k, v]) => `${k} ${v!.toFixed(3)}`).join(', ')})`);
  const params = selection.params;
  return {
    probabilities: applyLateFusion(params, held.image, held.text),
    films: held.films,
    history: [],
    variant: 'late',
    training: { fitOn: 'validation', weighting: selection.weighting, crossValidatedMicroF1: selection.crossValidatedMicroF1, imageWeights: [...params.weights] },
    save: ({ dir, metadata, films }) => saveFusionClassifier(dir, { kind: 'late', late: params, metadata, films }),
    dispose() {},
  };
}

/**
 * Joint model (gated multimodal unit) over both members' penultimate features, trained on the
 * training split with early stopping on validation. Caveat, by construction: the members fit the
 * training films better than unseen ones, so the unit learns on features more confident than it
 * will meet; late fusion has no such gap.
 */
async function fitJoint(ctx: RecipeContext, options: FusionRecipeOptions, image: ModelDir, text: ModelDir): Promise<FusionFit> {
  const [imageModel, textModel] = [await loadModel(image.dir), await loadModel(text.dir)] as MemberClassifier[];
  try {
    const train = await memberOutputs(ctx, imageModel!, textModel!, ctx.split.train);
    const validation = await memberOutputs(ctx, imageModel!, textModel!, ctx.split.validation);
    const imageDim = train.image.featureDim;
    const textDim = train.text.featureDim;
    const trainLabels = labelMatrix(train.films);
    const validationLabels = labelMatrix(validation.films);
    const classWeights = classWeightsFor(train.films, options.classWeightStrength);
    const architecture = { imageFeatureDim: imageDim, textFeatureDim: textDim, kind: 'gmu' as const, ...(options.dropout !== undefined ? { dropout: options.dropout } : {}) };
    const model = createJointFusionModel(architecture);
    compileForTraining(model, options.learningRate ?? 1e-3, classWeights);
    const batchSize = options.batchSize ?? 64;
    const n = train.films.length;
    const predictValidation = () => predictJoint(model, validation.image.features, imageDim, validation.text.features, textDim);
    const { epochs: _epochs, patience: _patience, ...identityOptions } = options;
    const fit = await fitWithEarlyStopping(
      {
        name: 'fusion',
        model,
        stepsPerEpoch: Math.ceil(n / batchSize),
        async *trainBatches(epoch: number): AsyncGenerator<Batch> {
          const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), epochRng(ctx.seed, epoch));
          for (let start = 0; start < n; start += batchSize) {
            const rows = order.slice(start, start + batchSize);
            yield {
              xs: [tf.tensor2d(pickRows(train.image.features, imageDim, rows), [rows.length, imageDim]), tf.tensor2d(pickRows(train.text.features, textDim, rows), [rows.length, textDim])],
              ys: tf.tensor2d(pickRows(trainLabels, NUM_GENRES, rows), [rows.length, NUM_GENRES]),
            };
          }
        },
        predictValidation,
        validationLabels,
        positiveWeights: classWeights,
      },
      {
        epochs: options.epochs ?? 30, patience: options.patience, checkpointDir: ctx.checkpointDir, resume: ctx.resume, signal: ctx.signal, log: ctx.log, rng: ctx.rng,
        identity: { recipe: 'fusion', options: identityOptions, split: ctx.split.record, members: [memberRecord(image).digest, memberRecord(text).digest] },
      },
    );
    if (fit.interrupted) {
      model.dispose();
      throw new TrainingInterrupted('fusion: stopped during training');
    }
    return {
      probabilities: await predictValidation(),
      films: validation.films,
      history: fit.history,
      bestEpoch: fit.bestEpoch,
      variant: 'joint-gmu',
      training: { fitOn: 'train', architecture, bestEpoch: fit.bestEpoch, stoppedEarly: fit.stoppedEarly },
      save: ({ dir, metadata, films }) => saveFusionClassifier(dir, { kind: 'joint', model, metadata, films }),
      dispose: () => model.dispose(),
    };
  } finally {
    imageModel?.dispose();
    textModel?.dispose();
  }
}

async function trainFusionModel(ctx: RecipeContext, options: FusionRecipeOptions): Promise<TrainedModel> {
  const started = Date.now();
  const image = openMember(ctx, options.imageMember, 'image');
  const text = openMember(ctx, options.textMember, 'text');
  const fitted = options.kind === 'joint' ? await fitJoint(ctx, options, image, text) : fitLate(ctx, options, image, text);
  try {
    const labels = labelMatrix(fitted.films);
    const thresholds = tuneThresholds(fitted.probabilities, labels, options.thresholds);
    const metrics = evaluateMultiLabel({ probabilities: fitted.probabilities, labels, thresholds });
    const dir = join(ctx.modelsDir, 'fusion');
    const seconds = (Date.now() - started) / 1000;
    const ids = fitted.films.map((f) => f.id);
    await publish(ctx, () => fitted.save({
      dir,
      films: { scheme: 'validation', train: fitted.variant === 'late' ? [] : ctx.split.train.map((f) => f.id), heldOut: ids, heldOutProbabilities: fitted.probabilities },
      metadata: {
        name: 'fusion',
        variant: fitted.variant,
        thresholds,
        preprocessing: {},
        members: { [options.imageMember]: memberRecord(image), [options.textMember]: memberRecord(text) },
        metrics: { validation: metrics },
        history: fitted.history,
        training: { options, ...fitted.training, thresholdStrategy: options.thresholds, validationFilms: ids.length, seconds },
        ...runMetadata(ctx, ['@filmgenre/model-fusion', '@filmgenre/training-fusion']),
      },
    }));
    ctx.log(`[fusion] saved ${dir} (${fitted.variant}): validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)}`);
    return {
      key: 'fusion', variant: fitted.variant, dir, heldOut: { ids, probabilities: fitted.probabilities, labels },
      thresholds, history: fitted.history, ...(fitted.bestEpoch !== undefined ? { bestEpoch: fitted.bestEpoch } : {}), seconds,
    };
  } finally {
    fitted.dispose();
  }
}

/** The fusion recipe, registered in the trainer's list under the key `fusion`; it needs its members first. */
export const fusionRecipe: Recipe<typeof FusionRecipeOptionsSchema> = {
  key: 'fusion',
  modality: 'fusion',
  summary: 'fusion of the poster and overview models',
  options: FusionRecipeOptionsSchema,
  needs: (options) => [options.imageMember, options.textMember],
  train: trainFusionModel,
};
