// Scoring a catalogue: `predict` writes one JSON line per film, in the CSV's order, with every
// model's genres and probabilities; `merge` joins the parts of a sharded run into the very bytes one
// process writes. Films are scored in chunks, each written atomically, so a stopped run resumes.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  assertWritableDir, canonicalJson, CSV_FILE, defaultCacheRoot, findWorkspaceRoot, formatBadRows, GENRES, readDataset, resolveDatasetDir, writeFileAtomic, type Film,
} from '@filmgenre/core';
import { artifactDigest, decide } from '@filmgenre/model-artifact';
import { openModelsDir, predictModels, type OpenedModels } from '@filmgenre/model-registry';
import { initBackend } from '@filmgenre/tf-runtime';
import { createEpochBar } from '@filmgenre/training';
import type { MergeConfig, PredictConfig, Shard } from './config.js';

/**
 * Films per chunk: what a stop can lose, the grain of the progress line and of the shards. Chunks
 * start at multiples of it in the catalogue, and models run on BATCH films at a time inside them, so
 * every film is scored in the same batch whichever shard scores it: the parts join into the bytes of
 * one run (a model's float results can differ in the last bits with its batch).
 */
const CHUNK_FILMS = 128;
/** Films per model call: small enough that a stop waits at most about a second for the call in progress. */
const BATCH = 16;
const MANIFEST_FORMAT = 1;

/** What a predict output holds, written beside it as `<output>.manifest.json`; merge checks parts by it. */
interface Manifest {
  format: number;
  shard: Shard;
  /** The catalogue: its CSV's sha256 and its usable films (after --limit), of which this output scores a slice. */
  catalogue: { csv: string; films: number };
  /** The models by key and the digest of their metadata and files; those left out, with the reason. */
  models: Record<string, string>;
  unavailable: Record<string, string>;
  /** Lines written, and the films skipped (a poster that does not decode), in order. */
  films: number;
  skipped: { id: string; model: string; reason: string }[];
  sha256: string;
}

/** A chunk of scored films, as kept in the partial directory until the output is complete. */
interface Chunk {
  /** sha256 of the chunk's inputs: ids, overviews and poster bytes. */
  inputs: string;
  ids: string[];
  jsonl: string;
  /** sha256 of `jsonl`: an edited line is found on resume. */
  sha256: string;
  skipped: Manifest['skipped'];
}

/**
 * The films of shard `index` of `count`: a contiguous run of whole chunks (the same for the same
 * catalogue, disjoint, covering it), so the parts concatenate in index order.
 */
