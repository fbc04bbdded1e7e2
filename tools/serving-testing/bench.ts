// Load benchmark of the built server: `npx nx bench serving -- --models-dir models` (this file lives
// beside the test fixtures, outside the deployed app, whose package.json lists only what it imports).
// 1. Times the models' own forward pass for one film in this process (the floor for a request).
// 2. Starts `node dist/apps/serving/main.js` on loopback and runs autocannon with poster+overview
//    multipart requests at concurrency 1 and 32; prints everything as JSON.
import { findWorkspaceRoot, GENRES, kebabCase, parseCommandLine, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { decodePoster } from '@filmgenre/data-images';
import { TextVectorizer } from '@filmgenre/data-text';
import { createPosterCnn, posterPreprocessing, savePosterClassifier } from '@filmgenre/model-cnn';
import { createOverviewModel, saveOverviewClassifier } from '@filmgenre/model-lstm';
import { fixtureFilms, fixtureMetadata } from '@filmgenre/model-artifact/testing';
import { initBackend } from '@filmgenre/tf-runtime';
import autocannon, { type Result } from 'autocannon';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { ImageClassifier, ModalityOutput, ModelMetadata, TextClassifier } from '@filmgenre/model-artifact';
import { openModelsDir, type OpenedModels } from '@filmgenre/model-registry';
import { z } from 'zod';
import { quantile } from './src/crafted.js';

/** The models in this process, loaded with the registry's opener (as the trainer's evaluation does). */
type ServingModels = OpenedModels;
const modelKeys = (models: ServingModels) => [...Object.keys(models.members), ...(models.fusion ? [models.fusion.metadata.name] : [])];
const metadataOf = (models: ServingModels, key: string): ModelMetadata => models.members[key]?.metadata ?? models.fusion!.metadata;
const isPosterModel = (model: ImageClassifier | TextClassifier): model is ImageClassifier => model.metadata.modality === 'image';

/** Passed on to the server when given. */
const passedOn = () => z.number().optional().describe('passed to the server');
const args = parseCommandLine(z.object({
  modelsDir: z.string().default('models').describe('models directory to serve'),
  duration: z.number().positive().default(10).describe('seconds per autocannon run'),
  concurrency: z.array(z.int().positive()).default([1, 32]).describe('connection counts to run'),
  film: z.string().optional().describe('IMDb id of the film to send (default: the first of the dataset)'),
  forwardRuns: z.int().positive().default(30).describe('timed forward passes for the models-only figure'),
  batchWindowMs: passedOn(),
  maxBatch: passedOn(),
  batchMaxWaitMs: passedOn(),
  inference: z.enum(['workers', 'inline']).optional().describe('passed to the server'),
  posterWorkers: passedOn(),
  maxPosterBatch: passedOn(),
  decodeProcesses: z.int().min(0).optional().describe('passed to the server (0: posters decoded in the server process)'),
  inProcessDecodePixels: z.int().min(0).optional().describe('passed to the server (0: every poster decoded in a decoder process)'),
  batchCosts: z.boolean().default(false).describe('only time each model per item at batch sizes 1-32 on real films (no server), then exit'),
  soak: z.int().positive().optional().describe('instead of the latency runs: this many mixed requests (valid, partial and hostile) against the built server, then check 0 5xx and constant tfjs_live_tensors; exit 1 if not'),
  soakConcurrency: z.int().positive().default(16).describe('concurrent clients of --soak'),
  stall: z.enum(['default-bounds', 'open-bounds']).optional().describe('instead of the latency runs: normal traffic alone and next to 4 clients sending a crafted tall PNG (97 KB, 1 × 25,000,000 with default bounds; 1 × 5,000,000 with the header bounds opened and a 1 s deadline); prints the p50/p99 of each'),
  breakdown: z.int().positive().optional().describe("instead of the load runs: this many requests one after another (c=1), each split by the server's own timings (decode, each model's wait and run); prints the p50, the p99 and the slowest 1 %'s mean of each part"),
  stallRounds: z.int().positive().default(3).describe('alternating rounds of --stall'),
  stallPerRound: z.int().positive().default(20).describe('requests per client and round of --stall'),
  modelThreads: z.int().positive().default(1).describe('XNNPACK threads per model, in the server and for the forward-time floor (the server default is 1)'),
  untrainedReferenceModels: z.boolean().default(false).describe('first write untrained models of the default architectures (64×64 study CNN, BiLSTM 64/32 over 100 tokens) to --models-dir: same forward cost as trained ones, meaningless predictions'),
}), 'bench [options]: forward-pass floor and load test of the built server');

const root = findWorkspaceRoot();
const modelsDir = resolve(root, args.modelsDir);
const mainJs = join(root, 'dist/apps/serving/main.js');
if (!existsSync(mainJs)) throw new Error(`${mainJs} not found: run npx nx build serving first`);
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

const films = readDataset(resolveDatasetDir(), { limit: args.film ? undefined : 1 }).films;
const film = args.film ? films.find((f) => f.id === args.film) : films[0];
if (!film) throw new Error(`film ${args.film} not found in the dataset`);
const posterBytes = readFileSync(film.posterPath);

/** Default-architecture models with their initial weights, saved by the packages' own save functions. */
async function writeUntrainedReferenceModels(dir: string): Promise<void> {
  const metadata = (name: string, variant: string, preprocessing: Record<string, unknown>) => fixtureMetadata({
    name, variant, thresholds: GENRES.map(() => 0.5), preprocessing, metrics: { note: 'untrained: initial weights, for speed measurements only' },
  });
  const cnn = createPosterCnn();
  const imageSize = cnn.inputs[0]!.shape[1] as number;
  await savePosterClassifier(join(dir, 'cnn'), { model: cnn, films: fixtureFilms(), metadata: metadata('cnn', 'study', { ...posterPreprocessing(imageSize) }) });
  cnn.dispose();
  const vectorizer = new TextVectorizer().adapt(readDataset(resolveDatasetDir()).films.map((f) => f.overview));
  const lstm = createOverviewModel({ vocabularySize: vectorizer.vocabularySize, sequenceLength: vectorizer.settings.sequenceLength });
  await saveOverviewClassifier(join(dir, 'lstm'), { model: lstm, vectorizer, films: fixtureFilms(), metadata: metadata('lstm', 'bilstm', {}) });
  lstm.dispose();
}

/** The film's poster decoded at each poster model's input size, by model key. */
async function postersFor(models: ServingModels, bytes: Buffer): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const [key, member] of Object.entries(models.members)) {
    if (isPosterModel(member)) out[key] = await decodePoster(bytes, { width: member.inputWidth, height: member.inputHeight });
  }
  return out;
}

