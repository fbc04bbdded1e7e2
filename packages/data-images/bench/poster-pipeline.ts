/**
 * Poster pipeline benchmark on the real dataset: cold decode throughput (empty cache in a temp dir),
 * warm cache load, and warm delivery as float32 batch tensors. Prints JSON lines.
 *   npx nx bench data-images [--data DIR] [--limit N] [--concurrency 2,4,8]
 */
import { DatasetOptionsSchema, parseCommandLine, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { BackendOptionSchema, initBackend } from '@filmgenre/tf-runtime';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { createPosterBatches, loadPosterSet } from '../src/index.js';

const argv = parseCommandLine(z.object({
  data: DatasetOptionsSchema.shape.data,
  limit: DatasetOptionsSchema.shape.limit,
  size: z.int().positive().default(64).describe('poster side in pixels'),
  concurrency: z.array(z.int().positive()).default([4]).describe('decode concurrencies for the cold runs'),
  warmRepeats: z.int().nonnegative().default(3).describe('warm loads after each cold one'),
  batch: z.int().positive().default(64).describe('posters per batch'),
  backend: BackendOptionSchema,
}), 'poster-pipeline [options]: decode, cache and batch throughput of the poster pipeline');

const print = (record: Record<string, unknown>) => console.log(JSON.stringify(record));
/**
 * Wall time and this process's CPU time (all threads, libvips' included) for fn. On a machine shared
 * with other jobs, posters per CPU-second is the steadier number; wall-clock rates depend on the load.
 */
async function measure<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { result, ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}
const rates = (count: number, ms: number, cpuMs: number) => ({
  ms: Math.round(ms), cpuMs: Math.round(cpuMs), postersPerSec: Math.round(count / (ms / 1000)), postersPerCpuSec: Math.round(count / (cpuMs / 1000)),
});
const round = (x: number) => Math.round(x * 10) / 10;

const backend = await initBackend(argv.backend, { log: () => undefined });
const dir = resolveDatasetDir(argv.data);
const { films } = readDataset(dir, { limit: argv.limit });
print({
  event: 'machine', cpus: cpus().length, cpu: cpus()[0]?.model, loadavg1: round(loadavg()[0]!), node: process.version,
  sharp: sharp.versions.sharp, vips: sharp.versions.vips, uvThreadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
  backend: backend.name, backendThreads: backend.threads, films: films.length, size: argv.size,
});

const scratch = mkdtempSync(join(tmpdir(), 'poster-bench-'));
try {
  let set: Awaited<ReturnType<typeof loadPosterSet>> | undefined;
  for (const concurrency of argv.concurrency) {
    const cacheDir = join(scratch, `cache-${concurrency}`);
    const load1 = loadavg()[0]!;
    const { result: cold, ms, cpuMs } = await measure(() => loadPosterSet(films, { size: argv.size, cacheDir, concurrency }));
    print({
      event: 'cold', concurrency, posters: cold.ids.length, bad: cold.bad.length, decoded: cold.stats.decoded,
      ...rates(cold.ids.length, ms, cpuMs), loadavg1Before: round(load1), loadavg1After: round(loadavg()[0]!),
    });
    for (let r = 0; r < argv.warmRepeats; r++) {
      const { result: warm, ms: warmMs, cpuMs: warmCpuMs } = await measure(() => loadPosterSet(films, { size: argv.size, cacheDir, concurrency }));
      if (warm.stats.decoded !== 0 || Buffer.compare(warm.pixels, cold.pixels) !== 0) throw new Error('warm load differs from cold');
      print({ event: 'warm-load', repeat: r, posters: warm.ids.length, ...rates(warm.ids.length, warmMs, warmCpuMs) });
      set = warm;
    }
    rmSync(cacheDir, { recursive: true, force: true });
  }

  if (set) {
    const loaded = set;
    for (const augment of [false, {}, false, {}] as const) {
      const { result: delivered, ms, cpuMs } = await measure(async () => {
        let count = 0;
        for await (const { xs, ys } of createPosterBatches({
          pixels: loaded.pixels, labels: loaded.labels, size: loaded.size, batchSize: argv.batch, shuffle: true, seed: 1, epoch: 0, augment,
        })) {
          if (ys.shape[0] !== xs.shape[0]) throw new Error('batch shape mismatch');
          count += xs.shape[0];
        }
        return count;
      });
      print({ event: 'warm-batches', backend: backend.name, batchSize: argv.batch, augment: augment !== false, posters: delivered, ...rates(delivered, ms, cpuMs) });
    }
  }
  print({ event: 'done', loadavg1: round(loadavg()[0]!) });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
// A threaded wasm backend keeps worker threads alive; the benchmark is done, so exit explicitly.
process.exit(0);
