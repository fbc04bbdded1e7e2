/**
 * Cross-validated evidence for the frozen encoders and the fusion: which text features, poster
 * features and fusion the defaults use (docs/benchmarks/encoders.md). It runs the trainer's own code
 * on the trainer's folds: films in core's folds (foldPlan), heads cross-fitted by training's
 * crossFitHeads, fusions by training-fusion's crossFitFusion (model-fusion's stacker and late fusion),
 * scores with thresholds tuned on the other folds by metrics' crossFittedEvaluation, under each
 * threshold strategy. Out-of-fold probabilities are cached in <cache-dir>/probe-oof, so fusion
 * candidates reuse their members; results are merged into --out and printed as Markdown tables.
 *
 *   npx nx run encoder-probe:cv -- [--only 'text:|fusion:'] [--list] [--limit N]
 */
import * as tf from '@tensorflow/tfjs';
import {
  DatasetOptionsSchema, defaultCacheRoot, findWorkspaceRoot, FoldOptionsSchema, foldPlan, GENRES, hashString, NUM_GENRES, parseCommandLine, readDataset,
  resolveDatasetDir, writeFileAtomic,
} from '@filmgenre/core';
import { crossFittedEvaluation, THRESHOLD_STRATEGIES, type ThresholdStrategy } from '@filmgenre/metrics';
import { initBackend } from '@filmgenre/tf-runtime';
import { createFrozenFeatureHead, crossFitHeads, FROZEN_HEAD_DEFAULTS, labelMatrix } from '@filmgenre/training';
import { crossFitFusion, FusionRecipeOptionsSchema } from '@filmgenre/training-fusion';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import {
  concatColumns, posterPass, selectColumns, tfidfFeatures, useLiteFeatures, winkMeanFeatures, type FeatureMatrix, type PassResult,
} from './probe/features.js';

const options = parseCommandLine(z.object({
  ...DatasetOptionsSchema.shape,
  ...FoldOptionsSchema.shape,
  only: z.string().optional().describe('run only the candidates whose names match this regular expression'),
  list: z.boolean().default(false).describe('list the candidates and exit'),
  out: z.string().optional().describe('results JSON, merged across runs of the same films and folds (default reports/probe-encoders.json)'),
}), 'probe-encoders [options]: cross-validated evidence for the encoders and fusions');
const root = findWorkspaceRoot();
const cacheDir = options.cacheDir ? resolve(options.cacheDir) : defaultCacheRoot(root);
const out = resolve(options.out ?? join(root, 'reports', 'probe-encoders.json'));
const log = (line: string) => process.stderr.write(`${line}\n`);

const films = readDataset(resolveDatasetDir(options.data), options.limit ? { limit: options.limit } : {}).films;
const plan = foldPlan(films, { seed: options.seed, folds: options.folds });
const labels = labelMatrix(films);

// ---------------------------------------------------------------- features (lazy, memoised)
const memo = new Map<string, Promise<unknown>>();
function once<T>(key: string, make: () => Promise<T>): Promise<T> {
  if (!memo.has(key)) memo.set(key, make());
  return memo.get(key) as Promise<T>;
}
const useLite = () => once('use-lite', async () => (await useLiteFeatures(films, cacheDir)).matrix);
const wink = () => once('wink', async () => (await winkMeanFeatures(films)).matrix);
const tfidf = () => once('tfidf', async () => tfidfFeatures(films));
/** Columns of a poster pass: e.g. cols('v2-128x256', ['block_10:mean', 'block_10:max']). */
const cols = async (passName: string, parts: readonly string[]): Promise<FeatureMatrix> => {
  const pass: PassResult = await once(`pass:${passName}`, () => posterPass(passName, films, cacheDir));
  return selectColumns(pass.matrix, parts.map((p) => {
    const range = pass.columns.get(p);
    if (!range) throw new Error(`${passName} has no columns '${p}' (has ${[...pass.columns.keys()].join(', ')})`);
    return range;
  }), `${passName}[${parts.join(',')}]`);
};
const B10X = ['block_10_expand_relu:mean', 'block_10_expand_relu:max', 'block_10:mean', 'block_10:max'];
const v2 = () => cols('v2-128x256', B10X);

