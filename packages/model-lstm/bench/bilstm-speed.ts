// Train-step and predict time of the reference BiLSTM (ENGINEERING.md lstm-ref) on the active backend:
// tfjs's own Bidirectional(LSTM) layers against this package's FastBiLSTM, on its tfjs-op path
// ('ops') and on the fused native kernel ('fused'; 'fast' = whichever FastBiLSTM picks).
//   npx tsx packages/model-lstm/bench/bilstm-speed.ts [--backend wasm] [--steps 3] [--variants tfjs,ops,fused]
import * as tf from '@tensorflow/tfjs';
import { parseCommandLine } from '@filmgenre/core';
import { BackendOptionSchema, initBackend } from '@filmgenre/tf-runtime';
import { z } from 'zod';
import { FastBiLSTM } from '../src/bilstm-layer.js';

const { backend, steps, variants } = parseCommandLine(z.object({
  backend: BackendOptionSchema.unwrap().default('wasm'),
  steps: z.int().positive().default(3).describe('timed train steps per variant'),
  variants: z.array(z.enum(['tfjs', 'ops', 'fused', 'fast'])).default(['tfjs', 'ops', 'fused']).describe('BiLSTMs to time'),
}), 'bilstm-speed [options]: train-step and predict time of the reference BiLSTM, per implementation');
const batch = 64;
const seqLen = 100;
const vocab = 10_000;

// initBackend registers @filmgenre/wasm-kernels' training kernels (the embedding gradient among them).
await initBackend(backend);
// Whether the embedding gradient (UnsortedSegmentSum) exists decides if the embedding can train here.
let embeddingTrainable = true;
try {
  tf.tidy(() => tf.unsortedSegmentSum(tf.ones([2, 2]), tf.tensor1d([0, 1], 'int32'), 2).dataSync());
} catch {
  embeddingTrainable = false;
}

function build(kind: string): tf.LayersModel {
  const input = tf.input({ shape: [seqLen], dtype: 'int32' });
  let x = tf.layers.embedding({ inputDim: vocab, outputDim: 256, maskZero: true, trainable: embeddingTrainable }).apply(input) as tf.SymbolicTensor;
  if (kind === 'tfjs') {
    x = tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 64, returnSequences: true, recurrentActivation: 'sigmoid' }) as tf.RNN }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 32, recurrentActivation: 'sigmoid' }) as tf.RNN }).apply(x) as tf.SymbolicTensor;
  } else {
    const kernel = kind === 'ops' || kind === 'fused' ? kind : 'auto';
    x = new FastBiLSTM({ units: 64, returnSequences: true, kernel }).apply(x) as tf.SymbolicTensor;
    x = new FastBiLSTM({ units: 32, kernel }).apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.dropout({ rate: 0.3 }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 25, activation: 'sigmoid' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'binaryCrossentropy' });
  return model;
}

// Realistic lengths: overviews of 30–100 tokens, zero-padded at the end.
const ids = new Int32Array(batch * seqLen);
for (let b = 0; b < batch; b++) {
  const len = 30 + Math.floor(Math.random() * 71);
  for (let t = 0; t < len; t++) ids[b * seqLen + t] = 1 + Math.floor(Math.random() * (vocab - 1));
}
const xs = tf.tensor2d(ids, [batch, seqLen], 'int32');
const ys = tf.cast(tf.randomUniform([batch, 25]).greater(0.8), 'float32');

// The machine is shared: report this process's CPU time next to wall time (wasm runs on one thread,
// so CPU time is what the step would take on an otherwise idle core).
async function measure(step: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / steps, cpu: (c.user + c.system) / 1000 / steps };
}
const fmt = (m: { wall: number; cpu: number }) => `${m.cpu.toFixed(0)} ms CPU (${m.wall.toFixed(0)} ms wall)`;

console.log(`backend ${tf.getBackend()}, batch ${batch}, ${steps} timed steps, embedding trainable: ${embeddingTrainable}`);
for (const kind of variants) {
  const model = build(kind);
  await model.trainOnBatch(xs, ys); // warm-up: kernel compilation, weight allocation
  const train = await measure(async () => { await model.trainOnBatch(xs, ys); });
  const predict = await measure(async () => { tf.tidy(() => (model.predict(xs) as tf.Tensor).dataSync()); });
  console.log(`${kind.padEnd(5)} train ${fmt(train)} per step; predict ${fmt(predict)} per batch; tensors ${tf.memory().numTensors}`);
  model.dispose();
}
// wasm worker threads (when enabled) keep the event loop alive after the last measurement.
process.exit(0);