/**
 * Median and p99 of the models' forward time for one film, as the server runs them (batch of 1):
 * every member one after the other (with features when the fusion needs them), then the fusion.
 */
async function forwardTime(models: ServingModels) {
  const posters = await postersFor(models, posterBytes);
  const fused = new Set(models.fusion?.members ?? []);
  const perModel: Record<string, number[]> = Object.fromEntries(modelKeys(models).map((k) => [k, []]));
  const totals: number[] = [];
  const once = async (record: boolean) => {
    const t0 = performance.now();
    const outputs: Record<string, ModalityOutput> = {};
    const times: Record<string, number> = {};
    for (const [key, member] of Object.entries(models.members)) {
      const t = performance.now();
      if (isPosterModel(member)) {
        outputs[key] = fused.has(key) ? await member.predictWithFeatures([posters[key]!]) : { probabilities: await member.predict([posters[key]!]), features: new Float32Array(0), featureDim: 0 };
      } else {
        outputs[key] = fused.has(key) ? await member.predictWithFeatures([film!.overview]) : { probabilities: await member.predict([film!.overview]), features: new Float32Array(0), featureDim: 0 };
      }
      times[key] = performance.now() - t;
    }
    if (models.fusion) {
      const t = performance.now();
      await models.fusion.predict(Object.fromEntries(models.fusion.members.map((m) => [m, outputs[m]!])));
      times[models.fusion.metadata.name] = performance.now() - t;
    }
    if (!record) return;
    for (const [key, ms] of Object.entries(times)) perModel[key]!.push(ms);
    totals.push(performance.now() - t0);
  };
  for (let i = 0; i < 5; i++) await once(false);
  for (let i = 0; i < args.forwardRuns; i++) await once(true);
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { medianMs: round(quantile(s, 0.5)), p99Ms: round(quantile(s, 0.99)) };
  };
  return {
    runs: args.forwardRuns,
    total: stats(totals),
    perModel: Object.fromEntries(Object.entries(perModel).filter(([, xs]) => xs.length).map(([k, xs]) => [k, stats(xs)])),
  };
}

/**
 * Milliseconds per item of each member at batch sizes 1…32, on distinct real films (median of
 * several calls): how much batching saves per model, which bounds what micro-batching can gain under load.
 */