// ---------------------------------------------------------------- heads
/**
 * A head over frozen features, built and trained as the trainer's are (training's createFrozenFeatureHead,
 * crossFitHeads, FROZEN_HEAD_DEFAULTS): dropout 0.5 in the MLP, batch 256, patience 2, unweighted loss. `hidden` 0 is a
 * logistic regression; `bags` heads per fold are averaged.
 */
interface Head {
  hidden: number;
  learningRate: number;
  epochs: number;
  bags?: number;
  /** z-score the features with each head's training rows (default true; off for TF-IDF rows). */
  standardize?: boolean;
  /**
   * Start the output biases at each genre's log-odds in the training folds: a linear head started at
   * p = 0.5 was stopped early long before reaching the ≈ 10 % base rates.
   */
  priorBias?: boolean;
}
/** The defaults' head (training's FROZEN_HEAD_DEFAULTS). */
const MLP: Head = { hidden: FROZEN_HEAD_DEFAULTS.hiddenUnits, learningRate: FROZEN_HEAD_DEFAULTS.learningRate, epochs: FROZEN_HEAD_DEFAULTS.epochs };
const LR: Head = { hidden: 0, learningRate: 3e-3, epochs: 60, priorBias: true };
/** Adam moves every weight by about the learning rate per step, so a wide linear head's logits move by ≈ width × rate. */
const LR_WIDE: Head = { ...LR, learningRate: 3e-4 };
const describeHead = (h: Head) => `${h.hidden ? `MLP ${h.hidden}, drop 0.5` : 'LR'}${(h.bags ?? 1) > 1 ? `, ×${h.bags} bagged` : ''}`;

function priorLogits(fold: number): Float32Array {
  const k = NUM_GENRES;
  const rows = plan.folds.reduce((n, f) => n + (f === fold ? 0 : 1), 0);
  return Float32Array.from({ length: k }, (_, g) => {
    let positives = 0;
    plan.folds.forEach((f, i) => (positives += f === fold ? 0 : labels[i * k + g]!));
    const rate = Math.min(1 - 1e-3, Math.max(1e-3, positives / rows));
    return Math.log(rate / (1 - rate));
  });
}

const checkpoints = mkdtempSync(join(tmpdir(), 'encoder-probe-'));
process.on('exit', () => rmSync(checkpoints, { recursive: true, force: true }));

async function crossFit(name: string, m: FeatureMatrix, head: Head): Promise<Float32Array> {
  const result = await crossFitHeads({
    name, features: m.data, dim: m.dim, labels, folds: plan.folds,
    createHead: (fold, bag) => {
      const model = createFrozenFeatureHead({
        inputDim: m.dim, hiddenUnits: head.hidden, dropout: FROZEN_HEAD_DEFAULTS.dropout, seed: hashString(`${options.seed}:${name}:${fold}:${bag}`), name: `probe_f${fold}_b${bag}`,
        ...(name.startsWith('poster:') ? { hiddenInitializer: 'he-normal' as const } : {}),
      });
      if (head.priorBias) {
        const output = model.layers.at(-1)!;
        tf.tidy(() => output.setWeights([output.getWeights()[0]!, tf.tensor1d(priorLogits(fold))]));
      }
      return model;
    },
    bags: head.bags ?? 1, standardize: head.standardize ?? true, learningRate: head.learningRate, classWeightStrength: 0,
    epochs: head.epochs, batchSize: FROZEN_HEAD_DEFAULTS.batchSize, patience: FROZEN_HEAD_DEFAULTS.patience, seed: options.seed, checkpointDir: join(checkpoints, name.replace(/\W/g, '_')), resume: false,
    identity: { probe: name, head }, log,
  });
  result.heads.forEach((h) => h.dispose());
  return result.outOfFold;
}

// ---------------------------------------------------------------- candidates
interface Candidate {
  name: string;
  modality: 'text' | 'poster' | 'fusion';
  what: string;
  head?: Head;
  run: () => Promise<Float32Array>;
}
const candidates: Candidate[] = [];
const byName = (name: string) => candidates.find((c) => c.name === name) ?? (() => { throw new Error(`no candidate '${name}'`); })();

