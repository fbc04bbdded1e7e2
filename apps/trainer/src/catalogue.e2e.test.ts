import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findWorkspaceRoot, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { inspectModelsDir } from '@filmgenre/model-registry';
import { stopBoundMs } from '@filmgenre/training/testing';

// A team's day in operation, through the commands it runs: retrain one member over a models
// directory and serve every model; score a catalogue in one process and in shards, stop and resume
// it; and check the scores are the serving app's.
const root = findWorkspaceRoot();
const dataDir = resolveDatasetDir();
const cli = join(root, 'apps/trainer/src/main.ts');
const FILMS = 200;
let work: string;
let models: string;

const env = { ...process.env, FILMGENRE_BACKEND: 'wasm' };
function trainer(args: string[]) {
  return spawnSync('npx', ['tsx', cli, ...args], { cwd: root, encoding: 'utf8', env });
}
const predictArgs = (output: string, ...more: string[]) => ['predict', '--models', models, '--data', dataDir, '--limit', String(FILMS), '--output', output, ...more];
type Line = { id: string; models: Record<string, { genres: string[]; probabilities: Record<string, number> }> };
const linesOf = (path: string) => readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Line);

/** The serving app as a process, in this thread's mode; resolves with its URL once ready. */
function serve(dir: string): { child: ChildProcess; url: Promise<string> } {
  // node itself, not npx: SIGKILL must reach the server, not a wrapper that leaves it running.
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'apps/serving/src/main.ts'), '--models-dir', dir, '--port', '0', '--backend', 'wasm', '--inference', 'inline'], { cwd: root, env });
  const url = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const ready = out.split('\n').map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg?: string; url?: string }) : {})).find((l) => l.msg === 'ready');
      if (ready?.url) resolve(ready.url);
    });
    child.on('exit', (code) => reject(new Error(`serving exited with ${code}: ${out}`)));
  });
  return { child, url };
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'trainer-catalogue-'));
  models = join(work, 'models');
  const run = trainer(['train', '--out', models, '--report-dir', join(work, 'report'), '--limit', String(FILMS), '--epochs', '1', '--batch-size', '32', '--seed', '3']);
  expect(run.status, run.stderr).toBe(0);
}, 900_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('a models directory in operation', () => {
  it('retraining one member refits the fusion over the current members, and the server then serves every model', async () => {
    const before = inspectModelsDir(models).fusion!.members!['sentence']!.digest;
    const run = trainer(['train', '--model', 'sentence', '--out', models, '--report-dir', join(work, 'report-sentence'), '--limit', String(FILMS), '--epochs', '1', '--batch-size', '32', '--seed', '3']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain('[train] fusion was fitted on sentence, retrained in this run: refitting it over the current members');
    const plan = inspectModelsDir(models);
    expect(plan.unavailable).toEqual({});
    expect(plan.fusion!.members!['sentence']!.digest).not.toBe(before);
    const server = serve(models);
    try {
      const url = await server.url;
      expect(await (await fetch(`${url}/readyz`)).json()).toEqual({ status: 'ready' });
      const listed = (await (await fetch(`${url}/v1/models`)).json()) as { models: object; unavailable: object };
      expect(Object.keys(listed.models)).toEqual(['cnn', 'lexical', 'sentence', 'fusion']); // every default model
      expect(listed.unavailable).toEqual({});
    } finally {
      server.child.kill('SIGKILL');
    }
  }, 900_000);

  it('predict gives the serving app\'s probabilities, and 2 shards merged give the bytes of one process', async () => {
    const one = join(work, 'one.jsonl');
    const run = trainer(predictArgs(one));
    expect(run.status, run.stderr).toBe(0);
    const films = readDataset(dataDir, { limit: FILMS }).films;
    const lines = linesOf(one);
    expect(lines.map((l) => l.id)).toEqual(films.map((f) => f.id));
    expect(run.stderr).toMatch(/\[predict\] films 200\/200 \(100%\) \| \S+ ETA 0s/);

    const parts = [0, 1].map((i) => join(work, `part-${i}.jsonl`));
    for (const [i, part] of parts.entries()) expect(trainer(predictArgs(part, '--shard', `${i}/2`)).status).toBe(0);
    const merged = join(work, 'merged.jsonl');
    const merge = trainer(['merge', '--output', merged, parts[1]!, parts[0]!]);
    expect(merge.status, merge.stderr).toBe(0);
    expect(readFileSync(merged)).toEqual(readFileSync(one));
    expect(readFileSync(`${merged}.manifest.json`, 'utf8')).toBe(readFileSync(`${one}.manifest.json`, 'utf8'));
    // A part missing or changed is refused by name.
    expect(trainer(['merge', '--output', join(work, 'half.jsonl'), parts[0]!]).stderr).toMatch(/shard 1\/2 missing/);
    writeFileSync(parts[0]!, readFileSync(parts[0]!, 'utf8').replace(/"Drama":0\.\d+/, '"Drama":0.5'));
    expect(trainer(['merge', '--output', join(work, 'bad.jsonl'), ...parts]).stderr).toMatch(/part-0\.jsonl: its bytes differ from those its manifest records/);

    // The serving app answers the same probabilities for the same poster and overview.
    const server = serve(models);
    try {
      const url = await server.url;
      for (const [i, film] of films.slice(0, 4).entries()) {
        const form = new FormData();
        form.append('poster', new Blob([new Uint8Array(readFileSync(film.posterPath))], { type: 'image/jpeg' }), 'poster.jpg');
        form.append('overview', film.overview);
        const answer = (await (await fetch(`${url}/v1/predict`, { method: 'POST', body: form })).json()) as { models: Record<string, { genres: { genre: string; probability: number }[]; predicted: string[] }> };
        expect(Object.keys(answer.models)).toEqual(Object.keys(lines[i]!.models));
        for (const [key, served] of Object.entries(answer.models)) {
          for (const g of served.genres) expect(lines[i]!.models[key]!.probabilities[g.genre], `${film.id} ${key} ${g.genre}`).toBeCloseTo(g.probability, 5);
          expect(lines[i]!.models[key]!.genres.sort()).toEqual([...served.predicted].sort());
        }
      }
    } finally {
      server.child.kill('SIGKILL');
    }
  }, 900_000);

  it('a predict stopped by SIGTERM exits within 2 s keeping its chunks, and the same command resumes to the same bytes', async () => {
    const output = join(work, 'resumed.jsonl');
    const partial = `${output}.partial`;
    // node with tsx's loader directly (not npx), so the signal reaches the trainer itself.
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...predictArgs(output)], { cwd: root, env });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // Stop it once the first chunk is kept.
    while (!(existsSync(partial) && readdirSync(partial).some((f) => f.startsWith('chunk-')))) await new Promise((r) => setTimeout(r, 100));
    const signalled = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(130);
    expect(Date.now() - signalled, stderr).toBeLessThan(stopBoundMs());
    expect(stderr).toMatch(/\[predict\] stopped: 128 of 200 films are scored and kept in .*resumed\.jsonl\.partial; the same command resumes from there/);
    expect(existsSync(output)).toBe(false);

    const resumed = trainer(predictArgs(output));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('[predict] resumed: 128 films of the interrupted run were checked and kept');
    expect(readFileSync(output)).toEqual(readFileSync(join(work, 'one.jsonl')));
    expect(existsSync(partial)).toBe(false);
  }, 900_000);
});
