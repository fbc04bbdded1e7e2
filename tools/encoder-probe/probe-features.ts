/**
 * Computes (or finds in the cache) the probe's features for every development film, and says how long
 * each cold computation took. The probe computes what it needs itself; on its own:
 *
 *   npx nx run encoder-probe:features -- [--passes mid-160,v2-128x256,…] [--text]
 *
 * With --cost-sample N it times a cold computation (no cache) on the first N films instead and
 * extrapolates to all of them; run it with FILMGENRE_WASM_THREADS=1 and =2 side by side:
 *
 *   FILMGENRE_WASM_THREADS=1 npx tsx tools/encoder-probe/probe-features.ts --cost-sample 160 --text --passes mid-160,v2-128x256
 */
import { DatasetOptionsSchema, defaultCacheRoot, findWorkspaceRoot, parseCommandLine, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { POSTER_PASSES, posterPass, useLiteFeatures } from './probe/features.js';

const options = parseCommandLine(z.object({
  ...DatasetOptionsSchema.shape,
  passes: z.array(z.string()).default(Object.keys(POSTER_PASSES)).describe(`poster passes, among ${Object.keys(POSTER_PASSES).join(', ')}`),
  text: z.boolean().default(false).describe('also the USE-lite embeddings of the overviews'),
  costSample: z.int().positive().optional().describe('time a cold computation on the first N films (no cache) and extrapolate to all'),
}), 'probe-features [options]: the encoder probe\'s features, computed or found in the cache, with their cold cost');
const backend = await initBackend('wasm');
const all = readDataset(resolveDatasetDir(options.data), options.limit ? { limit: options.limit } : {}).films;
const sample = options.costSample;
const films = sample ? all.slice(0, sample) : all;
const cacheDir = sample ? undefined : options.cacheDir ? resolve(options.cacheDir) : defaultCacheRoot(findWorkspaceRoot());
const report = (features: string, r: { seconds: number; computed: number }, extra: Record<string, unknown> = {}) => console.log(JSON.stringify({
  features, ...extra, seconds: Number(r.seconds.toFixed(1)), computed: r.computed, threads: backend.threads, load: loadavg().map((l) => Number(l.toFixed(1))),
  ...(sample ? { msPerFilm: Number(((r.seconds * 1000) / r.computed).toFixed(1)), extrapolatedSecondsForAll: Math.round((r.seconds / r.computed) * all.length) } : {}),
}));
if (options.text) {
  const r = await useLiteFeatures(films, cacheDir);
  report('use-lite', r, { multiWindow: r.multiWindow });
}
for (const name of options.passes) {
  const r = await posterPass(name, films, cacheDir);
  report(name, r, { dim: r.matrix.dim });
}
process.exit(0);
