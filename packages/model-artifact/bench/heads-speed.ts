/**
 * Cost of scoring a saved model's heads (compileFeatureHeads) on each runtime, per batch size: one
 * JSON line each, {"model", "runtime", "batch", "cpuMsPerFilm", "wallMsPerFilm", "maxAbsDiff", "load1"}.
 * CPU time (process.cpuUsage) rather than wall time, so a busy machine blurs it less; both runtimes
 * run on one thread, as a serving worker runs them, interleaved round by round.
 *   npx tsx packages/model-artifact/bench/heads-speed.ts --models-dir models [--models cnn,sentence] [--batches 1,8,32]
 */
import { parseCommandLine } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { compileFeatureHeads, openModelDir, type FeatureHeads } from '../src/index.js';

const options = parseCommandLine(z.object({
  modelsDir: z.string().default('models').describe('directory of a default run (its cnn/ and sentence/ hold bagged heads)'),
  models: z.string().default('cnn,sentence').describe('comma-separated sub-directories whose heads to time'),
  batches: z.string().regex(/^\d+(,\d+)*$/).default('1,8,32').describe('feature rows per call'),
  rounds: z.int().min(1).default(5).describe('rounds of every (runtime, batch), interleaved'),
}), 'npx tsx packages/model-artifact/bench/heads-speed.ts [options]');
await initBackend('wasm', { log: () => {}, wasmThreads: 1 });

for (const name of options.models.split(',')) {
  const model = await openModelDir(join(options.modelsDir, name)).loadLayersModel();
  if (!model) throw new Error(`${join(options.modelsDir, name)}: no model.json`);
  const dim = model.inputs[0]!.shape.at(-1) as number;
  const runtimes: FeatureHeads[] = [await compileFeatureHeads(model, { runtime: 'onnxruntime', threads: 1 }), await compileFeatureHeads(model, { runtime: 'tfjs' })];
  const samples = new Map<string, { cpu: number[]; wall: number[]; maxAbsDiff: number }>();
  for (let round = 0; round < options.rounds; round++) {
    for (const batch of options.batches.split(',').map(Number)) {
      const features = Float32Array.from({ length: batch * dim }, (_, i) => Math.sin(i * 12.9898 + round) * 1.5);
      const outputs: Float32Array[] = [];
      for (const heads of runtimes) {
        const calls = Math.max(8, Math.ceil(256 / batch));
        await heads.predict(features, batch);
        const cpu0 = process.cpuUsage();
        const wall0 = performance.now();
        for (let i = 0; i < calls; i++) outputs.push(await heads.predict(features, batch));
        const cpu = process.cpuUsage(cpu0);
        const key = `${heads.runtime}:${batch}`;
        const entry = samples.get(key) ?? { cpu: [], wall: [], maxAbsDiff: 0 };
        entry.cpu.push((cpu.user + cpu.system) / 1e3 / calls / batch);
        entry.wall.push((performance.now() - wall0) / calls / batch);
        samples.set(key, entry);
      }
      const [onnx, tfjs] = [outputs[0]!, outputs.at(-1)!];
      const entry = samples.get(`onnxruntime:${batch}`)!;
      for (let i = 0; i < onnx.length; i++) entry.maxAbsDiff = Math.max(entry.maxAbsDiff, Math.abs(onnx[i]! - tfjs[i]!));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const [key, entry] of samples) {
    const [runtime, batch] = key.split(':');
    console.log(JSON.stringify({
      model: name, runtime, batch: Number(batch), cpuMsPerFilm: +median(entry.cpu).toFixed(3), wallMsPerFilm: +median(entry.wall).toFixed(3),
      ...(runtime === 'onnxruntime' ? { maxAbsDiff: entry.maxAbsDiff } : {}), load1: +loadavg()[0]!.toFixed(2),
    }));
  }
  for (const heads of runtimes) heads.dispose();
  model.dispose();
}