const oofDir = join(cacheDir, 'probe-oof');
/** Out-of-fold probabilities of a candidate, computed once per (name, head, films and folds). */
async function oofOf(c: Candidate): Promise<Float32Array> {
  const key = createHash('sha256').update(JSON.stringify([c.name, c.what, c.head ?? null, plan.record.digest])).digest('hex').slice(0, 20);
  const path = join(oofDir, `${key}.f32`);
  if (existsSync(path)) {
    const b = readFileSync(path);
    if (b.byteLength === labels.byteLength) return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  }
  const oof = await c.run();
  writeFileAtomic(path, new Uint8Array(oof.buffer, oof.byteOffset, oof.byteLength));
  return oof;
}

function headed(name: string, modality: Candidate['modality'], what: string, features: () => Promise<FeatureMatrix>, head: Head): void {
  candidates.push({ name, modality, what, head, run: async () => crossFit(name, await features(), head) });
}

/** A fusion of members' out-of-fold probabilities, each fold fused by a fusion fitted on the other folds. */
function fused(name: string, kind: 'stacked' | 'late', members: string[]): void {
  const what = `${kind === 'late' ? 'late fusion (the recipe\'s weighting: auto)' : 'stacking (per genre, a logistic regression over the members\' logits)'} of ${members.join(' + ')}`;
  candidates.push({
    name, modality: 'fusion', what,
    run: async () => {
      const probabilities = Object.fromEntries(await Promise.all(members.map(async (m) => [m, await oofOf(byName(m))] as const)));
      const roles = kind === 'late' ? { image: members.find((m) => m.startsWith('poster:'))!, text: members.find((m) => m.startsWith('text:'))! } : undefined;
      return crossFitFusion(kind, FusionRecipeOptionsSchema.parse({}), probabilities, labels, plan.folds, { roles });
    },
  });
}

headed('text:tfidf-LR', 'text', 'TF-IDF, the 5,000 most frequent words', tfidf, { ...LR, learningRate: 1e-2, standardize: false });
headed('text:wink-MLP', 'text', 'mean wink-100d word vectors', wink, MLP);
headed('text:use-LR', 'text', 'USE-lite 512-d', useLite, LR);
headed('text:use-MLP', 'text', 'USE-lite 512-d', useLite, MLP);
headed('text:use-MLP-x5', 'text', 'USE-lite 512-d', useLite, { ...MLP, bags: 5 });

headed('poster:mid160-conv1-LR', 'poster', 'MobileNetV2-1.4 graph (the previous default), Conv_1 mean, 160×160', () => cols('mid-160', ['Conv_1:mean']), LR_WIDE);
headed('poster:mid160-conv1-MLP', 'poster', 'MobileNetV2-1.4 graph (the previous default), Conv_1 mean, 160×160', () => cols('mid-160', ['Conv_1:mean']), MLP);
headed('poster:v2-128x256-b10mean-LR', 'poster', 'MobileNetV2-1.0 block_10 mean (96-d), 128×256', () => cols('v2-128x256', ['block_10:mean']), LR);
headed('poster:v2-128x256-b10x-LR', 'poster', 'MobileNetV2-1.0 block_10 expansion + output, mean+max, 128×256', v2, LR_WIDE);
headed('poster:v2-128x256-b10x-MLP', 'poster', 'MobileNetV2-1.0 block_10 expansion + output, mean+max, 128×256', v2, MLP);
headed('poster:v2-128x256-b10x-MLP-x5', 'poster', 'MobileNetV2-1.0 block_10 expansion + output, mean+max, 128×256 (the default)', v2, { ...MLP, bags: 5 });

