import * as tf from '@tensorflow/tfjs';
import { canonicalJson, replaceDirAtomic, yieldToEventLoop, type StatefulRng } from '@filmgenre/core';
import { binaryCrossEntropy, tuneGlobalThreshold } from '@filmgenre/metrics';
import { fileSystemIO } from '@filmgenre/tf-runtime';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEpochBar } from './progress.js';

export interface Batch {
  xs: tf.Tensor | tf.Tensor[];
  ys: tf.Tensor;
}

/** What a modality provides to the generic loop: its compiled model and its data. */
export interface FitTask {
  name: string;
  model: tf.LayersModel;
  stepsPerEpoch: number;
  /** Training batches for one epoch, a function of the epoch alone (seeded), so a resumed epoch replays exactly; the loop disposes each batch. */
  trainBatches(epoch: number): AsyncIterable<Batch>;
  /** Validation probabilities, n×numGenres row-major, from the current weights. */
  predictValidation(): Promise<Float32Array>;
  validationLabels: Float32Array;
  /** Per-genre positive weights of the training loss; validation loss uses the same objective. */
  positiveWeights?: readonly number[];
}

export interface FitOptions {
  epochs: number;
  /** Epochs without a validation-loss improvement before stopping. */
  patience: number;
  checkpointDir: string;
  /**
   * Continue from the checkpoint in checkpointDir. It must have been written with the same identity;
   * without resume, any checkpoint there is deleted first: a new run never starts from an old one.
   */
  resume: boolean;
  /** What makes two runs the same training (options, split…): a checkpoint of another identity is refused. */
  identity: Record<string, unknown>;
  /** The stream Math.random draws from (dropout masks, initialisers): saved and restored with the checkpoint. */
  rng?: StatefulRng;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** No progress bar and no per-epoch line (a caller training many small models reports them itself). */
  quiet?: boolean;
  /** Writes an epoch's checkpoint at most this often (default CHECKPOINT_INTERVAL_MS); 0: after every epoch. */
  checkpointIntervalMs?: number;
}

/**
 * How often, at most, a training writes its checkpoint. Written after every epoch, the weights and
 * Adam's moments of the frozen-feature heads (epochs of a fraction of a second) came to 4.8 GB per
 * cold run with six members, 1.1 GB now (no measurable change in time: the heads are bound by their
 * matrix products). A stop (the signal) and the end of a training always write the latest epoch's,
 * so only a crash loses more than the batch in progress, and at most this much.
 */
export const CHECKPOINT_INTERVAL_MS = 15_000;

export interface EpochLog extends Record<string, number> {
  epoch: number;
  loss: number;
  precision: number;
  recall: number;
  /** Validation value of the training objective (weighted BCE): what early stopping watches. */
  valLoss: number;
  /** Plain binary cross-entropy on validation. */
  valBce: number;
  valPrecision: number;
  valRecall: number;
  /** Validation micro-F1 at the best shared threshold: a progress signal, not used for selection. */
  valMicroF1: number;
  seconds: number;
}

export interface FitResult {
  history: EpochLog[];
  bestEpoch: number;
  bestValLoss: number;
  stoppedEarly: boolean;
  /** Stopped by the signal: the model holds no finished training and must not be published. */
  interrupted: boolean;
}

interface CheckpointState {
  identityHash: string;
  identity: Record<string, unknown>;
  epoch: number;
  history: EpochLog[];
  bestEpoch: number;
  bestValLoss: number;
  /** Math.random's stream position after this epoch. */
  rngState: number | null;
  /** Names and shapes of the optimizer's variables, in the order they are saved in optimizer.bin. */
  optimizerSpecs: tf.io.WeightsManifestEntry[];
}

/** An optimizer variable as the optimizer names it. */
type NamedWeight = { name: string; tensor: tf.Tensor };

const STATE_FILE = 'state.json';
const OPTIMIZER_FILE = 'optimizer.bin';

