/**
 * Speed of the default poster trunk (DEFAULT_FEATURE_SPEC: MobileNetV2-1.0 to block_10 at 128×256,
 * pooled) on every encoder runtime that loads, per (threads, batch): one JSON line each,
 *   {"runtime", "threads", "batch", "msPerPoster" (median), "minMsPerPoster", "load1"}
 * comparable with ../shared/bench/torch_trunk_reference.py and onnxruntime_trunk_reference.sh (the
 * same network and input size). Timed: PosterFeatureExtractor.extract on uint8 posters, i.e. what
 * training and serving call (input conversion, the trunk, pooling). Runtimes and batch sizes are
 * interleaved round by round; tfjs' wasm threads are fixed per process, so each thread count runs
 * in a child process of its own. `--trunk`, `--nodes`, `--pooling`, `--width`, `--height` time another
 * trunk instead (e.g. the inception member's: --trunk inception_v3 --nodes mixed2,mixed5 --pooling mean).
 *   npx tsx packages/model-cnn/bench/trunk-speed.ts [--threads 1,2] [--batches 1,32] [--rounds 5] [--runtimes onnxruntime,tfjs]
 */
import { parseCommandLine } from '@filmgenre/core';
import { onnxRuntimeUnavailable } from '@filmgenre/onnx-runtime';
import { initBackend } from '@filmgenre/tf-runtime';
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { FEATURE_POOLINGS, FEATURE_TRUNKS, PosterFeatureExtractor, resolveFeatureSpec } from '../src/index.js';

const options = parseCommandLine(z.object({
  threads: z.array(z.int().min(1)).default([1, 2]).describe('threads per runtime (onnxruntime intra-op threads; tfjs wasm threads)'),
  batches: z.array(z.int().min(1)).default([1, 32]).describe('posters per extract call'),
  rounds: z.int().min(1).default(5).describe('rounds; each times every (runtime, batch) on at least 32 posters'),
  runtimes: z.array(z.enum(['onnxruntime', 'tfjs'])).optional().describe('runtimes to time (default: every one that loads)'),
  trunk: z.enum(FEATURE_TRUNKS).optional().describe('another trunk than the default features\''),
  nodes: z.array(z.string()).optional().describe('its pooled nodes (default: the trunk\'s own)'),
  pooling: z.array(z.enum(FEATURE_POOLINGS)).optional().describe('poolings (default: mean,max)'),
  width: z.int().optional().describe('input width (default 128)'),
  height: z.int().optional().describe('input height (default 256)'),
}), 'trunk-speed [options]: ms per poster of a poster trunk (default: the default features\'), per runtime, threads and batch');
const spec = resolveFeatureSpec({
  ...(options.trunk ? { trunk: options.trunk } : {}), ...(options.nodes ? { nodes: options.nodes } : {}), ...(options.pooling ? { pooling: options.pooling } : {}),
  ...(options.width ? { inputWidth: options.width } : {}), ...(options.height ? { inputHeight: options.height } : {}),
});
/** The trunk options as given, for the children. */
const specArgs = Object.entries({ trunk: options.trunk, nodes: options.nodes?.join(','), pooling: options.pooling?.join(','), width: options.width, height: options.height })
  .flatMap(([flag, value]) => (value === undefined ? [] : [`--${flag}`, String(value)]));
const { threads: threadCounts, batches } = options;
const runtimes: ('onnxruntime' | 'tfjs')[] = options.runtimes ?? (onnxRuntimeUnavailable() === undefined ? ['onnxruntime', 'tfjs'] : ['tfjs']);

if (threadCounts.length > 1) {
  // One child per thread count, one after the other, relaying their lines.
  for (const threads of threadCounts) {
    const args = [...process.execArgv, fileURLToPath(import.meta.url), '--threads', String(threads), '--batches', batches.join(','),
      '--rounds', String(options.rounds), '--runtimes', runtimes.join(','), ...specArgs];
    const code = await new Promise<number | null>((done) => spawn(process.execPath, args, { stdio: 'inherit' }).on('exit', done));
    if (code !== 0) throw new Error(`trunk-speed child for ${threads} thread(s) exited with ${code}`);
  }
} else {
  const threads = threadCounts[0]!;
  // As the trainer starts it: the threaded wasm build, here on `threads` threads.
  await initBackend('wasm', { log: () => {}, wasmThreads: threads, wasmSharedMemory: true });
  const extractors = await Promise.all(runtimes.map((runtime) => PosterFeatureExtractor.create(spec, { runtime, threads })));
  const per = spec.inputWidth * spec.inputHeight * 3;
  let seed = 1;
  const pixels = Uint8Array.from({ length: Math.max(...batches) * per }, () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24);
  /** ms per poster of every timed call, per [runtime index][batch index]. */
  const samples = extractors.map(() => batches.map((): number[] => []));
  for (let round = -1; round < options.rounds; round++) {
    for (const [r, extractor] of extractors.entries()) {
      for (const [b, batch] of batches.entries()) {
        const input = pixels.subarray(0, batch * per);
        for (let done = 0; done < Math.max(32, batch); done += batch) {
          const start = performance.now();
          await extractor.extract(input);
          // Round -1 warms up (first calls allocate and plan).
          if (round >= 0) samples[r]![b]!.push((performance.now() - start) / batch);
        }
      }
    }
  }
  const round2 = (x: number) => Math.round(x * 100) / 100;
  for (const [r, extractor] of extractors.entries()) {
    for (const [b, batch] of batches.entries()) {
      const times = samples[r]![b]!.sort((x, y) => x - y);
      console.log(JSON.stringify({
        runtime: extractor.runtime, trunk: spec.trunk, nodes: spec.nodes, threads, batch, msPerPoster: round2(times[times.length >> 1]!), minMsPerPoster: round2(times[0]!), load1: round2(loadavg()[0]!),
      }));
    }
    extractor.dispose();
  }
}