async function batchCosts(models: ServingModels) {
  const sample = readDataset(resolveDatasetDir(), { limit: 32 }).films;
  const posters: Record<string, Uint8Array[]> = {};
  const decodeStarted = performance.now();
  for (const f of sample) {
    for (const [key, pixels] of Object.entries(await postersFor(models, readFileSync(f.posterPath)))) (posters[key] ??= []).push(pixels);
  }
  const decodeMsPerPoster = round((performance.now() - decodeStarted) / sample.length);
  const overviews = sample.map((f) => f.overview);
  const median = async (fn: () => Promise<unknown>, calls: number) => {
    await fn();
    const times: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t0 = performance.now();
      await fn();
      times.push(performance.now() - t0);
    }
    return quantile(times.sort((a, b) => a - b), 0.5);
  };
  const perItem: Record<string, Record<number, number>> = Object.fromEntries(Object.keys(models.members).map((k) => [k, {}]));
  for (const n of [1, 4, 8, 16, 32]) {
    const calls = n <= 4 ? 10 : 4;
    for (const [key, member] of Object.entries(models.members)) {
      const run = isPosterModel(member)
        ? () => member.predictWithFeatures(posters[key]!.slice(0, n))
        : () => member.predictWithFeatures(overviews.slice(0, n));
      perItem[key]![n] = round((await median(run, calls)) / n);
    }
    log(`batch ${n}: ${Object.keys(models.members).map((k) => `${k} ${perItem[k]![n]} ms/item`).join(', ')}`);
  }
  return { msPerItemByBatchSize: perItem, decodeMsPerPoster: { allSizes: decodeMsPerPoster } };
}