/** Thrown when a checkpoint cannot be resumed as asked. */
export class CheckpointMismatchError extends Error {
  override name = 'CheckpointMismatchError';
}

export function identityHash(identity: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 16);
}

/**
 * What a checkpoint's identity records of the data it trains on, besides the split (which knows only
 * the films' Ids and folds): a digest of every film's labels, and one of each input the model reads
 * (overviews, decoded posters, frozen features…), by name. A resume on relabelled films or an edited
 * overview is then refused as "different labels" or "different overviews".
 */
export function dataIdentity(films: readonly { id: string; labels: Uint8Array }[], inputs: Record<string, readonly string[] | ArrayBufferView>): Record<string, string> {
  const labels = createHash('sha256');
  for (const film of films) labels.update(`${film.id}\t${film.labels.join('')}\n`);
  const digests: Record<string, string> = { labels: labels.digest('hex').slice(0, 16) };
  for (const [name, values] of Object.entries(inputs)) {
    const hash = createHash('sha256');
    if (ArrayBuffer.isView(values)) hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    else for (const value of values) hash.update(`${value.length}:${value}`);
    digests[name] = hash.digest('hex').slice(0, 16);
  }
  return digests;
}

/** Weighted BCE (the objective), plain BCE and micro precision/recall at 0.5, on flat n×k arrays. */
export function validationSummary(probabilities: Float32Array, labels: Float32Array, positiveWeights?: readonly number[]) {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const predicted = probabilities[i]! >= 0.5;
    if (predicted && labels[i] === 1) tp++;
    else if (predicted) fp++;
    else if (labels[i] === 1) fn++;
  }
  return {
    loss: binaryCrossEntropy(probabilities, labels, positiveWeights),
    bce: binaryCrossEntropy(probabilities, labels),
    precision: tp + fp ? tp / (tp + fp) : 0,
    recall: tp + fn ? tp / (tp + fn) : 0,
  };
}

/** The optimizer's state as copies (its own variables keep changing), disposing what getWeights made for the call. */
async function optimizerState(model: tf.LayersModel): Promise<NamedWeight[]> {
  const weights = model.optimizer ? await model.optimizer.getWeights() : [];
  return weights.map(({ name, tensor }) => {
    const copy = tensor.clone();
    if (!(tensor instanceof tf.Variable)) tensor.dispose();
    return { name, tensor: copy };
  });
}

/** Writes the model's current weights, `optimizer` (Adam's moments at the same epoch) and `state` into `dir`, atomically. */
async function saveCheckpoint(dir: string, model: tf.LayersModel, state: Omit<CheckpointState, 'optimizerSpecs'>, optimizer: NamedWeight[]): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(optimizer);
  await replaceDirAtomic(dir, async (tmp) => {
    await model.save(fileSystemIO(tmp));
    writeFileSync(join(tmp, OPTIMIZER_FILE), new Uint8Array(data as ArrayBuffer));
    writeFileSync(join(tmp, STATE_FILE), JSON.stringify({ ...state, optimizerSpecs: specs } satisfies CheckpointState));
  });
}

function readState(dir: string): CheckpointState {
  return JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as CheckpointState;
}

/** Restores weights, and with `withOptimizer` Adam's moments and step count, from a checkpoint directory. */
async function restoreCheckpoint(dir: string, model: tf.LayersModel, withOptimizer: boolean): Promise<CheckpointState> {
  const state = readState(dir);
  const saved = await tf.loadLayersModel(fileSystemIO(dir));
  model.setWeights(saved.getWeights());
  saved.dispose();
  if (withOptimizer && model.optimizer && state.optimizerSpecs.length > 0) {
    const bytes = readFileSync(join(dir, OPTIMIZER_FILE));
    const map = tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), state.optimizerSpecs);
    await model.optimizer.setWeights(state.optimizerSpecs.map((spec) => ({ name: spec.name, tensor: map[spec.name]! })));
    tf.dispose(Object.values(map));
  }
  return state;
}

