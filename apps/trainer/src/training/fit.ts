import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileSystemIO, replaceDirAtomic } from '@filmgenre/tf-runtime';
import { tuneGlobalThreshold } from '@filmgenre/metrics';
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
  /** Training batches for one epoch (shuffled/augmented by epoch); the loop disposes each batch. */
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
  resume: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

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
  interrupted: boolean;
}

interface CheckpointState {
  epoch: number;
  history: EpochLog[];
  bestEpoch: number;
  bestValLoss: number;
}

const STATE_FILE = 'state.json';

/** (Weighted) binary cross-entropy, plain BCE and micro precision/recall at 0.5, on flat n×k arrays. */
export function validationSummary(probabilities: Float32Array, labels: Float32Array, positiveWeights?: readonly number[]) {
  const k = positiveWeights?.length ?? 1;
  let loss = 0;
  let weighted = 0;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(1 - 1e-7, Math.max(1e-7, probabilities[i]!));
    const y = labels[i]!;
    loss -= y * Math.log(p) + (1 - y) * Math.log(1 - p);
    weighted -= y * Math.log(p) * (positiveWeights?.[i % k] ?? 1) + (1 - y) * Math.log(1 - p);
    const predicted = probabilities[i]! >= 0.5;
    if (predicted && y === 1) tp++;
    else if (predicted) fp++;
    else if (y === 1) fn++;
  }
  return { loss: weighted / labels.length, bce: loss / labels.length, precision: tp + fp ? tp / (tp + fp) : 0, recall: tp + fn ? tp / (tp + fn) : 0 };
}

async function saveWeights(dir: string, model: tf.LayersModel, state: CheckpointState): Promise<void> {
  await replaceDirAtomic(dir, async (tmp) => {
    await model.save(fileSystemIO(tmp));
    writeFileSync(join(tmp, STATE_FILE), JSON.stringify(state));
  });
}

async function loadWeightsInto(dir: string, model: tf.LayersModel): Promise<CheckpointState> {
  const saved = await tf.loadLayersModel(fileSystemIO(dir));
  model.setWeights(saved.getWeights());
  saved.dispose();
  return JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as CheckpointState;
}

/**
 * Trains with early stopping on validation loss, keeping the best epoch's weights. After every epoch
 * the weights and history are checkpointed atomically (`last/`, and `best/` when it improved), so an
 * interrupted run leaves its last good epoch behind and `resume` continues from it.
 */
export async function fitWithEarlyStopping(task: FitTask, options: FitOptions): Promise<FitResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const lastDir = join(options.checkpointDir, 'last');
  const bestDir = join(options.checkpointDir, 'best');
  let state: CheckpointState = { epoch: 0, history: [], bestEpoch: 0, bestValLoss: Infinity };
  if (options.resume && existsSync(join(lastDir, STATE_FILE))) {
    state = await loadWeightsInto(lastDir, task.model);
    log(`[${task.name}] resuming after epoch ${state.epoch} (best so far: epoch ${state.bestEpoch}, val loss ${state.bestValLoss.toFixed(4)})`);
  }
  let interrupted = false;
  let stoppedEarly = false;
  for (let epoch = state.epoch + 1; epoch <= options.epochs; epoch++) {
    if (epoch - state.bestEpoch > options.patience && state.bestEpoch > 0) {
      stoppedEarly = true;
      break;
    }
    const started = Date.now();
    const bar = createEpochBar(`[${task.name}] epoch ${epoch}/${options.epochs}`, task.stepsPerEpoch);
    let steps = 0;
    let lossSum = 0;
    let precisionSum = 0;
    let recallSum = 0;
    for await (const batch of task.trainBatches(epoch)) {
      if (options.signal?.aborted) {
        tf.dispose([batch.xs, batch.ys]);
        interrupted = true;
        break;
      }
      const out = (await task.model.trainOnBatch(batch.xs, batch.ys)) as number[];
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
      epoch,
      history: [...state.history, entry],
      bestEpoch: improved ? epoch : state.bestEpoch,
      bestValLoss: improved ? val.loss : state.bestValLoss,
    };
    log(
      `[${task.name}] epoch ${epoch}: loss ${entry.loss.toFixed(4)} P ${entry.precision.toFixed(3)} R ${entry.recall.toFixed(3)}` +
        ` | val loss ${val.loss.toFixed(4)} P ${val.precision.toFixed(3)} R ${val.recall.toFixed(3)} F1* ${valMicroF1.toFixed(3)}` +
        ` | ${entry.seconds.toFixed(0)} s${improved ? ' | best so far' : ''}`,
    );
    if (improved) await saveWeights(bestDir, task.model, state);
    await saveWeights(lastDir, task.model, state);
    if (options.signal?.aborted) {
      interrupted = true;
      break;
    }
  }
  if (existsSync(join(bestDir, STATE_FILE))) await loadWeightsInto(bestDir, task.model);
  return { history: state.history, bestEpoch: state.bestEpoch, bestValLoss: state.bestValLoss, stoppedEarly, interrupted };
}
