import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { threadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomArray, rng, scaledMaxDiff, startWasm } from '../test-setup.js';
import { fusedBiLstm } from './bilstm-op.js';
import { nativeRunLog } from './lstm.js';
import { configureNativeKernels, nativeKernelsStatus, nativeRuntime } from './runtime.js';

// The fused BiLSTM kernel against tfjs's own layer, `bidirectional(lstm)` with the sigmoid
// recurrent activation: outputs and the gradients of the input and of all six weights, with
// ragged trailing padding masked, on one and on two threads.

interface Case {
  batch: number;
  steps: number;
  inputDim: number;
  units: number;
  returnSequences: boolean;
  /** Valid steps per row (the rest is masked padding), or null for no mask. */
  lengths: number[] | null;
}

interface Result {
  y: Float32Array;
  /** dx, then forward kernel, recurrent, bias, then backward kernel, recurrent, bias. */
  grads: Float32Array[];
}

const GRAD_NAMES = ['dx', 'forward kernel', 'forward recurrent', 'forward bias', 'backward kernel', 'backward recurrent', 'backward bias'];

function caseData(c: Case, seed: number) {
  const next = rng(seed);
  const g = 4 * c.units;
  const x = randomArray(c.batch * c.steps * c.inputDim, next);
  // Weights of the scale trained layers have, so gates are neither saturated nor linear.
  const scaled = (n: number, s: number) => randomArray(n, next).map((v) => v * s);
  const weights = [0, 1].flatMap(() => [scaled(c.inputDim * g, 1.5 / Math.sqrt(c.inputDim)), scaled(c.units * g, 1.5 / Math.sqrt(c.units)), scaled(g, 0.5)]);
  const outSize = c.batch * (c.returnSequences ? c.steps : 1) * 2 * c.units;
  const dy = randomArray(outSize, next);
  const mask = c.lengths ? Float32Array.from({ length: c.batch * c.steps }, (_, i) => (i % c.steps < c.lengths![Math.floor(i / c.steps)]! ? 1 : 0)) : null;
  return { x, weights, dy, mask };
}

/** Output and gradients of sum(layer(x) · dy), rows outside `rows` (if given) taken as they are. */
function evaluate(kind: 'fused' | 'tfjs', c: Case, data: ReturnType<typeof caseData>, rows?: number[]): Result {
  let result: Result | undefined;
  // The tidy returns nothing: it would otherwise walk every element of the result's arrays.
  tf.tidy(() => {
    const pick = (a: Float32Array, perRow: number) => (rows ? Float32Array.from(rows.flatMap((r) => Array.from(a.subarray(r * perRow, (r + 1) * perRow)))) : a);
    const batch = rows ? rows.length : c.batch;
    const outRow = (c.returnSequences ? c.steps : 1) * 2 * c.units;
    const x = tf.variable(tf.tensor3d(pick(data.x, c.steps * c.inputDim), [batch, c.steps, c.inputDim]));
    const mask = data.mask ? tf.tensor2d(pick(data.mask, c.steps), [batch, c.steps]) : null;
    const dy = tf.tensor(pick(data.dy, outRow), c.returnSequences ? [batch, c.steps, 2 * c.units] : [batch, 2 * c.units]);
    const shapes = [[c.inputDim, 4 * c.units], [c.units, 4 * c.units], [4 * c.units]];
    const vars = data.weights.map((w, i) => tf.variable(tf.tensor(w, shapes[i % 3]!)));
    let forward: (xx: tf.Tensor) => tf.Tensor;
    if (kind === 'fused') {
      const [kF, rF, bF, kB, rB, bB] = vars as [tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable];
      const w = { forwardKernel: kF, forwardRecurrent: rF, forwardBias: bF, backwardKernel: kB, backwardRecurrent: rB, backwardBias: bB };
      forward = (xx) => fusedBiLstm(xx as tf.Tensor3D, mask, w, { units: c.units, returnSequences: c.returnSequences });
    } else {
      const layer = tf.layers.bidirectional({
        // glorotUniform: tfjs's orthogonal initializer takes seconds at these sizes; weights are set below anyway.
        layer: tf.layers.lstm({ units: c.units, returnSequences: c.returnSequences, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform' }) as tf.RNN,
        mergeMode: 'concat',
      });
      layer.build([batch, c.steps, c.inputDim]);
      layer.setWeights(vars);
      const layerVars = layer.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val);
      forward = (xx) => layer.call(xx, mask ? { mask } : {}) as tf.Tensor;
      vars.splice(0, vars.length, ...layerVars);
    }
    const y = forward(x).dataSync() as Float32Array;
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(forward(x), dy)) as tf.Scalar, [x, ...vars]);
    const ordered = [x, ...vars].map((v) => grads[v.name]!.dataSync() as Float32Array);
    tf.dispose([x, ...vars]);
    result = { y, grads: ordered };
  });
  return result!;
}