function multipartBody(): { body: Buffer; contentType: string } {
  const boundary = '----filmgenre-bench-boundary';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="poster"; filename="${basename(film!.posterPath)}"\r\nContent-Type: image/jpeg\r\n\r\n`),
    posterBytes,
    Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="overview"\r\n\r\n${film!.overview}\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

async function startServer(extraArgs: string[] = []): Promise<{ url: string; stop: () => Promise<number | null> }> {
  const serverArgs = [mainJs, '--models-dir', modelsDir, '--host', '127.0.0.1', '--port', '0', ...extraArgs];
  for (const key of ['batchWindowMs', 'maxBatch', 'batchMaxWaitMs', 'inference', 'posterWorkers', 'maxPosterBatch', 'decodeProcesses', 'inProcessDecodePixels'] as const) {
    if (args[key] !== undefined) serverArgs.push(`--${kebabCase(key)}`, String(args[key]));
  }
  serverArgs.push('--model-threads', String(args.modelThreads));
  const child = spawn(process.execPath, serverArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const line of buffered.split('\n')) {
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'ready' && entry.url) resolveUrl(entry.url);
        } catch {
          // partial line
        }
      }
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
    });
    void exited.then((code) => reject(new Error(`server exited with ${code} before it was ready`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

function summarise(result: Result) {
  const completed = result.latency.totalCount;
  return {
    connections: undefined as number | undefined,
    durationS: round(result.duration, 1),
    requests: completed,
    reqPerSec: round(completed / result.duration, 1),
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: round(result.latency.mean) },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
  };
}

if (args.untrainedReferenceModels) {
  if (existsSync(modelsDir)) throw new Error(`${modelsDir} exists; --untrained-reference-models writes a fresh directory`);
  await initBackend('auto', { log: () => {} });
  await writeUntrainedReferenceModels(modelsDir);
  log(`wrote untrained reference models to ${modelsDir}`);
}

/** `name value` of a Prometheus text line, summed over the series of that name. */
function scrape(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))) out[m[1] ?? ''] = Number(m[2]);
  return out;
}

/**
 * The soak: `total` requests from `concurrency` clients, a fixed mix of poster + overview, poster
 * only, overview only and the hostile inputs of issue 12 (truncated poster, text as poster, the 97 KB
 * PNG declaring 1 × 25,000,000 pixels, an overview of zero-width spaces, an unknown field). Every
 * answer must be the expected status, none a 5xx, and the live tensors of every model worker the same
 * after as before.
 */
async function soak(total: number, concurrency: number) {
  const sample = readDataset(resolveDatasetDir(), { limit: 32 }).films.map((f) => ({ poster: readFileSync(f.posterPath), overview: f.overview }));
  const { blackPng } = await import('./src/crafted.js');
  const tall = await blackPng(1, 25_000_000);
  type Case = { name: string; expect: number; body: (i: number) => FormData };
  const file = (bytes: Buffer, type = 'image/jpeg') => new Blob([new Uint8Array(bytes)], { type });
  const formOf = (parts: Record<string, string | Blob>) => {
    const data = new FormData();
    for (const [k, v] of Object.entries(parts)) {
      if (typeof v === 'string') data.append(k, v);
      else data.append(k, v, 'poster');
    }
    return data;
  };
  const f = (i: number) => sample[i % sample.length]!;
  // Twenty slots: 12 full, 3 poster only, 2 overview only, and one of each hostile kind every 20 requests (rotating).
  const hostile: Case[] = [
    { name: 'truncated poster', expect: 400, body: (i) => formOf({ poster: file(f(i).poster.subarray(0, 500)) }) },
    { name: 'text as poster', expect: 400, body: () => formOf({ poster: file(Buffer.from('not an image '.repeat(40)), 'image/png') }) },
    { name: 'tall PNG 1 x 25,000,000', expect: 422, body: () => formOf({ poster: file(tall, 'image/png') }) },
    { name: 'zero-width overview', expect: 400, body: () => formOf({ overview: '\u200B\uFEFF'.repeat(50) }) },
    { name: 'unknown field', expect: 400, body: (i) => formOf({ overview: f(i).overview, title: 'x' }) },
  ];
  const caseOf = (i: number): Case => {
    const slot = i % 20;
    if (slot < 12) return { name: 'poster + overview', expect: 200, body: (j) => formOf({ poster: file(f(j).poster), overview: f(j).overview }) };
    if (slot < 15) return { name: 'poster', expect: 200, body: (j) => formOf({ poster: file(f(j).poster) }) };
    if (slot < 17) return { name: 'overview', expect: 200, body: (j) => formOf({ overview: f(j).overview }) };
    return hostile[(Math.floor(i / 20) * 3 + slot - 17) % hostile.length]!;
  };

  const server = await startServer();
  try {
    const metrics = async () => (await fetch(`${server.url}/metrics`)).text();
    // Every path once, so lazily created tensors are in the baseline.
    for (let i = 0; i < 40; i++) await (await fetch(`${server.url}/v1/predict`, { method: 'POST', body: caseOf(i).body(i) })).arrayBuffer();
    const before = await metrics();
    const started = performance.now();
    const counts = new Map<string, number>();
    const unexpected: string[] = [];
    let next = 0;
    let done = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const c = caseOf(i);
        const res = await fetch(`${server.url}/v1/predict`, { method: 'POST', body: c.body(i) });
        const text = await res.text();
        const key = `${res.status}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        if (res.status !== c.expect && unexpected.length < 10) unexpected.push(`${c.name}: ${res.status} ${text.slice(0, 200)}`);
        if (++done % 1000 === 0) log(`soak: ${done}/${total}`);
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    const after = await metrics();
    const tensorsBefore = scrape(before, 'tfjs_live_tensors');
    const tensorsAfter = scrape(after, 'tfjs_live_tensors');
    const rss = (text: string) => Math.round((scrape(text, 'process_resident_memory_bytes')[''] ?? 0) / 2 ** 20);
    const fiveXX = [...counts].filter(([s]) => s.startsWith('5')).reduce((a, [, n]) => a + n, 0);
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, loadAverage: loadavg() },
      modelsDir, requests: total, concurrency, seconds: round(seconds, 1), reqPerSec: round(total / seconds, 1),
      statuses: Object.fromEntries([...counts].sort()), fiveXX, unexpected,
      liveTensors: { before: tensorsBefore, after: tensorsAfter, constant: JSON.stringify(tensorsBefore) === JSON.stringify(tensorsAfter) },
      rssMiB: { before: rss(before), after: rss(after) },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return fiveXX === 0 && unexpected.length === 0 && report.liveTensors.constant;
  } finally {
    const code = await server.stop();
    log(`server stopped (exit code ${code})`);
  }
}

/**
 * The stall measurement of issue 12 on real models (poster-stall.test.ts does the same on the tiny test
 * models): two sequential clients sending poster + overview, rounds alternating alone and next to four
 * clients that send the crafted PNG again 250 ms after each answer; each round starts with no decode
 * running. Reports the p50/p99 of each, and what the crafted requests got.
 */