const joint = async () => concatColumns([await useLite(), await v2()], 'joint');
headed('fusion:joint-use+v2-LR', 'fusion', 'one head over [USE-lite, v2-128x256-b10x]', joint, LR_WIDE);
headed('fusion:joint-use+v2-MLP', 'fusion', 'one head over [USE-lite, v2-128x256-b10x]', joint, MLP);
fused('fusion:late-use+v2', 'late', ['text:use-MLP', 'poster:v2-128x256-b10x-MLP']);
fused('fusion:late-x5x5', 'late', ['text:use-MLP-x5', 'poster:v2-128x256-b10x-MLP-x5']);
fused('fusion:stack-genre', 'stacked', ['text:use-MLP', 'poster:v2-128x256-b10x-MLP']);
fused('fusion:stack-genre-x5', 'stacked', ['text:use-MLP-x5', 'poster:v2-128x256-b10x-MLP']);
fused('fusion:stack-genre-x5x5', 'stacked', ['text:use-MLP-x5', 'poster:v2-128x256-b10x-MLP-x5']);
const MANY = ['text:use-MLP-x5', 'text:use-LR', 'text:wink-MLP', 'poster:v2-128x256-b10x-MLP', 'poster:mid160-conv1-MLP', 'fusion:joint-use+v2-MLP'];
fused('fusion:stack-genre-many', 'stacked', MANY);
fused('fusion:stack-genre-many-x5', 'stacked', MANY.map((m) => (m === 'poster:v2-128x256-b10x-MLP' ? `${m}-x5` : m)));

// ---------------------------------------------------------------- run
if (options.list) {
  for (const c of candidates) console.log(`${c.name.padEnd(36)} ${c.what}${c.head ? ` — ${describeHead(c.head)}` : ''}`);
  process.exit(0);
}
const only = options.only ? new RegExp(options.only) : undefined;
const backend = await initBackend('wasm');
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
log(`[probe] ${films.length} films, ${options.folds} folds (seed ${options.seed}, digest ${plan.record.digest}), backend ${backend.name} ${backend.threads} thread(s), load ${load()}`);

interface Scores { microF1: number; macroF1: number; macroF1AllGenres: number }
interface Result { name: string; modality: string; what: string; head?: string; scores: Record<ThresholdStrategy, Scores>; finishedAt: string; load: string }
const previous = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as { split?: { digest: string }; results: Record<string, Result> }) : undefined;
// Results of other films or folds are not comparable: start afresh.
const results: Record<string, Result> = previous?.split?.digest === plan.record.digest ? previous.results : {};
for (const c of candidates) {
  if (only && !only.test(c.name)) continue;
  const started = performance.now();
  const oof = await oofOf(c);
  const scores = Object.fromEntries(THRESHOLD_STRATEGIES.map((strategy) => {
    const { report } = crossFittedEvaluation(oof, labels, plan.folds, strategy);
    return [strategy, { microF1: report.micro.f1, macroF1: report.macro.f1, macroF1AllGenres: report.macroAllGenres.f1 }];
  })) as Record<ThresholdStrategy, Scores>;
  results[c.name] = { name: c.name, modality: c.modality, what: c.what, ...(c.head ? { head: describeHead(c.head) } : {}), scores, finishedAt: new Date().toISOString(), load: load() };
  const s = scores.shared;
  log(`[probe] ${c.name}: micro ${s.microF1.toFixed(3)} macro ${s.macroF1.toFixed(3)} / ${s.macroF1AllGenres.toFixed(3)} (shared threshold), ${((performance.now() - started) / 1000).toFixed(0)} s, load ${load()}`);
  writeFileAtomic(out, `${JSON.stringify({ films: films.length, split: plan.record, genres: GENRES, results }, null, 1)}\n`);
}

// ---------------------------------------------------------------- report
const cell = (s: Scores) => `${s.microF1.toFixed(3)} / ${s.macroF1.toFixed(3)} / ${s.macroF1AllGenres.toFixed(3)}`;
for (const modality of ['text', 'poster', 'fusion']) {
  const rows = candidates.flatMap((c) => (results[c.name]?.modality === modality ? [results[c.name]!] : []));
  if (rows.length === 0) continue;
  console.log(`\n### ${modality}\n`);
  console.log('| candidate | features | head | **shared threshold**: micro / macro present / macro all-25 | per-genre F1 thresholds | per-genre micro thresholds |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| \`${r.name.split(':')[1]}\` | ${r.what} | ${r.head ?? '—'} | **${cell(r.scores.shared)}** | ${cell(r.scores['per-genre'])} | ${cell(r.scores.micro)} |`);
}
process.exit(0);
