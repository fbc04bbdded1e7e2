/**
 * Speed of USE-lite overview embedding on this machine (no cache), per batch size.
 *
 *   npx tsx packages/model-sentence-encoder/bench/encoder-speed.ts [--n 512] [--batches 1,8,32,64] [--rounds 2]
 *   FILMGENRE_WASM_THREADS=1 npx tsx packages/model-sentence-encoder/bench/encoder-speed.ts
 *
 * Takes the first n development overviews (dataset found as the trainer finds it), embeds them with
 * each batch size in turn, round after round (so drift in machine load hits every size alike), and
 * prints the median ms per overview. Check `uptime` first: the machine is shared.
 */
import { readDataset, resolveDatasetDir } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { SentenceEncoder } from '../src/encoder.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '512' }, batches: { type: 'string', default: '1,8,32,64' }, rounds: { type: 'string', default: '2' }, backend: { type: 'string', default: 'wasm' } },
});
const n = Number(values.n);
const batchSizes = values.batches!.split(',').map(Number);
const backend = await initBackend(values.backend as 'wasm');
const texts = readDataset(resolveDatasetDir()).films.slice(0, n).map((f) => f.overview);
const encoders = new Map<number, SentenceEncoder>();
for (const b of batchSizes) encoders.set(b, await SentenceEncoder.load({ batchSize: b }));
await encoders.get(batchSizes[0]!)!.embed(texts.slice(0, 16)); // warm-up
const times = new Map<number, number[]>(batchSizes.map((b) => [b, []]));
for (let round = 0; round < Number(values.rounds); round++) {
  for (const b of batchSizes) {
    const start = performance.now();
    await encoders.get(b)!.embed(texts);
    times.get(b)!.push((performance.now() - start) / texts.length);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`backend ${backend.name}, ${backend.threads} thread(s), ${texts.length} overviews, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (const b of batchSizes) console.log(`batch ${String(b).padStart(3)}: ${median(times.get(b)!).toFixed(2)} ms/overview (rounds: ${times.get(b)!.map((t) => t.toFixed(2)).join(', ')})`);
for (const e of encoders.values()) e.dispose();