async function stall(mode: 'default-bounds' | 'open-bounds', rounds: number, perRound: number) {
  const { blackPng } = await import('./src/crafted.js');
  const open = mode === 'open-bounds';
  const sample = readDataset(resolveDatasetDir(), { limit: 16 }).films.map((f) => ({ poster: readFileSync(f.posterPath), overview: f.overview }));
  const crafted = await blackPng(1, open ? 5_000_000 : 25_000_000);
  const boundary = 'stall-bench-boundary';
  const attackBody = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="poster"; filename="crafted.png"\r\nContent-Type: image/png\r\n\r\n`), crafted, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const server = await startServer(open ? ['--max-input-side', '100000000', '--max-aspect-ratio', '100000000', '--decode-timeout-ms', '1000'] : []);
  try {
    const normal = async (clients: number, per: number) => {
      const latencies: number[] = [];
      await Promise.all(Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; i < per; i++) {
          const f = sample[(c * per + i) % sample.length]!;
          const body = new FormData();
          body.append('poster', new Blob([new Uint8Array(f.poster)], { type: 'image/jpeg' }), 'poster.jpg');
          body.append('overview', f.overview);
          const t0 = performance.now();
          const res = await fetch(`${server.url}/v1/predict`, { method: 'POST', body });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`a normal request got ${res.status}`);
          latencies.push(performance.now() - t0);
        }
      }));
      return latencies;
    };
    const attack = async (done: Promise<unknown>) => {
      let over = false;
      void done.finally(() => (over = true));
      const answers: { code: string; ms: number }[] = [];
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (!over) {
          const t0 = performance.now();
          const res = await fetch(`${server.url}/v1/predict`, { method: 'POST', body: attackBody, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
          const json = (await res.json()) as { error?: { code: string } };
          answers.push({ code: `${res.status} ${json.error?.code ?? 'OK'}`, ms: performance.now() - t0 });
          await new Promise((r) => setTimeout(r, 250));
        }
      }));
      return answers;
    };
    const decodesIdle = async () => {
      while (!/^poster_decodes_running 0$/m.test(await (await fetch(`${server.url}/metrics`)).text())) await new Promise((r) => setTimeout(r, 100));
    };
    await normal(2, 5);
    const alone: number[] = [];
    const loaded: number[] = [];
    const answers: { code: string; ms: number }[] = [];
    for (let round = 0; round < rounds; round++) {
      await decodesIdle();
      alone.push(...(await normal(2, perRound)));
      const traffic = normal(2, perRound);
      answers.push(...(await attack(traffic)));
      loaded.push(...(await traffic));
    }
    const ms = (xs: number[], q: number) => Math.round(quantile(xs, q));
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, loadAverage: loadavg() },
      modelsDir, mode, craftedBytes: crafted.length, samples: alone.length,
      alone: { p50: ms(alone, 0.5), p99: ms(alone, 0.99) }, withCrafted: { p50: ms(loaded, 0.5), p99: ms(loaded, 0.99) },
      p99Ratio: round(quantile(loaded, 0.99) / quantile(alone, 0.99)),
      crafted: { requests: answers.length, codes: [...new Set(answers.map((a) => a.code))], p50Ms: ms(answers.map((a) => a.ms), 0.5), maxMs: Math.round(Math.max(...answers.map((a) => a.ms))) },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await server.stop();
  }
}

/**
 * Where a lone request's time goes: `count` requests one after another, each timed by this client
 * and split by the timings the server returns, so that a tail can be traced to its part.
 */
async function breakdown(count: number) {
  const server = await startServer();
  const { body, contentType } = multipartBody();
  try {
    const rows: Record<string, number>[] = [];
    for (let i = 0; i < count + 50; i++) {
      const started = performance.now();
      const res = await fetch(`${server.url}/v1/predict`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': contentType } });
      const answer = (await res.json()) as { timings: { totalMs: number; decodeMs: number; inferenceMs: number }; models: Record<string, { timings: { waitMs: number; inferenceMs: number } }> };
      const clientMs = performance.now() - started;
      if (i < 50) continue; // warm-up
      const { timings, models } = answer;
      rows.push({
        clientMs, serverMs: timings.totalMs, decodeMs: timings.decodeMs, inferenceMs: timings.inferenceMs,
        ...Object.fromEntries(Object.entries(models).flatMap(([key, m]) => [[`${key}WaitMs`, m.timings.waitMs], [`${key}RunMs`, m.timings.inferenceMs]])),
      });
    }
    const parts = Object.keys(rows[0]!);
    const slowest = [...rows].sort((a, b) => b['clientMs']! - a['clientMs']!).slice(0, Math.ceil(rows.length / 100));
    const of = (pick: (values: number[]) => number) => Object.fromEntries(parts.map((p) => [p, round(pick(rows.map((r) => r[p]!)), 1)]));
    process.stdout.write(`${JSON.stringify({
      date: new Date().toISOString(), requests: rows.length, loadAverage: loadavg().map((x) => round(x)),
      p50: of((xs) => quantile(xs, 0.5)), p99: of((xs) => quantile(xs, 0.99)),
      slowestPercentMean: Object.fromEntries(parts.map((p) => [p, round(slowest.reduce((sum, r) => sum + r[p]!, 0) / slowest.length, 1)])),
    }, null, 2)}\n`);
  } finally {
    await server.stop();
  }
}

if (args.breakdown !== undefined) {
  await breakdown(args.breakdown);
  process.exit(0);
}

if (args.stall !== undefined) {
  await stall(args.stall, args.stallRounds, args.stallPerRound);
  process.exit(0);
}

if (args.soak !== undefined) {
  const ok = await soak(args.soak, args.soakConcurrency);
  process.exit(ok ? 0 : 1);
}

log(`models: ${modelsDir}; film ${film.id}; measuring the models' own forward time…`);
// The same XNNPACK thread count as each of the server's models gets.
const backend = await initBackend('auto', { log: () => {}, wasmThreads: args.modelThreads });
const models = await openModelsDir(modelsDir);
const modelInfo = Object.fromEntries(modelKeys(models).map((k) => {
  const m = metadataOf(models, k);
  return [k, { kind: m.kind, modality: m.modality, variant: m.variant, preprocessing: m.modality === 'image' ? { inputWidth: m.preprocessing['inputWidth'], inputHeight: m.preprocessing['inputHeight'] } : undefined, createdAt: m.createdAt, gitCommit: m.gitCommit }];
}));
if (args.batchCosts) {
  process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), threads: backend.threads, loadAverage: loadavg(), ...(await batchCosts(models)) }, null, 2)}\n`);
  process.exit(0);
}

// Timed before and after the load runs: the machine is shared, and the ratio only means something
// if the floor is measured close in time to the latencies it is compared with.
const forwardBefore = await forwardTime(models);
log(`forward for one film: ${forwardBefore.total.medianMs} ms median; starting the server…`);

const server = await startServer();
const { body, contentType } = multipartBody();
const load: Record<string, ReturnType<typeof summarise>> = {};
try {
  // A short warm-up so connection set-up and first-call costs are not in the measurement.
  await autocannon({ url: `${server.url}/v1/predict`, method: 'POST', headers: { 'content-type': contentType }, body, connections: 4, amount: 40 });
  for (const connections of args.concurrency) {
    log(`autocannon: ${connections} connection(s) for ${args.duration} s…`);
    const result = await autocannon({
      url: `${server.url}/v1/predict`, method: 'POST', headers: { 'content-type': contentType }, body, connections, duration: args.duration, timeout: 30,
    });
    load[`c${connections}`] = { ...summarise(result), connections };
  }
} finally {
  const code = await server.stop();
  log(`server stopped (exit code ${code})`);
}

log('timing the forward pass again…');
const forwardAfter = await forwardTime(models);
models.dispose();
const forward = {
  before: forwardBefore,
  after: forwardAfter,
  /** Mean of the two medians: the floor the c=1 target is checked against. */
  medianMs: round((forwardBefore.total.medianMs + forwardAfter.total.medianMs) / 2),
};

const c1 = load['c1'];
const c32 = load['c32'];
const report = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, backend: backend.name, backendThreads: backend.threads, loadAverage: loadavg() },
  modelsDir,
  models: modelInfo,
  film: film.id,
  posterBytes: posterBytes.length,
  overviewChars: film.overview.length,
  forward,
  load,
  targets: c1 && c32 ? {
    c1P99Ms: c1.latencyMs.p99,
    twiceForwardMs: round(2 * forward.medianMs),
    c1P99WithinTwiceForward: c1.latencyMs.p99 <= 2 * forward.medianMs,
    throughputRatioC32OverC1: round(c32.reqPerSec / c1.reqPerSec),
    c32AtLeast3xC1: c32.reqPerSec >= 3 * c1.reqPerSec,
    c32NoErrors: c32.errors === 0 && c32.non2xx === 0 && c32.timeouts === 0,
  } : undefined,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
// tfjs' wasm runtime keeps handles open; the report is written, so end here.
process.exit(0);
