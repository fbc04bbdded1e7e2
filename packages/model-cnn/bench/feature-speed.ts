/**
 * Feature-extraction speed of the pretrained poster extractor per input size, on the active backend.
 * Sizes are interleaved round by round so machine-load drift hits them alike; the median is reported.
 *   npx tsx packages/model-cnn/bench/feature-speed.ts [--sizes 224,160,128,96] [--rounds 5] [--batch 32] [--backend wasm]
 */
import * as tf from '@tensorflow/tfjs';
import { loadavg } from 'node:os';
import { initBackend, type BackendRequest } from '@filmgenre/tf-runtime';
import { PosterFeatureExtractor } from '../src/feature-extractor.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
};
const sizes = arg('sizes', '224,160,128,96').split(',').map(Number);
const rounds = Number(arg('rounds', '5'));
const batch = Number(arg('batch', '32'));
const info = await initBackend(arg('backend', 'wasm') as BackendRequest);

const extractors = new Map<number, PosterFeatureExtractor>();
const inputs = new Map<number, tf.Tensor4D>();
for (const size of sizes) {
  const t0 = performance.now();
  extractors.set(size, await PosterFeatureExtractor.fromNsfwjs({ inputSize: size }));
  console.log(`load + warm-up at ${size}: ${(performance.now() - t0).toFixed(0)} ms`);
  inputs.set(size, tf.randomUniform([batch, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D);
}
const samples = new Map<number, number[]>(sizes.map((s) => [s, []]));
for (let r = 0; r < rounds; r++) {
  for (const size of sizes) {
    const t0 = performance.now();
    const out = extractors.get(size)!.extract(inputs.get(size)!);
    await out.data();
    out.dispose();
    samples.get(size)!.push((performance.now() - t0) / batch);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ref = median(samples.get(sizes[0]!)!);
console.log(`backend ${info.name} (threads ${info.threads}), batch ${batch}, ${rounds} rounds, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('| input | ms/poster (median) | min | relative | 5,375 posters |');
console.log('|---|---|---|---|---|');
for (const size of sizes) {
  const m = median(samples.get(size)!);
  const min = Math.min(...samples.get(size)!);
  console.log(`| ${size}×${size} | ${m.toFixed(1)} | ${min.toFixed(1)} | ${(m / ref).toFixed(2)} | ${((m * 5375) / 60000).toFixed(1)} min |`);
}
for (const e of extractors.values()) e.dispose();
tf.dispose([...inputs.values()]);
