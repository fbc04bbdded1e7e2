/**
 * Overview-embedding speed of USE-lite (no cache) per runtime, thread count and batch size, on the
 * first n development overviews (the dataset found as the trainer finds it):
 *
 *   npx tsx packages/model-sentence-encoder/bench/encoder-speed.ts [--n 256] [--rounds 3] [--threads 1,2] [--batches 1,32]
 *
 * Prints one JSON line per (runtime that loads, threads, batch): {"runtime", "threads", "batch",
 * "msPerOverview"}, the median over rounds; the machine (CPU, load average) goes to stderr. tfjs is
 * the shipped TF.js graph on the wasm backend, whose thread count is fixed when it starts, so every
 * (runtime, threads) runs in a process of its own, and each round runs all of them in turn
 * (interleaved, so drift in machine load hits them alike). `batch` is windows per call, within
 * MAX_BATCH_PIECES padded pieces. Check `uptime` first: the machine is shared.
 */
import { parseCommandLine, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { onnxRuntimeUnavailable } from '@filmgenre/onnx-runtime';
import { initBackend } from '@filmgenre/tf-runtime';
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { SentenceEncoder } from '../src/encoder.js';

const options = parseCommandLine(z.object({
  n: z.int().min(1).default(256).describe('overviews embedded per measurement'),
  rounds: z.int().min(1).default(3).describe('rounds; the median is reported'),
  threads: z.array(z.int().min(1)).default([1, 2]).describe('thread counts'),
  batches: z.array(z.int().min(1)).default([1, 32]).describe('windows per call'),
  // Internal: one (runtime, threads) measured in this process, its results printed as JSON.
  child: z.enum(['onnxruntime', 'tfjs']).optional().describe('(internal) measure one runtime in this process'),
}), 'encoder-speed [options]: ms per overview of USE-lite, per runtime, threads and batch');

if (options.child) {
  // One round for one (runtime, threads): every batch size, after a warm-up.
  const threads = options.threads[0]!;
  await initBackend('wasm', { log: () => {}, wasmThreads: threads });
  const texts = readDataset(resolveDatasetDir()).films.slice(0, options.n).map((f) => f.overview);
  const result: Record<number, number> = {};
  for (const batchSize of options.batches) {
    const encoder = await SentenceEncoder.load({ runtime: options.child, threads, batchSize });
    await encoder.embed(texts.slice(0, 16));
    const start = performance.now();
    await encoder.embed(texts);
    result[batchSize] = (performance.now() - start) / texts.length;
    encoder.dispose();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const runtimes = onnxRuntimeUnavailable() === undefined ? (['onnxruntime', 'tfjs'] as const) : (['tfjs'] as const);
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
process.stderr.write(`${cpus()[0]?.model}, ${cpus().length} cores; ${options.n} overviews, ${options.rounds} rounds; load average at start ${load()}\n`);
const samples = new Map<string, number[]>();
for (let round = 0; round < options.rounds; round++) {
  for (const runtime of runtimes) {
    for (const threads of options.threads) {
      const args = [...process.execArgv, fileURLToPath(import.meta.url), '--child', runtime, '--threads', String(threads), '--batches', options.batches.join(','), '--n', String(options.n)];
      const result = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').at(-1)!) as Record<string, number>;
      for (const [batch, ms] of Object.entries(result)) {
        const key = JSON.stringify({ runtime, threads, batch: Number(batch) });
        samples.set(key, [...(samples.get(key) ?? []), ms]);
      }
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stderr.write(`load average at end ${load()}\n`);
for (const [key, ms] of samples) {
  process.stdout.write(`${JSON.stringify({ ...(JSON.parse(key) as object), msPerOverview: Number(median(ms).toFixed(2)) })}\n`);
}
