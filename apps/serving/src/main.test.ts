// The real entry point as a process: startup refusals, readiness, SIGTERM.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blackPng } from '@filmgenre/serving-testing';
import { form, prepareModels, type TestModels } from './testing/harness.js';
import { start } from './testing/process.js';

let models: TestModels;
const scratch: string[] = [];

beforeAll(async () => {
  models = await prepareModels();
});

afterAll(() => {
  models?.cleanup();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function copyModels(): string {
  const dir = mkdtempSync(join(tmpdir(), 'serving-broken-'));
  scratch.push(dir);
  cpSync(models.dir, dir, { recursive: true });
  return dir;
}

describe('main', () => {
  it('serves, then on SIGTERM finishes the in-flight request, disposes the models and exits 0', async () => {
    const proc = start(['--models-dir', models.dir, '--port', '0', '--backend', 'wasm', '--batch-window-ms', '400']);
    try {
      const ready = await proc.waitFor('ready');
      const url = ready['url'] as string;
      expect(ready['backend']).toBe('wasm');
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      // Hostile input against the real process: the crafted tall PNG is refused from its header, fast…
      const tall = new FormData();
      tall.append('poster', new Blob([new Uint8Array(await blackPng(1, 25_000_000))], { type: 'image/png' }), 'tall.png');
      const t0 = performance.now();
      const refused = await fetch(`${url}/v1/predict`, { method: 'POST', body: tall });
      expect(refused.status).toBe(422);
      expect(await refused.json()).toMatchObject({ error: { code: 'POSTER_SIDE_TOO_LONG' } });
      expect(performance.now() - t0).toBeLessThan(1_000);
      // …and a 100 KB URL gets the JSON 431.
      const long = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
        const req = request(`${url}/?q=${'a'.repeat(100_000)}`, (r) => {
          let body = '';
          r.on('data', (c: Buffer) => (body += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(long.status).toBe(431);
      expect(JSON.parse(long.body)).toMatchObject({ error: { code: 'HEADERS_TOO_LARGE' } });
      // The 400 ms batch window keeps this request in flight while the signal arrives.
      const inFlight = fetch(`${url}/v1/predict`, { method: 'POST', body: form({ overview: models.heldOut[0]!.overview }) });
      await new Promise((r) => setTimeout(r, 100));
      proc.child.kill('SIGTERM');
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(await proc.exited).toBe(0);
      const messages = proc.stdout.map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(messages).toContain('shutting down: finishing in-flight requests');
      expect(messages[messages.length - 1]).toBe('stopped');
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  it('on SIGTERM while the models are loading, stops at once and exits 0 (it used to die without a word)', async () => {
    const proc = start(['--models-dir', models.dir, '--port', '0', '--backend', 'wasm']);
    try {
      // Logged just before loading starts: the worker threads take seconds to load the models after it.
      await proc.waitFor('models directory checked');
      const signalled = performance.now();
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      expect(performance.now() - signalled).toBeLessThan(10_000);
      const lines = proc.stdout.map((l) => JSON.parse(l) as { msg: string; phase?: string });
      expect(lines.find((l) => l.msg === 'shutting down: finishing in-flight requests')).toMatchObject({ phase: 'loading' });
      expect(lines.at(-1)).toMatchObject({ msg: 'stopped', phase: 'loading' });
      expect(lines.map((l) => l.msg)).not.toContain('ready');
      expect(proc.stderr()).toBe('');
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  it('serves the other models when the fusion cannot be (a member removed or retrained alone), naming it unavailable with the reason', async () => {
    const noLstm = copyModels();
    rmSync(join(noLstm, 'lstm'), { recursive: true });
    const proc = start(['--models-dir', noLstm, '--port', '0', '--backend', 'wasm', '--inference', 'inline']);
    try {
      const ready = await proc.waitFor('ready');
      const url = ready['url'] as string;
      const warning = proc.stdout.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg']?.toString().startsWith('model unavailable'));
      expect(warning).toMatchObject({ level: 40, model: 'fusion', reason: expect.stringMatching(/fusion needs member lstm\/, which is missing/) });
      const readyz = await fetch(`${url}/readyz`);
      expect(readyz.status).toBe(200);
      expect(await readyz.json()).toEqual({ status: 'ready', unavailable: { fusion: warning!['reason'] } });
      const listed = (await (await fetch(`${url}/v1/models`)).json()) as { models: object; unavailable: object };
      expect(Object.keys(listed.models)).toEqual(['cnn']);
      expect(listed.unavailable).toEqual({ fusion: warning!['reason'] });
      const answer = await fetch(`${url}/v1/predict`, { method: 'POST', body: form({ poster: readFileSync(models.heldOut[0]!.posterPath) }) });
      expect(answer.status).toBe(200);
      expect(Object.keys(((await answer.json()) as { models: object }).models)).toEqual(['cnn']);
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  it('on SIGTERM in its first second, before its modules are loaded, logs `stopped` and exits 0 (it used to exit 143 without a word)', async () => {
    const proc = start(['--models-dir', models.dir, '--port', '0', '--backend', 'wasm']);
    try {
      await proc.waitFor('starting');
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      const lines = proc.stdout.map((l) => JSON.parse(l) as { msg: string; phase?: string; level: number });
      expect(lines.at(-1)).toMatchObject({ msg: 'stopped', phase: 'starting', level: 30 });
      expect(proc.stderr()).toBe('');
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  // Each refusal spawns a process; they run side by side to keep the suite short.
  it('refuses to start, with one clear line on stderr, when the models or the flags are wrong', async () => {
    const noLstm = copyModels();
    rmSync(join(noLstm, 'lstm'), { recursive: true });
    const badMeta = copyModels();
    writeFileSync(join(badMeta, 'cnn', 'metadata.json'), '{"format": 1, "name": "x"}');
    const badWeights = copyModels();
    writeFileSync(join(badWeights, 'cnn', 'weights.bin'), Buffer.alloc(10));
    const cases: { args: string[]; code: number; stderr: RegExp }[] = [
      { args: ['--models-dir', join(tmpdir(), 'no-such-models-dir')], code: 1, stderr: /^serving: models directory .*no-such-models-dir not found/m },
      // Told to refuse a fusion it cannot serve, it names the missing member.
      { args: ['--models-dir', noLstm, '--stale-fusion', 'refuse'], code: 1, stderr: /^serving: fusion model cannot be served: .*fusion needs member lstm\/, which is missing/m },
      { args: ['--models-dir', badMeta], code: 1, stderr: /^serving: cnn model is invalid: .*metadata\.json/m },
      // Metadata fine, weights not: found only when loading, after the port is bound; still exit 1.
      { args: ['--models-dir', badWeights, '--backend', 'wasm'], code: 1, stderr: /^serving: cnn model in .* could not be loaded: .*weights\.bin: sha256 .* does not match/m },
      { args: ['--port', 'not-a-port'], code: 2, stderr: /^serving: invalid configuration: --port/m },
    ];
    const procs = cases.map((c) => start([...c.args, ...(c.args.includes('--port') ? [] : ['--port', '0'])]));
    const codes = await Promise.all(procs.map((p) => p.exited));
    cases.forEach((c, i) => {
      expect(codes[i], procs[i]!.stderr()).toBe(c.code);
      expect(procs[i]!.stderr()).toMatch(c.stderr);
      expect(procs[i]!.stderr()).not.toMatch(/\n\s+at /); // a sentence, not a stack trace
    });
  });
});
