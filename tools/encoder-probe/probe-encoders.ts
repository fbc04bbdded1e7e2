/**
 * Cross-validated evidence for the pretrained encoders: which text features, poster features and
 * fusion to make the defaults. Development films only (the dataset's 5,375); nothing is tuned on the
 * films it is scored on.
 *
 *   npx tsx tools/encoder-probe/probe-encoders.ts                    # every candidate
 *   npx tsx tools/encoder-probe/probe-encoders.ts --only 'text:|fusion:'   # a subset (regex on names)
 *   npx tsx tools/encoder-probe/probe-encoders.ts --list             # candidate names
 *
 * Options: --folds 5 --seed 0 --cache-dir <workspace>/.cache --out reports/probe-encoders.json.
 * Steps: features for all films (cached on disk: USE-lite embeddings, poster features per trunk,
 * node and size; `probe-features.ts` computes them alone and reports their cold cost); 5-fold
 * cross-validation, folds by a seeded hash of the film Id; per fold a head (one-vs-rest logistic
 * regression or a one-hidden-layer MLP with dropout, Adam, binary cross-entropy, optional positive
 * weights) with early stopping on 10% of the training folds; out-of-fold probabilities scored with
 * thresholds chosen by nested cross-validation (each fold thresholded with values tuned on the other
 * folds): one shared threshold, per-genre thresholds for each genre's F1, per-genre thresholds for
 * micro-F1. Fusion: one head over concatenated features ("joint"), late fusion (weight nested),
 * stacking (per-genre logistic regression over members' out-of-fold logits, nested).
 * Results are merged into --out (JSON) and printed as Markdown tables. Out-of-fold probabilities are
 * cached in <cache-dir>/probe-oof so fusion candidates reuse their members.
 */