function expectClose(got: Result, want: Result, tolerance: number): void {
  expect(scaledMaxDiff(got.y, want.y), 'outputs').toBeLessThan(tolerance);
  got.grads.forEach((g, i) => expect(scaledMaxDiff(g, want.grads[i]!), GRAD_NAMES[i]).toBeLessThan(tolerance));
}

async function onBackend(name: string, f: () => Result): Promise<Result> {
  await tf.setBackend(name);
  return f();
}

describe('fused BiLSTM kernel vs tf.layers.bidirectional(lstm)', () => {
  beforeAll(async () => {
    await startWasm(1);
  });
  afterAll(() => {
    configureNativeKernels({ threads: undefined });
  });

  it('runs on the native module', () => {
    expect(nativeRuntime(), nativeKernelsStatus().reason).not.toBeNull();
  });

  // Odd sizes on purpose: units not a multiple of the 4-lane vectors, batch and widths not
  // multiples of the 4 × 8 tile; a row of one step and a fully masked row.
  const small: Case[] = [
    { batch: 5, steps: 9, inputDim: 7, units: 6, returnSequences: true, lengths: [9, 4, 1, 0, 7] },
    { batch: 5, steps: 9, inputDim: 7, units: 6, returnSequences: false, lengths: [9, 4, 1, 0, 7] },
    { batch: 3, steps: 6, inputDim: 10, units: 8, returnSequences: true, lengths: null },
    { batch: 3, steps: 6, inputDim: 10, units: 8, returnSequences: false, lengths: null },
  ];
  for (const threads of [1, 2]) {
    it.each(small)(`small sizes on ${threads} thread(s), against the cpu backend: %j`, async (c) => {
      configureNativeKernels({ threads });
      const data = caseData(c, c.units * 100 + c.steps);
      const want = await onBackend('cpu', () => evaluate('tfjs', c, data));
      expectClose(await onBackend('cpu', () => evaluate('fused', c, data)), want, 1e-5);
      expectClose(await onBackend('wasm', () => evaluate('fused', c, data)), want, 1e-5);
      expect(nativeKernelsStatus().threads).toBe(threads);
    });
  }

  // lstm-ref's layers at full size: batch 64, 100 steps, 256 → 64 returning sequences, then
  // 128 → 32 returning the last output; rows of 1 to 100 valid steps. tfjs's layer on the cpu
  // backend takes minutes for a whole batch here, so the cpu reference runs on two rows of the batch
  // (100 and 32 valid steps), with the output gradient zero on the other 62: rows are independent,
  // so the fused kernel's outputs and input gradient on those rows, and its weight gradients, must
  // equal the reference's on the two rows alone (rows of 1 and 0 steps: small sizes above). (model-lstm's tests check the
  // whole batch against the layer's tfjs-op path on wasm.)
  const lengths = Array.from({ length: 64 }, (_, b) => (b === 0 ? 100 : b === 1 ? 1 : 1 + ((b * 37) % 100)));
  const real: Case[] = [
    { batch: 64, steps: 100, inputDim: 256, units: 64, returnSequences: true, lengths },
    { batch: 64, steps: 100, inputDim: 128, units: 32, returnSequences: false, lengths },
  ];
  const rows = [0, 63];
  it.each(real)('real sizes on 1 and 2 threads, against the cpu backend: %j', { timeout: 180_000 }, async (c) => {
    const data = caseData(c, c.inputDim);
    const outRow = (c.returnSequences ? c.steps : 1) * 2 * c.units;
    const sparse = { ...data, dy: data.dy.map((v, i) => (rows.includes(Math.floor(i / outRow)) ? v : 0)) };
    const cpuRef = await onBackend('cpu', () => evaluate('tfjs', c, sparse, rows));
    // Sums over up to 6,400 rows of float32 products: compare relative to each result's scale.
    const tolerance = 2e-5;
    let oneThread: Result | undefined;
    for (const threads of [1, 2]) {
      configureNativeKernels({ threads });
      const sub = await onBackend('wasm', () => evaluate('fused', c, sparse));
      const perRow = (a: Float32Array, n: number) => Float32Array.from(rows.flatMap((r) => Array.from(a.subarray(r * n, (r + 1) * n))));
      expectClose(
        { y: perRow(sub.y, outRow), grads: [perRow(sub.grads[0]!, c.steps * c.inputDim), ...sub.grads.slice(1)] },
        cpuRef,
        tolerance,
      );
      const full = evaluate('fused', c, data);
      // Two threads compute each element exactly as one thread does: identical results.
      if (oneThread) {
        expect(full.y).toEqual(oneThread.y);
        full.grads.forEach((g, i) => expect(g, GRAD_NAMES[i]).toEqual(oneThread!.grads[i]));
      }
      oneThread = full;
    }
  });

  it('with two threads, each direction runs on its own thread and the input gradient is split by rows', async () => {
    configureNativeKernels({ threads: 2 });
    await tf.setBackend('wasm');
    const c = real[0]!;
    nativeRuntime()!.clearRunLog();
    evaluate('fused', c, caseData(c, 5));
    // Runs: forward pass (y), forward pass again under the gradient tape, backward pass, input gradient.
    const log = nativeRunLog();
    const described = log.map((run) => run.map((r) => `${r.thread}:${r.label}`).sort());
    expect(described).toEqual([
      ['0:forward pass, direction 0', '1:forward pass, direction 1'],
      ['0:forward pass, direction 0', '1:forward pass, direction 1'],
      ['0:backward pass, direction 0', '1:backward pass, direction 1'],
      ['0:input gradient, rows 0-3200', '1:input gradient, rows 3200-6400'],
    ]);
    // The worker's jobs were reported by the worker itself, from another thread.
    for (const run of log) {
      const [mine, worker] = [run.find((r) => r.thread === 0)!, run.find((r) => r.thread === 1)!];
      expect(mine.threadId).toBe(threadId);
      expect(worker.threadId).not.toBe(threadId);
    }
  });

  it('keeps no activations and leaks no tensors outside a gradient scope', async () => {
    await tf.setBackend('wasm');
    const c = small[0]!;
    const data = caseData(c, 9);
    const x = tf.tensor3d(data.x, [c.batch, c.steps, c.inputDim]);
    const shapes = [[c.inputDim, 4 * c.units], [c.units, 4 * c.units], [4 * c.units]];
    const [kF, rF, bF, kB, rB, bB] = data.weights.map((w, i) => tf.tensor(w, shapes[i % 3]!));
    const w = { forwardKernel: kF!, forwardRecurrent: rF!, forwardBias: bF!, backwardKernel: kB!, backwardRecurrent: rB!, backwardBias: bB! };
    const before = tf.memory().numTensors;
    tf.tidy(() => fusedBiLstm(x, null, w, { units: c.units, returnSequences: true }).dataSync());
    expect(tf.memory().numTensors).toBe(before);
    const grads = tf.grads((xx: tf.Tensor) => tf.sum(fusedBiLstm(xx as tf.Tensor3D, null, w, { units: c.units, returnSequences: false })))([x]);
    expect(grads[0]!.shape).toEqual(x.shape);
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, ...Object.values(w)]);
  });
});
