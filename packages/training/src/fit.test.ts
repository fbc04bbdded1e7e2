import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng, seedMathRandom } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { dataIdentity, fitWithEarlyStopping, validationSummary, type FitOptions, type FitTask } from './fit.js';

const work = mkdtempSync(join(tmpdir(), 'fit-'));
beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Two labels decided by the sign of two input features: linearly separable.
function synthetic(n: number, seed: number) {
  const rng = createRng(seed);
  const xs = new Float32Array(n * 4);
  const ys = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 4; j++) xs[i * 4 + j] = rng() * 2 - 1;
    ys[i * 2] = xs[i * 4]! > 0 ? 1 : 0;
    ys[i * 2 + 1] = xs[i * 4 + 1]! > 0.3 ? 1 : 0;
  }
  return { xs, ys };
}

function task(abortAfterEpoch?: { epoch: number; controller: AbortController }): FitTask {
  const train = synthetic(256, 1);
  const validation = synthetic(128, 2);
  // Dropout draws its masks from Math.random: an exact resume must restore that stream too.
  const model = tf.sequential({ layers: [
    tf.layers.dense({ inputShape: [4], units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    tf.layers.dropout({ rate: 0.2 }),
    tf.layers.dense({ units: 2, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
  ] });
  model.compile({ optimizer: tf.train.adam(0.05), loss: 'binaryCrossentropy' });
  return {
    name: 'toy',
    model,
    stepsPerEpoch: 4,
    async *trainBatches(epoch: number) {
      if (abortAfterEpoch && epoch > abortAfterEpoch.epoch) abortAfterEpoch.controller.abort();
      for (let b = 0; b < 4; b++) {
        yield { xs: tf.tensor2d(train.xs.subarray(b * 256, (b + 1) * 256), [64, 4]), ys: tf.tensor2d(train.ys.subarray(b * 128, (b + 1) * 128), [64, 2]) };
      }
    },
    predictValidation: async () => {
      const out = tf.tidy(() => model.predict(tf.tensor2d(validation.xs, [128, 4])) as tf.Tensor);
      const values = (await out.data()) as Float32Array;
      out.dispose();
      return values;
    },
    validationLabels: validation.ys,
  };
}

describe('validationSummary', () => {
  it('computes BCE, weighted BCE and precision/recall at 0.5 by hand', () => {
    const s = validationSummary(new Float32Array([0.9, 0.2, 0.6, 0.7]), new Float32Array([1, 0, 0, 1]), [2, 1]);
    expect(s.bce).toBeCloseTo(-(Math.log(0.9) + Math.log(0.8) + Math.log(0.4) + Math.log(0.7)) / 4, 6);
    expect(s.loss).toBeCloseTo(-(2 * Math.log(0.9) + Math.log(0.8) + Math.log(0.4) + Math.log(0.7)) / 4, 6);
    expect(s.precision).toBeCloseTo(2 / 3, 6);
    expect(s.recall).toBe(1);
  });
});

const identity = { recipe: 'toy', learningRate: 0.05 };
const quiet = { log: () => {}, identity };

function weightsOf(model: tf.LayersModel): number[] {
  return model.getWeights().flatMap((w) => Array.from(w.dataSync()));
}

describe('fitWithEarlyStopping', () => {
  it('learns, checkpoints, and resumes an interrupted run where it stopped', async () => {
    const controller = new AbortController();
    const first = task({ epoch: 2, controller });
    const dir = join(work, 'ckpt');
    const interrupted = await fitWithEarlyStopping(first, { epochs: 6, patience: 10, checkpointDir: dir, resume: false, signal: controller.signal, ...quiet });
    expect(interrupted.interrupted).toBe(true);
    expect(interrupted.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(existsSync(join(dir, 'last', 'state.json'))).toBe(true);

    const second = task();
    const resumed = await fitWithEarlyStopping(second, { epochs: 6, patience: 10, checkpointDir: dir, resume: true, ...quiet });
    expect(resumed.interrupted).toBe(false);
    expect(resumed.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(resumed.history[5]!.valBce).toBeLessThan(resumed.history[0]!.valBce);
    // The best epoch's weights are the ones left in the model.
    const best = resumed.history.find((h) => h.epoch === resumed.bestEpoch)!;
    const now = validationSummary(await second.predictValidation(), second.validationLabels);
    expect(now.loss).toBeCloseTo(best.valLoss, 5);
    expect(now.precision).toBeGreaterThan(0.8);
  });

  it('stops early once validation loss has not improved for `patience` epochs', async () => {
    const t = task();
    // A learning rate this large makes the loss bounce instead of settle.
    t.model.compile({ optimizer: tf.train.sgd(200), loss: 'binaryCrossentropy' });
    const result = await fitWithEarlyStopping(t, { epochs: 30, patience: 1, checkpointDir: join(work, 'early'), resume: false, ...quiet });
    expect(result.stoppedEarly).toBe(true);
    expect(result.history.length).toBeLessThan(30);
    // patience 1: one epoch without improvement is allowed, then training stops.
    expect(result.history.length - result.bestEpoch).toBe(1);
  });

  // Every epoch written (0), and the default: epochs kept in memory between writes, the stop writing the last whole one.
  it.each([0, undefined])('resumes exactly: interrupted after epoch 2 and resumed gives the weights of an uninterrupted run (checkpoint interval %s)', async (checkpointIntervalMs) => {
    const run = async (checkpointDir: string, abortAfter?: number, resume = false) => {
      const rng = seedMathRandom(11);
      const controller = new AbortController();
      const t = task(abortAfter ? { epoch: abortAfter, controller } : undefined);
      const options: FitOptions = { epochs: 4, patience: 10, checkpointDir, resume, rng, signal: controller.signal, checkpointIntervalMs, ...quiet };
      const before = tf.memory().numTensors;
      const result = await fitWithEarlyStopping(t, options);
      // The epochs kept in memory are released (what remains are Adam's two moments per weight, created by the first step).
      if (!resume) expect(tf.memory().numTensors - before).toBe(2 * t.model.trainableWeights.length);
      return { result, weights: weightsOf(t.model) };
    };
    const name = `exact-${checkpointIntervalMs ?? 'default'}`;
    const whole = await run(join(work, `${name}-whole`));
    const stopped = await run(join(work, `${name}-split`), 2);
    expect(stopped.result.interrupted).toBe(true);
    const written = JSON.parse(readFileSync(join(work, `${name}-split`, 'last', 'state.json'), 'utf8')) as { epoch: number };
    expect(written.epoch).toBe(2);
    const resumed = await run(join(work, `${name}-split`), undefined, true);
    expect(resumed.result.history.map((h) => h.loss)).toEqual(whole.result.history.map((h) => h.loss));
    expect(resumed.weights).toEqual(whole.weights);
    // The finished run's checkpoints: the last epoch and the best one, as a resume of a finished training needs them.
    const last = JSON.parse(readFileSync(join(work, `${name}-whole`, 'last', 'state.json'), 'utf8')) as { epoch: number; bestEpoch: number };
    expect(last.epoch).toBe(4);
    expect(existsSync(join(work, `${name}-whole`, 'best', 'state.json'))).toBe(true);
  });


  it('never starts from an earlier run\'s checkpoint without --resume, and refuses to resume another training', async () => {
    const dir = join(work, 'stale');
    const logs: string[] = [];
    await fitWithEarlyStopping(task(), { epochs: 2, patience: 10, checkpointDir: dir, resume: false, ...quiet });
    const fresh = await fitWithEarlyStopping(task(), { epochs: 1, patience: 10, checkpointDir: dir, resume: false, identity, log: (l) => logs.push(l) });
    expect(fresh.history.map((h) => h.epoch)).toEqual([1]);
    expect(logs.join('\n')).toMatch(/removing the checkpoint of an earlier run/);
    await expect(fitWithEarlyStopping(task(), { epochs: 3, patience: 10, checkpointDir: dir, resume: true, log: () => {}, identity: { ...identity, learningRate: 0.01 } }))
      .rejects.toThrow(/--resume: the checkpoint in .*stale belongs to another training \(different learningRate\)/);
  });

  it('refuses to resume on relabelled films or an edited input, naming which', async () => {
    const films = ['tt1', 'tt2', 'tt3'].map((id, i) => ({ id, labels: Uint8Array.of(i % 2, 1 - (i % 2)), overview: `overview ${i}` }));
    const of = (list: typeof films) => ({ ...identity, ...dataIdentity(list, { overviews: list.map((f) => f.overview) }) });
    const dir = join(work, 'other-data');
    await fitWithEarlyStopping(task(), { epochs: 1, patience: 10, checkpointDir: dir, resume: false, log: () => {}, identity: of(films) });
    const swapped = films.map((f) => ({ ...f, labels: Uint8Array.of(f.labels[1]!, f.labels[0]!) }));
    await expect(fitWithEarlyStopping(task(), { epochs: 2, patience: 10, checkpointDir: dir, resume: true, log: () => {}, identity: of(swapped) }))
      .rejects.toThrow(/belongs to another training \(different labels\)/);
    const edited = films.map((f, i) => (i === 1 ? { ...f, overview: `${f.overview}.` } : f));
    await expect(fitWithEarlyStopping(task(), { epochs: 2, patience: 10, checkpointDir: dir, resume: true, log: () => {}, identity: of(edited) }))
      .rejects.toThrow(/belongs to another training \(different overviews\)/);
    // The same data in another object resumes.
    const again = await fitWithEarlyStopping(task(), { epochs: 2, patience: 10, checkpointDir: dir, resume: true, log: () => {}, identity: of(films.map((f) => ({ ...f }))) });
    expect(again.history.map((h) => h.epoch)).toEqual([1, 2]);
  });
});