import { findWorkspaceRoot, GENRES, NUM_GENRES, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { createHash } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { assignFolds, crossValidate, describeHead, type HeadConfig } from './probe/cv.js';
import {
  concatColumns, posterPass, selectColumns, tfidfFeatures, useLiteFeatures, winkMeanFeatures, type FeatureMatrix, type PassResult,
} from './probe/features.js';
import { average, lateFusion, stack } from './probe/fusion.js';
import { scoreAllModes, type Scores, type ThresholdMode } from './probe/metrics.js';

const root = findWorkspaceRoot();
const { values } = parseArgs({
  options: {
    folds: { type: 'string', default: '5' },
    seed: { type: 'string', default: '0' },
    only: { type: 'string' },
    list: { type: 'boolean', default: false },
    'cache-dir': { type: 'string', default: join(root, '.cache') },
    out: { type: 'string', default: join(root, 'reports', 'probe-encoders.json') },
  },
});
const K = NUM_GENRES;
const numFolds = Number(values.folds);
const seed = Number(values.seed);
const cacheDir = values['cache-dir']!;
const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------- data
const dataset = readDataset(resolveDatasetDir());
const films = dataset.films;
const ids = films.map((f) => f.id);
const labels = new Uint8Array(films.length * K);
films.forEach((f, i) => labels.set(f.labels, i * K));
const folds = assignFolds(ids, numFolds, seed);

// ---------------------------------------------------------------- features (lazy, memoised)
const memo = new Map<string, Promise<unknown>>();
function once<T>(key: string, make: () => Promise<T>): Promise<T> {
  if (!memo.has(key)) memo.set(key, make());
  return memo.get(key) as Promise<T>;
}
const featureCost: Record<string, { seconds: number; computed: number; note?: string }> = {};
const useLite = () => once('use-lite', async () => {
  const r = await useLiteFeatures(films, cacheDir);
  featureCost['use-lite'] = { seconds: r.seconds, computed: r.computed, note: `${r.multiWindow} of ${films.length} overviews need more than one 128-piece window` };
  return r.matrix;
});
const wink = () => once('wink', async () => {
  const r = await winkMeanFeatures(films);
  featureCost['wink-mean'] = { seconds: r.seconds, computed: films.length };
  return r.matrix;
});
const pass = (name: string) => once(`pass:${name}`, async () => {
  const r = await posterPass(name, films, cacheDir);
  featureCost[name] = { seconds: r.seconds, computed: r.computed };
  return r;
});
/** Columns of a poster pass: e.g. cols('v2-128x256', ['block_10:mean', 'block_10:max']). */
const cols = async (passName: string, parts: readonly string[]): Promise<FeatureMatrix> => {
  const r: PassResult = await pass(passName);
  return selectColumns(r.matrix, parts.map((p) => {
    const range = r.columns.get(p);
    if (!range) throw new Error(`${passName} has no columns '${p}' (has ${[...r.columns.keys()].join(', ')})`);
    return range;
  }), `${passName}[${parts.join(',')}]`);
};
const B10 = ['block_10:mean', 'block_10:max'];
const B10X = ['block_10_expand_relu:mean', 'block_10_expand_relu:max', ...B10];
const B6B10 = ['block_6_expand_relu:mean', 'block_6_expand_relu:max', ...B10X];

// ---------------------------------------------------------------- candidates
interface Candidate {
  name: string;
  modality: 'text' | 'poster' | 'fusion';
  what: string;
  /** Cold feature cost key(s) in featureCost. */
  costOf: string[];
  run: () => Promise<Float32Array>;
  head?: HeadConfig;
}

const LR: HeadConfig = { kind: 'linear', learningRate: 3e-3, batchSize: 256, maxEpochs: 60, patience: 4, priorBias: true };
/**
 * Adam moves every weight by about the learning rate per step, so a linear head's logits move by
 * ≈ dim × lr: high-dimensional poster features need a smaller rate (at 3e-3 the 1792-d head was
 * past its best after one epoch).
 */
const LR_WIDE: HeadConfig = { ...LR, learningRate: 3e-4 };
const MLP: HeadConfig = { kind: 'mlp', hidden: 512, dropout: 0.5, learningRate: 2e-3, batchSize: 256, maxEpochs: 40, patience: 4 };
const cvOpts = { labels, numGenres: K, folds, ids, seed, log };

function cvCandidate(name: string, modality: Candidate['modality'], what: string, costOf: string[], features: () => Promise<FeatureMatrix>, head: HeadConfig,
  extra: { augment?: () => Promise<FeatureMatrix>; tta?: boolean } = {}): Candidate {
  return {
    name, modality, what, costOf, head,
    run: async () => {
      const m = await features();
      const augment = extra.augment ? await extra.augment() : undefined;
      const r = await crossValidate(m, head, { ...cvOpts, ...(augment ? { augment, tta: extra.tta ?? false } : {}) });
      log(`[cv] ${name}: ${m.dim}-d, best epochs ${r.epochs.join('/')}, ${r.seconds.toFixed(0)} s`);
      return r.oof;
    },
  };
}

const oofDir = join(cacheDir, 'probe-oof');
/** Out-of-fold probabilities of a candidate, computed once per (name, config, folds, seed). */
async function oofOf(c: Candidate): Promise<Float32Array> {
  const key = createHash('sha256').update(JSON.stringify([c.name, c.what, c.head ?? null, numFolds, seed, ids.length])).digest('hex').slice(0, 20);
  const path = join(oofDir, `${key}.f32`);
  if (existsSync(path)) {
    const b = readFileSync(path);
    if (b.byteLength === films.length * K * 4) return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  }
  const oof = await c.run();
  mkdirSync(oofDir, { recursive: true });
  writeFileSync(path, new Uint8Array(oof.buffer, oof.byteOffset, oof.byteLength));
  return oof;
}

const candidates: Candidate[] = [];
const add = (c: Candidate) => candidates.push(c);
const byName = (name: string) => {
  const c = candidates.find((x) => x.name === name);
  if (!c) throw new Error(`no candidate '${name}'`);
  return c;
};

// Text.
const TFIDF_LR: HeadConfig = { kind: 'linear', learningRate: 1e-2, batchSize: 256, maxEpochs: 60, patience: 4, standardize: false, priorBias: true };
add(cvCandidate('text:tfidf-LR', 'text', 'TF-IDF, 5,000 words by document frequency on the training folds', [], async () => ({ name: 'tfidf', dim: 0, data: new Float32Array() }), TFIDF_LR));
byName('text:tfidf-LR').run = async () => {
  const r = await crossValidate(undefined, TFIDF_LR, { ...cvOpts, featuresFor: (train) => tfidfFeatures(films, train) });
  log(`[cv] text:tfidf-LR: best epochs ${r.epochs.join('/')}, ${r.seconds.toFixed(0)} s`);
  return r.oof;
};
add(cvCandidate('text:wink-LR', 'text', 'mean wink-100d word vectors', ['wink-mean'], wink, LR));
add(cvCandidate('text:wink-MLP', 'text', 'mean wink-100d word vectors', ['wink-mean'], wink, MLP));
add(cvCandidate('text:use-LR', 'text', 'USE-lite 512-d', ['use-lite'], useLite, LR));
add(cvCandidate('text:use-MLP', 'text', 'USE-lite 512-d', ['use-lite'], useLite, MLP));
add(cvCandidate('text:use-MLP1024-posw', 'text', 'USE-lite 512-d', ['use-lite'], useLite, { ...MLP, hidden: 1024, positiveWeightStrength: 0.5 }));
add(cvCandidate('text:use-MLP-x5', 'text', 'USE-lite 512-d', ['use-lite'], useLite, { ...MLP, seeds: 5 }));

// Posters.
add(cvCandidate('poster:mid160-conv1-LR', 'poster', 'MobileNetV2-1.4 graph (today), Conv_1 mean, 160×160', ['mid-160'], () => cols('mid-160', ['Conv_1:mean']), LR_WIDE));
add(cvCandidate('poster:mid160-conv1-MLP', 'poster', 'MobileNetV2-1.4 graph (today), Conv_1 mean, 160×160', ['mid-160'], () => cols('mid-160', ['Conv_1:mean']), MLP));
add(cvCandidate('poster:mid160-b10-LR', 'poster', 'MobileNetV2-1.4 graph, block_10 mean+max, 160×160', ['mid-160'], () => cols('mid-160', B10), LR_WIDE));
add(cvCandidate('poster:mid160-all-MLP', 'poster', 'MobileNetV2-1.4 graph, Conv_1 + block_10 + block_13 expansion, mean+max, 160×160', ['mid-160'],
  () => cols('mid-160', ['Conv_1:mean', 'Conv_1:max', ...B10, 'block_13_expand:mean', 'block_13_expand:max']), MLP));
add(cvCandidate('poster:v2-128x256-b10mean-LR', 'poster', 'MobileNetV2-1.0 block_10 mean (96-d), 128×256', ['v2-128x256'], () => cols('v2-128x256', ['block_10:mean']), LR));
add(cvCandidate('poster:v2-224-b10mean-LR', 'poster', 'MobileNetV2-1.0 block_10 mean (96-d), 224×224', ['v2-224'], () => cols('v2-224', ['block_10:mean']), LR));
for (const size of ['224', '112x224', '128x256', '160x320']) {
  add(cvCandidate(`poster:v2-${size}-b10x-LR`, 'poster', `MobileNetV2-1.0 block_10 expansion + output, mean+max, ${size.includes('x') ? size : `${size}×${size}`}`, [`v2-${size}`], () => cols(`v2-${size}`, B10X), LR_WIDE));
}
add(cvCandidate('poster:v2-128x256-b10x-MLP', 'poster', 'MobileNetV2-1.0 block_10 expansion + output, mean+max, 128×256', ['v2-128x256'], () => cols('v2-128x256', B10X), MLP));
add(cvCandidate('poster:v2-128x256-b10x-MLP-x5', 'poster', 'MobileNetV2-1.0 block_10 expansion + output, mean+max, 128×256', ['v2-128x256'], () => cols('v2-128x256', B10X), { ...MLP, seeds: 5 }));
add(cvCandidate('poster:v2-128x256-b6b10-MLP', 'poster', 'MobileNetV2-1.0 block_6 exp. + block_10 exp. + block_10, mean+max, 128×256', ['v2-128x256'], () => cols('v2-128x256', B6B10), MLP));
add(cvCandidate('poster:v2-128x256-unit-b10x-LR', 'poster', 'as v2-128x256-b10x but [0,1] input (what the NSFW training fed)', ['v2-128x256-unit'], () => cols('v2-128x256-unit', B10X), LR));
add(cvCandidate('poster:v2-128x256-b10x-MLP-flip', 'poster', 'v2-128x256-b10x, mirrored posters as extra training rows, predictions averaged with the mirror', ['v2-128x256', 'v2-128x256-flip'],
  () => cols('v2-128x256', B10X), MLP, { augment: () => cols('v2-128x256-flip', B10X), tta: true }));
add(cvCandidate('poster:v2-160x320-b10x-MLP', 'poster', 'MobileNetV2-1.0 block_10 expansion + output, mean+max, 160×320', ['v2-160x320'], () => cols('v2-160x320', B10X), MLP));
add(cvCandidate('poster:mid+v2-MLP', 'poster', 'two trunks: 1.4 graph Conv_1 mean (160²) + 1.0 block_10 exp.+out. mean+max (128×256)', ['mid-160', 'v2-128x256'],
  async () => concatColumns([await cols('mid-160', ['Conv_1:mean']), await cols('v2-128x256', B10X)], 'mid+v2'), MLP));
add(cvCandidate('poster:inc-mixed5-LR', 'poster', 'InceptionV3 mixed5 mean+max, 150×300', ['inc-150x300'], () => cols('inc-150x300', ['mixed5:mean', 'mixed5:max']), LR_WIDE));

// Fusion: joint heads over concatenated features.
const jointPoster = () => cols('v2-128x256', B10X);
add(cvCandidate('fusion:joint-use+v2-LR', 'fusion', 'one head over [USE-lite, v2-128x256-b10x]', ['use-lite', 'v2-128x256'], async () => concatColumns([await useLite(), await jointPoster()], 'joint'), LR_WIDE));
add(cvCandidate('fusion:joint-use+v2-MLP', 'fusion', 'one head over [USE-lite, v2-128x256-b10x]', ['use-lite', 'v2-128x256'], async () => concatColumns([await useLite(), await jointPoster()], 'joint'), MLP));
add(cvCandidate('fusion:joint-use+v2-MLP-x5', 'fusion', 'one head over [USE-lite, v2-128x256-b10x]', ['use-lite', 'v2-128x256'], async () => concatColumns([await useLite(), await jointPoster()], 'joint'), { ...MLP, seeds: 5 }));
add(cvCandidate('fusion:joint-use+mid-MLP', 'fusion', 'one head over [USE-lite, 1.4 graph Conv_1 mean 160²]', ['use-lite', 'mid-160'], async () => concatColumns([await useLite(), await cols('mid-160', ['Conv_1:mean'])], 'joint-mid'), MLP));
add(cvCandidate('fusion:joint-use+v2-MLP-flip', 'fusion', 'joint MLP, mirrored posters as extra rows + averaged predictions', ['use-lite', 'v2-128x256', 'v2-128x256-flip'],
  async () => concatColumns([await useLite(), await jointPoster()], 'joint'), MLP,
  { augment: async () => concatColumns([await useLite(), await cols('v2-128x256-flip', B10X)], 'joint-flip'), tta: true }));

// Fusion of members' out-of-fold probabilities.
function probabilityFusion(name: string, what: string, members: string[], combine: (oofs: Float32Array[]) => Float32Array): Candidate {
  return {
    name, modality: 'fusion', what: `${what} of ${members.join(' + ')}`, costOf: [],
    run: async () => combine(await Promise.all(members.map((m) => oofOf(byName(m))))),
  };
}
let lateWeights: number[] = [];
add(probabilityFusion('fusion:late-use+v2', 'late fusion, text weight chosen per fold on the other folds', ['text:use-MLP', 'poster:v2-128x256-b10x-MLP'], ([a, b]) => {
  const r = lateFusion(a!, b!, labels, K, folds);
  lateWeights = r.weights;
  return r.fused;
}));
add(probabilityFusion('fusion:stack-genre', 'stacking, per-genre LR over that genre\'s logits', ['text:use-MLP', 'poster:v2-128x256-b10x-MLP'], (m) => stack(m, labels, K, folds, 'genre')));
add(probabilityFusion('fusion:stack-all', 'stacking, per-genre LR over all 25 logits of each member', ['text:use-MLP', 'poster:v2-128x256-b10x-MLP'], (m) => stack(m, labels, K, folds, 'all', 10)));
const MANY = ['text:use-MLP-x5', 'text:use-LR', 'text:wink-MLP', 'poster:v2-128x256-b10x-MLP', 'poster:mid160-conv1-MLP', 'fusion:joint-use+v2-MLP'];
add(probabilityFusion('fusion:stack-genre-many', 'stacking, per-genre LR over that genre\'s logits', MANY, (m) => stack(m, labels, K, folds, 'genre')));
add(probabilityFusion('fusion:stack-genre-many-x5', 'stacking, per-genre LR over that genre\'s logits',
  [...MANY.filter((m) => m !== 'poster:v2-128x256-b10x-MLP'), 'poster:v2-128x256-b10x-MLP-x5'], (m) => stack(m, labels, K, folds, 'genre')));
add(probabilityFusion('fusion:stack-genre-x5', 'stacking, per-genre LR over that genre\'s logits', ['text:use-MLP-x5', 'poster:v2-128x256-b10x-MLP'], (m) => stack(m, labels, K, folds, 'genre')));
add(probabilityFusion('fusion:stack-genre-x5x5', 'stacking, per-genre LR over that genre\'s logits', ['text:use-MLP-x5', 'poster:v2-128x256-b10x-MLP-x5'], (m) => stack(m, labels, K, folds, 'genre')));
add(probabilityFusion('fusion:late-x5x5', 'late fusion, text weight chosen per fold on the other folds', ['text:use-MLP-x5', 'poster:v2-128x256-b10x-MLP-x5'], ([a, b]) => lateFusion(a!, b!, labels, K, folds).fused));
add(probabilityFusion('fusion:mean-joint+late', 'plain average', ['fusion:joint-use+v2-MLP', 'fusion:late-use+v2'], average));

// ---------------------------------------------------------------- run
if (values.list) {
  for (const c of candidates) console.log(`${c.name.padEnd(36)} ${c.what}${c.head ? ` — ${describeHead(c.head)}` : ''}`);
  process.exit(0);
}
const only = values.only ? new RegExp(values.only) : undefined;
const backend = await initBackend('wasm');
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
log(`[probe] ${films.length} films, ${numFolds} folds (seed ${seed}), backend ${backend.name} ${backend.threads} thread(s), load ${load()}`);

interface Result {
  name: string;
  modality: string;
  what: string;
  head?: string;
  scores: Record<ThresholdMode | 'shared-in-sample', Scores> & { sharedThreshold: number };
  featureCost: Record<string, { seconds: number; computed: number; note?: string }>;
  lateWeights?: number[];
  finishedAt: string;
  load: string;
}
const previous: Record<string, Result> = existsSync(values.out!) ? (JSON.parse(readFileSync(values.out!, 'utf8')) as { results: Record<string, Result> }).results : {};
const results: Record<string, Result> = { ...previous };
for (const c of candidates) {
  if (only && !only.test(c.name)) continue;
  const started = performance.now();
  const oof = await oofOf(c);
  const scores = scoreAllModes(oof, labels, K, folds);
  results[c.name] = {
    name: c.name, modality: c.modality, what: c.what, ...(c.head ? { head: describeHead(c.head) } : {}),
    scores, featureCost: Object.fromEntries(c.costOf.map((k) => [k, featureCost[k] ?? previous[c.name]?.featureCost[k] ?? { seconds: 0, computed: 0 }])),
    ...(c.name === 'fusion:late-use+v2' && lateWeights.length ? { lateWeights } : {}),
    finishedAt: new Date().toISOString(), load: load(),
  };
  const s = scores.shared;
  log(`[probe] ${c.name}: micro ${s.microF1.toFixed(3)} macro ${s.macroF1Present.toFixed(3)} / ${s.macroF1All.toFixed(3)} (nested shared threshold), ${((performance.now() - started) / 1000).toFixed(0)} s, load ${load()}`);
  mkdirSync(dirname(values.out!), { recursive: true });
  writeFileSync(values.out!, `${JSON.stringify({ films: films.length, folds: numFolds, seed, genres: GENRES, cpus: cpus()[0]?.model, results }, null, 1)}\n`);
}

// ---------------------------------------------------------------- report
const f3 = (x: number) => x.toFixed(3);
for (const modality of ['text', 'poster', 'fusion']) {
  const rows = Object.values(results).filter((r) => r.modality === modality);
  if (rows.length === 0) continue;
  console.log(`\n### ${modality}\n`);
  console.log('| candidate | features | head | shared thr. (nested): micro / macro present / macro all | per-genre F1 thr. (nested) | per-genre micro thr. (nested) | cold feature cost |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const m = (s: Scores) => `${f3(s.microF1)} / ${f3(s.macroF1Present)} / ${f3(s.macroF1All)}`;
    const cost = Object.entries(r.featureCost).map(([k, v]) => `${k}: ${v.seconds ? `${v.seconds.toFixed(0)} s` : 'cached'}`).join('; ');
    console.log(`| ${r.name} | ${r.what} | ${r.head ?? '—'} | ${m(r.scores.shared)} | ${m(r.scores['per-genre-f1'])} | ${m(r.scores['per-genre-micro'])} | ${cost || '—'} |`);
  }
}
