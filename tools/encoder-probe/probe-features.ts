/**
 * Computes (or finds in the cache) the probe's candidate features for every development film, and
 * says how long each cold computation took. `probe-encoders.ts` runs it first; on its own:
 *
 *   npx tsx tools/encoder-probe/probe-features.ts [--passes mid-160,v2-128x256,…] [--text]
 *
 * With --cost-sample N it times a cold computation (no cache) on the first N films instead and
 * extrapolates to all of them; run it with FILMGENRE_WASM_THREADS=1 and =2 side by side:
 *
 *   FILMGENRE_WASM_THREADS=1 npx tsx tools/encoder-probe/probe-features.ts --cost-sample 160 --text --passes mid-160,v2-128x256
 */
import { readDataset, resolveDatasetDir, findWorkspaceRoot } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { POSTER_PASSES, posterPass, useLiteFeatures } from './probe/features.js';

const { values } = parseArgs({
  options: {
    passes: { type: 'string', default: Object.keys(POSTER_PASSES).join(',') },
    text: { type: 'boolean', default: false },
    'cache-dir': { type: 'string', default: join(findWorkspaceRoot(), '.cache') },
    'cost-sample': { type: 'string' },
  },
});
const backend = await initBackend('wasm');
const all = readDataset(resolveDatasetDir()).films;
const sample = values['cost-sample'] ? Number(values['cost-sample']) : undefined;
const films = sample ? all.slice(0, sample) : all;
const cacheDir = sample ? undefined : values['cache-dir']!;
const report = (features: string, r: { seconds: number; computed: number }, extra: Record<string, unknown> = {}) => console.log(JSON.stringify({
  features, ...extra, seconds: Number(r.seconds.toFixed(1)), computed: r.computed, threads: backend.threads, load: loadavg().map((l) => Number(l.toFixed(1))),
  ...(sample ? { msPerFilm: Number(((r.seconds * 1000) / r.computed).toFixed(1)), extrapolatedSecondsForAll: Math.round((r.seconds / r.computed) * all.length) } : {}),
}));
if (values.text) {
  const r = await useLiteFeatures(films, cacheDir);
  report('use-lite', r, { multiWindow: r.multiWindow });
}
for (const name of values.passes!.split(',').filter(Boolean)) {
  const r = await posterPass(name, films, cacheDir);
  report(name, r, { dim: r.matrix.dim });
}
