/**
 * Refits the stacked fusion on the members' saved out-of-fold predictions of one or more models
 * directories (any format: only films.json is read), with this code, on the run's folds, and prints
 * one JSON line per directory and per mix of members: what moved a fusion's numbers between two runs,
 * the members or the fusion's code. `--swap` also scores each directory's cnn with the other's sentence.
 *
 *   npx tsx packages/training-fusion/bench/refit.ts --dirs /tmp/old-models,models [--swap] [--seed 0 --folds 5]
 */
import { DatasetOptionsSchema, FoldOptionsSchema, foldOf, NUM_GENRES, parseCommandLine, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { crossFittedEvaluation } from '@filmgenre/metrics';
import { FILMS_JSON } from '@filmgenre/model-artifact';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { crossFitFusion, FusionRecipeOptionsSchema } from '../src/recipe.js';

const options = parseCommandLine(z.object({
  ...DatasetOptionsSchema.shape,
  ...FoldOptionsSchema.shape,
  dirs: z.array(z.string()).describe('models directories, each with cnn/ and sentence/ (and fusion/, compared when present)'),
  swap: z.boolean().default(false).describe('also each pair of directories with their cnn members exchanged'),
}), 'refit [options]: the stacked fusion refitted on saved members, with this code');
const k = NUM_GENRES;
const films = readDataset(resolveDatasetDir(options.data)).films;
const labelsOf = new Map(films.map((f) => [f.id, f.labels]));

/** A member's out-of-fold predictions, by film Id. */
function heldOut(dir: string): Map<string, Float32Array> {
  const record = JSON.parse(readFileSync(join(dir, FILMS_JSON), 'utf8')) as { heldOut: string[]; heldOutProbabilities: string };
  const bytes = Buffer.from(record.heldOutProbabilities, 'base64');
  const p = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return new Map(record.heldOut.map((id, i) => [id, p.subarray(i * k, (i + 1) * k)]));
}

async function score(name: string, cnn: Map<string, Float32Array>, sentence: Map<string, Float32Array>, saved?: Map<string, Float32Array>) {
  const ids = [...cnn.keys()].filter((id) => sentence.has(id) && labelsOf.has(id));
  const rows = (m: Map<string, Float32Array>) => { const out = new Float32Array(ids.length * k); ids.forEach((id, i) => out.set(m.get(id)!, i * k)); return out; };
  const labels = Float32Array.from(ids.flatMap((id) => Array.from(labelsOf.get(id)!)));
  const folds = Int32Array.from(ids, (id) => foldOf(id, { seed: options.seed, folds: options.folds }));
  const fusionOptions = FusionRecipeOptionsSchema.parse({});
  const members = { cnn: rows(cnn), sentence: rows(sentence) };
  const outOfFold = await crossFitFusion('stacked', fusionOptions, members, labels, folds);
  const f1 = (p: Float32Array) => { const { report } = crossFittedEvaluation(p, labels, folds, fusionOptions.thresholds); return [Number(report.micro.f1.toFixed(4)), Number(report.macro.f1.toFixed(4))]; };
  let maxDiffFromSaved: number | undefined;
  if (saved) {
    const s = rows(saved);
    maxDiffFromSaved = outOfFold.reduce((m, v, i) => Math.max(m, Math.abs(v - s[i]!)), 0);
  }
  console.log(JSON.stringify({ members: name, films: ids.length, cnn: f1(members.cnn), sentence: f1(members.sentence), stacked: f1(outOfFold), ...(saved ? { maxDiffFromSaved } : {}) }));
}

const fusionOf = (dir: string) => { try { return heldOut(join(dir, 'fusion')); } catch { return undefined; } };
for (const dir of options.dirs) await score(dir, heldOut(join(dir, 'cnn')), heldOut(join(dir, 'sentence')), fusionOf(dir));
if (options.swap) {
  for (const a of options.dirs) for (const b of options.dirs) if (a !== b) await score(`cnn of ${a} + sentence of ${b}`, heldOut(join(a, 'cnn')), heldOut(join(b, 'sentence')));
}
process.exit(0);
