import * as tf from '@tensorflow/tfjs';
import { parseCommandLine } from '@filmgenre/core';
import { BackendOptionSchema, initBackend } from '@filmgenre/tf-runtime';
import { fusedAdam, nativeKernelsStatus, WASM_THREADS_ENV, wasmThreadsState } from '@filmgenre/wasm-kernels';
import { z } from 'zod';
import { GENRES, LSTM_LAYERS, MODELS, type LstmLayer, type ModelName } from './models.js';

// Training-speed benchmark of the reference models: one JSON line per model on stdout, comparable
// with /work/shared/bench/torch_reference.py run in the same session (see docs/benchmarks/training-speed.md).

interface BenchResult {
  model: ModelName;
  backend: string;
  threads: number;
  /** lstm-ref only: which BiLSTM implementation ran (see LSTM_LAYERS). */
  lstmLayer?: LstmLayer;
  /** Threads of the native kernels (fused BiLSTM), when they ran. */
  nativeThreads?: number;
  /** Which build of the native module ran (relaxed: fused multiply-add in its GEMM), when it ran. */
  nativeSimd?: string;
  /** Whether the native kernels ran on tfjs's heap (no copies in and out). */
  nativeSharedHeap?: boolean;
  batch: number;
  steps: number;
  trainMsPerStep: number;
  /** Slowest and fastest timed step, to show the noise on a shared machine. */
  trainMsRange: [number, number];
  predictMsPerBatch: number;
  /** Process CPU time (all threads) over wall time during the timed steps; 200 = both cores busy. */
  cpuPercent: number;
  /** tf.memory().numTensors growth per timed step: 0 means no leak. */
  leakedTensorsPerStep: number;
  firstLoss: number;
  lastLoss: number;
  rssMB: number;
  tfjs: string;
}

/** One kernel's share of a profiled train step (`--profile`). */
interface KernelProfileLine {
  profile: ModelName;
  kernel: string;
  inputShapes: number[][];
  calls: number;
  ms: number;
}

/**
 * Times every kernel of one train step (tf.profile) and returns the slowest, grouped by kernel and
 * input shapes. Kernels that run other kernels (a gradient formulated as a convolution) count
 * both, so the sum exceeds the step; custom-gradient code that is not a kernel (the fused BiLSTM's
 * backward pass) is not listed.
 */
async function profileStep(name: ModelName, step: () => Promise<unknown>, top: number): Promise<KernelProfileLine[]> {
  const info = await tf.profile(async () => {
    await step();
  });
  const byKey = new Map<string, KernelProfileLine>();
  for (const k of info.kernels) {
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const line = byKey.get(key) ?? { profile: name, kernel: k.name, inputShapes: k.inputShapes, calls: 0, ms: 0 };
    line.calls++;
    line.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    byKey.set(key, line);
  }
  return [...byKey.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map((l) => ({ ...l, ms: round(l.ms) }));
}

async function benchModel(
  name: ModelName,
  batch: number,
  steps: number,
  warmup: number,
  threads: number,
  backend: string,
  lstmLayer: LstmLayer,
  profileTop: number,
) {
  const spec = MODELS[name];
  const model = spec.build(lstmLayer);
  model.compile({ optimizer: fusedAdam(), loss: 'binaryCrossentropy' });
  const x = spec.input(batch);
  const y = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([batch, GENRES]), 0.8), 'float32'));
  const step = async () => {
    const loss = await model.trainOnBatch(x, y);
    return Array.isArray(loss) ? loss[0]! : loss;
  };

  let firstLoss = NaN;
  for (let i = 0; i < warmup; i++) firstLoss = await step();
  const tensorsBefore = tf.memory().numTensors;
  const times: number[] = [];
  let lastLoss = NaN;
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    lastLoss = await step();
    times.push(performance.now() - t);
  }
  const wall = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  const leakedTensorsPerStep = (tf.memory().numTensors - tensorsBefore) / steps;

  const profile = profileTop > 0 ? await profileStep(name, step, profileTop) : [];

  const predict = () => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  predict();
  const predictRuns = 2;
  const p0 = performance.now();
  for (let i = 0; i < predictRuns; i++) predict();
  const predictMs = (performance.now() - p0) / predictRuns;

  const native = nativeKernelsStatus();
  const result: BenchResult = {
    model: name,
    backend,
    threads,
    ...(name === 'lstm-ref' ? { lstmLayer } : {}),
    ...(native.available ? { nativeThreads: native.threads, nativeSimd: native.simd, nativeSharedHeap: native.sharedHeap ?? false } : {}),
    batch,
    steps,
    trainMsPerStep: round(times.reduce((a, b) => a + b, 0) / steps),
    trainMsRange: [round(Math.min(...times)), round(Math.max(...times))],
    predictMsPerBatch: round(predictMs),
    cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100),
    leakedTensorsPerStep,
    firstLoss: round(firstLoss, 4),
    lastLoss: round(lastLoss, 4),
    rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
    tfjs: tf.version.tfjs,
  };
  model.dispose();
  tf.dispose([x, y]);
  return { result, profile };
}

function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

const BenchOptionsSchema = z.object({
  backend: BackendOptionSchema,
  model: z.enum(['cnn-ref', 'lstm-ref', 'all']).default('all').describe('which reference model'),
  steps: z.int().positive().default(5).describe('timed train steps per model'),
  warmup: z.int().nonnegative().default(2).describe('untimed train steps first (kernel set-up, wasm tier-up)'),
  batchSize: z.int().positive().default(64).describe('images or sequences per step (--batch itself is an Nx flag)'),
  threads: z.int().positive().optional().describe(`wasm XNNPACK threads and native kernel threads (default: all cores; also $${WASM_THREADS_ENV})`),
  profile: z.int().nonnegative().default(0).describe('after the timed steps, profile one step and print its N slowest kernels (JSON lines)'),
  lstmLayer: z.enum(LSTM_LAYERS).default('fused').describe("lstm-ref's BiLSTM: fused native kernel, its tfjs-op reference, or tfjs's bidirectional(lstm)"),
});

async function main() {
  const argv = parseCommandLine(BenchOptionsSchema, 'bench [options]: train and predict speed of the reference models, one JSON line each');
  if (argv.threads !== undefined) process.env[WASM_THREADS_ENV] = String(argv.threads);
  const info = await initBackend(argv.backend, { wasmSharedMemory: true });
  if (info.name === 'wasm') {
    const state = wasmThreadsState();
    if (!state.enabled && state.reason) console.error(`[bench] wasm threads off: ${state.reason}`);
  }
  const names: ModelName[] = argv.model === 'all' ? ['cnn-ref', 'lstm-ref'] : [argv.model];
  for (const name of names) {
    const { result, profile } = await benchModel(name, argv.batchSize, argv.steps, argv.warmup, info.threads, info.name, argv.lstmLayer, argv.profile);
    for (const line of profile) console.log(JSON.stringify(line));
    console.log(JSON.stringify(result));
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
