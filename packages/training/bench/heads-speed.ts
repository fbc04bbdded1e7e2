/**
 * What one training step of the frozen-feature heads costs, and whether training a fold's bags as one
 * wider network would be cheaper: ms per step (batch 256, Adam, the recipe's loss) of one head
 * (dim → 512 → 25) against one network holding five such heads side by side (dim → 5·512 → 5·25, the
 * same first-layer work, a five-times larger second layer). One JSON line per (dim, shape):
 *
 *   npx tsx packages/training/bench/heads-speed.ts [--steps 30] [--rounds 3]
 */
import * as tf from '@tensorflow/tfjs';
import { NUM_GENRES, parseCommandLine } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { cpuUsage } from 'node:process';
import { loadavg } from 'node:os';
import { z } from 'zod';
import { compileForTraining } from '../src/loss.js';
import { createFrozenFeatureHead, FROZEN_HEAD_DEFAULTS } from '../src/frozen-features.js';

const options = parseCommandLine(z.object({
  steps: z.int().positive().default(30).describe('timed steps per measurement'),
  rounds: z.int().positive().default(3).describe('measurements per shape, interleaved'),
}), 'heads-speed [options]: ms per training step of one frozen-feature head against five side by side');
const backend = await initBackend('wasm', { wasmSharedMemory: true, log: () => {} });
const batch = FROZEN_HEAD_DEFAULTS.batchSize;

for (const dim of [960, 512]) {
  const shapes = {
    'one head': () => createFrozenFeatureHead({ inputDim: dim, hiddenUnits: 512, dropout: 0.5, seed: 1, name: 'one' }),
    'five heads as one network': () => createFrozenFeatureHead({ inputDim: dim, hiddenUnits: 5 * 512, dropout: 0.5, seed: 1, name: 'five', numGenres: 5 * NUM_GENRES }),
  };
  for (let round = 0; round < options.rounds; round++) {
    for (const [shape, make] of Object.entries(shapes)) {
      const model = make();
      const outputs = model.outputs[0]!.shape[1] as number;
      compileForTraining(model, FROZEN_HEAD_DEFAULTS.learningRate, new Array<number>(outputs).fill(1));
      const xs = tf.randomNormal([batch, dim]);
      const ys = tf.tidy(() => tf.randomUniform([batch, outputs]).greater(0.9).toFloat());
      const step = () => model.trainOnBatch(xs, ys);
      for (let i = 0; i < 3; i++) await step();
      const cpu0 = cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < options.steps; i++) await step();
      const wallMs = (performance.now() - t0) / options.steps;
      const cpu = cpuUsage(cpu0);
      console.log(JSON.stringify({
        dim, shape, round, batch, msPerStep: Number(wallMs.toFixed(2)), cpuMsPerStep: Number(((cpu.user + cpu.system) / 1000 / options.steps).toFixed(2)),
        threads: backend.threads, load: loadavg().map((l) => Number(l.toFixed(1))),
      }));
      tf.dispose([xs, ys]);
      model.dispose();
    }
  }
}
process.exit(0);