export function shardSlice<T>(films: readonly T[], shard: Shard, chunk = CHUNK_FILMS): { start: number; films: T[] } {
  const chunks = Math.ceil(films.length / chunk);
  const at = (i: number) => Math.min(films.length, Math.floor((i * chunks) / shard.count) * chunk);
  return { start: at(shard.index), films: films.slice(at(shard.index), at(shard.index + 1)) };
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
const manifestPath = (output: string) => `${output}.manifest.json`;

function inputsDigest(films: readonly Film[]): string {
  const hash = createHash('sha256');
  for (const f of films) hash.update(`${f.id}\0${f.overview}\0`).update(existsSync(f.posterPath) ? readFileSync(f.posterPath) : '').update('\0');
  return hash.digest('hex');
}

/** One output line: every model's predicted genres (the contract's rule, by decreasing probability) and its probabilities by genre. */
function filmLine(id: string, row: number, models: OpenedModels, probabilities: Record<string, Float32Array>): string {
  const answers: Record<string, { genres: string[]; probabilities: Record<string, number> }> = {};
  for (const [key, all] of Object.entries(probabilities)) {
    const metadata = (models.members[key] ?? models.fusion)!.metadata;
    const decisions = decide(all.subarray(row * GENRES.length, (row + 1) * GENRES.length), metadata);
    answers[key] = {
      genres: decisions.filter((d) => d.predicted).sort((a, b) => b.probability - a.probability).map((d) => d.genre),
      probabilities: Object.fromEntries(decisions.map((d) => [d.genre, round6(d.probability)])),
    };
  }
  return `${JSON.stringify({ id, models: answers })}\n`;
}

/** Why a kept chunk cannot be reused for these films (undefined: it can). */
function chunkProblem(chunk: Chunk, films: readonly Film[], modelKeys: readonly string[]): string | undefined {
  const lines = chunk.jsonl.split('\n').slice(0, -1);
  const skipped = new Set(chunk.skipped.map((s) => s.id));
  const expected = films.filter((f) => !skipped.has(f.id)).map((f) => f.id);
  if (canonicalJson(chunk.ids) !== canonicalJson(films.map((f) => f.id))) return 'other films';
  if (chunk.inputs !== inputsDigest(films)) return 'the films\' overviews or posters changed';
  if (chunk.sha256 !== sha256(chunk.jsonl)) return 'its lines changed after they were written';
  if (lines.length !== expected.length) return `${lines.length} lines for ${expected.length} films`;
  for (const [i, line] of lines.entries()) {
    const parsed = JSON.parse(line) as { id?: string; models?: Record<string, { probabilities?: Record<string, number> }> };
    if (parsed.id !== expected[i] || canonicalJson(Object.keys(parsed.models ?? {})) !== canonicalJson(modelKeys)) return `line ${i + 1} is not film ${expected[i]} with every model`;
    for (const answer of Object.values(parsed.models!)) {
      const values = Object.values(answer.probabilities ?? {});
      if (values.length !== GENRES.length || !values.every((p) => p >= 0 && p <= 1)) return `line ${i + 1} does not hold ${GENRES.length} probabilities`;
    }
  }
  return undefined;
}

/**
 * Scores the films of one shard of a catalogue with every model of a models directory (the opener
 * and prediction code serving and evaluate use) into `output`, plus its manifest. Chunks already
 * scored by an interrupted run with the same models, shard and inputs are checked and kept; a stop
 * request ends it after the current model call, keeping the chunks written (exit code 130).
 */
export async function predictCatalogue(config: PredictConfig, shard: Shard, signal: AbortSignal): Promise<void> {
  const log = (line: string) => console.error(line);
  const output = resolve(config.output);
  const partial = `${output}.partial`;
  assertWritableDir(dirname(output), '--output');
  await initBackend(config.backend);
  const dataDir = resolveDatasetDir(config.data);
  const catalogue = readDataset(dataDir, { labels: 'optional', ...(config.limit ? { limit: config.limit } : {}) });
  log(`[data] ${dataDir}: ${formatBadRows(catalogue)}`);
  const { start: first, films } = shardSlice(catalogue.films, shard);
  log(`[predict] shard ${shard.index}/${shard.count}: ${films.length} films (${first + 1}–${first + films.length} of ${catalogue.films.length}, in the CSV's order)`);
  const cacheDir = config.cacheDir ? resolve(config.cacheDir) : defaultCacheRoot(findWorkspaceRoot());
  let models: OpenedModels;
  try {
    models = await openModelsDir(config.models, { signal });
  } catch (error) {
    if (!signal.aborted) throw error;
    log('[predict] stopped while loading the models: nothing was scored');
    process.exitCode = 130;
    return;
  }
  try {
    for (const [key, reason] of Object.entries(models.unavailable)) log(`[predict] warning: ${key} is left out: ${reason}`);
    const digests = Object.fromEntries([...Object.values(models.members), ...(models.fusion ? [models.fusion] : [])].map((m) => [m.metadata.name, artifactDigest(m.metadata)]));
    const identity = { format: MANIFEST_FORMAT, shard, catalogue: { csv: sha256(readFileSync(join(dataDir, CSV_FILE))), films: catalogue.films.length }, models: digests, chunkFilms: CHUNK_FILMS, batch: BATCH };
    const identityPath = join(partial, 'identity.json');
    if (existsSync(partial) && (!existsSync(identityPath) || readFileSync(identityPath, 'utf8') !== canonicalJson(identity))) {
      log(`[predict] ${partial} holds the chunks of another run (other models, catalogue or shard): starting over`);
      rmSync(partial, { recursive: true, force: true });
    }
    mkdirSync(partial, { recursive: true });
    writeFileAtomic(identityPath, canonicalJson(identity));

    const keys = Object.keys(digests);
    const chunks: Chunk[] = [];
    const bar = createEpochBar('[predict] films', films.length, { metrics: false, lineIntervalMs: 5_000 });
    let kept = 0;
    for (let start = 0, c = 0; start < films.length; start += CHUNK_FILMS, c++) {
      const slice = films.slice(start, start + CHUNK_FILMS);
      const path = join(partial, `chunk-${String(c).padStart(6, '0')}.json`);
      if (existsSync(path)) {
        let problem: string | undefined;
        try {
          const chunk = JSON.parse(readFileSync(path, 'utf8')) as Chunk;
          problem = chunkProblem(chunk, slice, keys);
          if (!problem) {
            chunks.push(chunk);
            kept += slice.length;
            bar.update(start + slice.length);
            continue;
          }
        } catch (error) {
          problem = (error as Error).message;
        }
        log(`[predict] ${path} is not reusable (${problem}): scoring its films again`);
      }
      try {
        const predicted = await predictModels(models, slice, { cacheDir, signal, batchSize: BATCH });
        const row = new Map(predicted.ids.map((id, i) => [id, i]));
        const jsonl = slice.filter((f) => row.has(f.id)).map((f) => filmLine(f.id, row.get(f.id)!, models, predicted.probabilities)).join('');
        const chunk: Chunk = { inputs: inputsDigest(slice), ids: slice.map((f) => f.id), jsonl, sha256: sha256(jsonl), skipped: predicted.skipped };
        writeFileAtomic(path, JSON.stringify(chunk));
        chunks.push(chunk);
      } catch (error) {
        if (!signal.aborted) throw error;
        bar.stop();
        log(`[predict] stopped: ${start} of ${films.length} films are scored and kept in ${partial}; the same command resumes from there`);
        process.exitCode = 130;
        return;
      }
      bar.update(start + slice.length);
    }
    bar.stop();
    if (kept) log(`[predict] resumed: ${kept} films of the interrupted run were checked and kept`);
    const skipped = chunks.flatMap((c) => c.skipped);
    for (const s of skipped) log(`[predict] skipped ${s.id} (${s.model}): ${s.reason}`);
    const jsonl = chunks.map((c) => c.jsonl).join('');
    const lines = films.length - new Set(skipped.map((s) => s.id)).size;
    writeOutput(output, jsonl, { format: MANIFEST_FORMAT, shard, catalogue: identity.catalogue, models: digests, unavailable: models.unavailable, films: lines, skipped, sha256: '' });
    rmSync(partial, { recursive: true, force: true });
    log(`[predict] wrote ${lines} films to ${output} (${skipped.length} skipped) and ${manifestPath(output)}`);
  } finally {
    models.dispose();
  }
}

function writeOutput(output: string, jsonl: string, manifest: Manifest): void {
  // The manifest last: a part without one (or whose sha256 differs) is refused by merge.
  writeFileAtomic(output, jsonl);
  writeFileAtomic(manifestPath(output), `${JSON.stringify({ ...manifest, sha256: sha256(jsonl) }, null, 2)}\n`);
}

/**
 * Joins the outputs of every shard of one sharded run, in shard order, into `output` and its
 * manifest: the bytes one process scoring the whole catalogue writes. Refuses parts of other runs
 * (catalogue, models, shard count), a missing or repeated shard, and a part whose bytes changed.
 */
export function mergeParts(config: MergeConfig, parts: readonly string[]): void {
  if (parts.length === 0) throw new Error('merge: name the part files to join (merge --output FILE.jsonl PART.jsonl…)');
  const read = parts.map((part) => {
    const path = resolve(part);
    if (!existsSync(manifestPath(path))) throw new Error(`${path}: no ${manifestPath(path)} beside it: not a finished predict output (rerun its shard)`);
    const manifest = JSON.parse(readFileSync(manifestPath(path), 'utf8')) as Manifest;
    const jsonl = readFileSync(path, 'utf8');
    if (manifest.format !== MANIFEST_FORMAT) throw new Error(`${manifestPath(path)}: format ${manifest.format}, expected ${MANIFEST_FORMAT}`);
    if (sha256(jsonl) !== manifest.sha256) throw new Error(`${path}: its bytes differ from those its manifest records (truncated or edited): rerun its shard`);
    return { path, manifest, jsonl };
  });
  const [first] = read;
  const count = first!.manifest.shard.count;
  for (const { path, manifest } of read) {
    const other = manifest.shard.count !== count ? `shard count ${manifest.shard.count}, not ${count}`
      : canonicalJson(manifest.catalogue) !== canonicalJson(first!.manifest.catalogue) ? 'another catalogue'
      : canonicalJson(manifest.models) !== canonicalJson(first!.manifest.models) ? 'other models' : undefined;
    if (other) throw new Error(`${path} belongs to another run than ${first!.path} (${other})`);
  }
  const byIndex = new Map<number, (typeof read)[number]>();
  for (const part of read) {
    const twin = byIndex.get(part.manifest.shard.index);
    if (twin) throw new Error(`${part.path} and ${twin.path} are both shard ${part.manifest.shard.index}/${count}`);
    byIndex.set(part.manifest.shard.index, part);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length) throw new Error(`merge: shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} missing`);
  const ordered = Array.from({ length: count }, (_, i) => byIndex.get(i)!);
  const output = resolve(config.output);
  assertWritableDir(dirname(output), '--output');
  writeOutput(output, ordered.map((p) => p.jsonl).join(''), {
    ...first!.manifest, shard: { index: 0, count: 1 },
    films: ordered.reduce((n, p) => n + p.manifest.films, 0), skipped: ordered.flatMap((p) => p.manifest.skipped),
  });
  console.error(`[merge] joined ${count} parts into ${output} (${ordered.reduce((n, p) => n + p.manifest.films, 0)} films) and ${manifestPath(output)}`);
}