/**
 * Trains with early stopping on validation loss, keeping the best epoch's weights. The weights, the
 * optimizer's state and the random stream at the end of an epoch are checkpointed atomically
 * (`last/`, and `best/` for the best epoch): at most every `checkpointIntervalMs`, and always at the
 * end and on a stop, so an interrupted run resumes exactly where it stopped. The loop yields to the
 * event loop before every batch, so an abort (Ctrl-C) stops it after the current batch.
 */
export async function fitWithEarlyStopping(task: FitTask, options: FitOptions): Promise<FitResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const lastDir = join(options.checkpointDir, 'last');
  const bestDir = join(options.checkpointDir, 'best');
  const hash = identityHash(options.identity);
  let state: Omit<CheckpointState, 'optimizerSpecs'> = {
    identityHash: hash, identity: options.identity, epoch: 0, history: [], bestEpoch: 0, bestValLoss: Infinity, rngState: null,
  };
  if (options.resume && existsSync(join(lastDir, STATE_FILE))) {
    const found = readState(lastDir);
    if (found.identityHash !== hash) {
      const differs = Object.keys({ ...options.identity, ...found.identity })
        .filter((key) => identityHash({ v: options.identity[key] }) !== identityHash({ v: found.identity[key] }));
      throw new CheckpointMismatchError(
        `--resume: the checkpoint in ${options.checkpointDir} belongs to another training (different ${differs.join(', ') || 'settings'}); ` +
          'rerun with the same options and data, or without --resume to start over',
      );
    }
    state = await restoreCheckpoint(lastDir, task.model, true);
    if (state.rngState !== null) options.rng?.setState(state.rngState);
    log(`[${task.name}] resuming after epoch ${state.epoch} (best so far: epoch ${state.bestEpoch}, val loss ${state.bestValLoss.toFixed(4)})`);
  } else {
    if (options.resume) log(`[${task.name}] --resume: no checkpoint in ${options.checkpointDir}, starting from the first epoch`);
    else if (existsSync(options.checkpointDir)) log(`[${task.name}] removing the checkpoint of an earlier run in ${options.checkpointDir} (use --resume to continue it)`);
    rmSync(options.checkpointDir, { recursive: true, force: true });
  }
  const intervalMs = options.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS;
  let lastWrite = Date.now();
  /** The latest epoch's end, when not yet on disk: what a stop mid-epoch writes. */
  let unsaved: { state: typeof state; weights: tf.Tensor[]; optimizer: NamedWeight[] } | undefined;
  /** The best epoch's weights in this run (to restore at the end), and whether best/ holds them yet. */
  let best: { weights: tf.Tensor[]; written: boolean } | undefined;
  const copyWeights = () => task.model.getWeights().map((w) => w.clone());
  const dropUnsaved = () => {
    if (unsaved) tf.dispose([...unsaved.weights, ...unsaved.optimizer.map((w) => w.tensor)]);
    unsaved = undefined;
  };
  /** Writes last/ from the model as it is (an epoch's end), then best/ if it lags. */
  const writeCheckpoints = async (at: typeof state, optimizer: NamedWeight[]) => {
    await saveCheckpoint(lastDir, task.model, at, optimizer);
    if (best && !best.written) {
      const current = copyWeights();
      task.model.setWeights(best.weights);
      await saveCheckpoint(bestDir, task.model, at, optimizer);
      task.model.setWeights(current);
      tf.dispose(current);
      best.written = true;
    }
    lastWrite = Date.now();
  };
  let interrupted = false;
  let stoppedEarly = false;
  try {
    for (let epoch = state.epoch + 1; epoch <= options.epochs; epoch++) {
      if (epoch - state.bestEpoch > options.patience && state.bestEpoch > 0) {
        stoppedEarly = true;
        break;
      }
      const started = Date.now();
      const bar = options.quiet ? { update() {}, stop() {} } : createEpochBar(`[${task.name}] epoch ${epoch}/${options.epochs}`, task.stepsPerEpoch);
      let steps = 0;
      let lossSum = 0;
      let precisionSum = 0;
      let recallSum = 0;
      for await (const batch of task.trainBatches(epoch)) {
        await yieldToEventLoop();
        if (options.signal?.aborted) {
          tf.dispose([batch.xs, batch.ys]);
          interrupted = true;
          break;
        }
        // A number without compiled metrics, else [loss, ...metrics].
        const result = await task.model.trainOnBatch(batch.xs, batch.ys);
        const out = Array.isArray(result) ? result : [result];
        tf.dispose([batch.xs, batch.ys]);
        steps++;
        lossSum += out[0]!;
        precisionSum += out[1] ?? NaN;
        recallSum += out[2] ?? NaN;
        bar.update(steps, { loss: lossSum / steps, precision: precisionSum / steps, recall: recallSum / steps });
      }
      bar.stop();
      if (interrupted) break;
      const validationProbabilities = await task.predictValidation();
      const val = validationSummary(validationProbabilities, task.validationLabels, task.positiveWeights);
      const k = task.positiveWeights?.length ?? task.model.outputs[0]!.shape.at(-1)!;
      const valMicroF1 = tuneGlobalThreshold(validationProbabilities, task.validationLabels, { numGenres: k as number }).microF1;
      const entry: EpochLog = {
        epoch,
        loss: lossSum / steps,
        precision: precisionSum / steps,
        recall: recallSum / steps,
        valLoss: val.loss,
        valBce: val.bce,
        valPrecision: val.precision,
        valRecall: val.recall,
        valMicroF1,
        seconds: (Date.now() - started) / 1000,
      };
      const improved = val.loss < state.bestValLoss;
      state = {
        ...state,
        epoch,
        history: [...state.history, entry],
        bestEpoch: improved ? epoch : state.bestEpoch,
        bestValLoss: improved ? val.loss : state.bestValLoss,
        rngState: options.rng?.getState() ?? null,
      };
      if (!options.quiet) log(
        `[${task.name}] epoch ${epoch}: loss ${entry.loss.toFixed(4)} P ${entry.precision.toFixed(3)} R ${entry.recall.toFixed(3)}` +
          ` | val loss ${val.loss.toFixed(4)} P ${val.precision.toFixed(3)} R ${val.recall.toFixed(3)} F1* ${valMicroF1.toFixed(3)}` +
          ` | ${entry.seconds.toFixed(0)} s${improved ? ' | best so far' : ''}`,
      );
      if (improved) {
        if (best) tf.dispose(best.weights);
        best = { weights: copyWeights(), written: false };
      }
      dropUnsaved();
      const optimizer = await optimizerState(task.model);
      if (Date.now() - lastWrite >= intervalMs) {
        await writeCheckpoints(state, optimizer);
        tf.dispose(optimizer.map((w) => w.tensor));
      } else {
        unsaved = { state, weights: copyWeights(), optimizer };
      }
      await yieldToEventLoop();
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
    }
    if (unsaved) {
      // Stopped mid-epoch, the model holds part of an epoch: the checkpoint is the last whole one.
      task.model.setWeights(unsaved.weights);
      await writeCheckpoints(unsaved.state, unsaved.optimizer);
    }
    if (!interrupted) {
      // The best epoch (of this run, or on disk from the run it resumed).
      if (best) task.model.setWeights(best.weights);
      else if (existsSync(join(bestDir, STATE_FILE))) await restoreCheckpoint(bestDir, task.model, false);
    }
  } finally {
    dropUnsaved();
    if (best) tf.dispose(best.weights);
  }
  return { history: state.history, bestEpoch: state.bestEpoch, bestValLoss: state.bestValLoss, stoppedEarly, interrupted };
}
