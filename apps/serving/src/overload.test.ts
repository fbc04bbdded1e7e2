// Bounded work and load shedding (issue 21, item 2), on the real server in its own process with the
// shape of the default models (poster trunk, USE-lite, stacked fusion): eight clients looping
// 10,000-character overviews next to normal traffic. Before, each such overview took 2.4 s and normal
// requests waited 18–20 s; a SIGTERM in the middle cut every request still in flight.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantile } from '@filmgenre/serving-testing';
import { flood, type FloodAnswer } from './testing/flood.js';
import { form, normalTraffic, prepareModels, type TestModels } from './testing/harness.js';
import { start, withServer } from './testing/process.js';

let models: TestModels;
let films: { poster: Buffer; overview: string }[];
let longOverview: string;

beforeAll(async () => {
  models = await prepareModels('sentence');
  films = models.heldOut.slice(0, 16).map((f) => ({ poster: readFileSync(f.posterPath), overview: f.overview }));
  // Real prose, 10,000 characters (the --max-overview-chars default): about 2,700 pieces, 21 windows.
  let text = '';
  for (let i = 0; text.length < 10_000; i++) text += `${models.heldOut[i % models.heldOut.length]!.overview} `;
  longOverview = text.slice(0, 10_000);
});

afterAll(() => models?.cleanup());

/**
 * The flood in a process of its own, started and stopped per round: the measuring clients in this
 * process then do the same work loaded and unloaded (the flood's 8 clients shared their event loop
 * before, and delayed their timings only in the loaded rounds).
 */
function floodProcess() {
  const child = fork(join(dirname(fileURLToPath(import.meta.url)), 'testing', 'flood-process.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = <T>() => new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T)));
  const ready = next();
  return {
    ready,
    async start(url: string, clients: number) {
      const started = next();
      child.send({ start: { url, overview: longOverview, clients } });
      await started;
    },
    async stop(): Promise<FloodAnswer[]> {
      const done = next<{ answers: FloodAnswer[] }>();
      child.send('stop');
      return (await done).answers;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

describe('eight clients looping 10,000-character overviews (server in its own process)', () => {
  it('the excess is answered 503 OVERLOADED with Retry-After, never reset, and the normal p99 stays within 2× its unloaded value', { retry: 1, timeout: 300_000 }, async () => {
    const flooding = floodProcess();
    try {
      await flooding.ready;
      await withServer(models.dir, [], async (url) => {
        await normalTraffic(url, films, 2, 5); // warm-up
        // Let the server measure what a long overview costs before the flood.
        for (let i = 0; i < 3; i++) expect((await fetch(`${url}/v1/predict`, { method: 'POST', body: form({ overview: longOverview }) })).status).toBe(200);
        const unloaded: number[] = [];
        const loaded: number[] = [];
        const answers: FloodAnswer[] = [];
        // Short rounds, alternating, so that the shared machine's drift falls on both alike.
        for (let round = 0; round < 6; round++) {
          unloaded.push(...(await normalTraffic(url, films, 2, 20)));
          await flooding.start(url, 8);
          loaded.push(...(await normalTraffic(url, films, 2, 20)));
          answers.push(...(await flooding.stop()));
        }
        const outcomes = [...new Set(answers.map((a) => a.outcome))].sort();
        console.log(JSON.stringify({
          unloadedP99Ms: Math.round(quantile(unloaded, 0.99)), loadedP99Ms: Math.round(quantile(loaded, 0.99)),
          ratio: +(quantile(loaded, 0.99) / quantile(unloaded, 0.99)).toFixed(2), medianMs: [quantile(unloaded, 0.5), quantile(loaded, 0.5)].map(Math.round),
          samples: unloaded.length, flood: Object.fromEntries(outcomes.map((o) => [o, answers.filter((a) => a.outcome === o).length])),
          loadAverage: loadavg().map((x) => +x.toFixed(2)),
        }));
        expect(outcomes.every((o) => o === '200 OK' || o === '503 OVERLOADED'), outcomes.join()).toBe(true);
        expect(outcomes).toContain('503 OVERLOADED');
        expect(outcomes).toContain('200 OK');
        for (const a of answers.filter((x) => x.outcome === '503 OVERLOADED')) expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
        expect(quantile(loaded, 0.99)).toBeLessThanOrEqual(2 * quantile(unloaded, 0.99));
      });
    } finally {
      flooding.kill();
    }
  });

  it('a SIGTERM during the flood lets in-flight requests finish and answers new ones 503, without one reset', { timeout: 180_000 }, async () => {
    const proc = start(['--models-dir', models.dir, '--port', '0', '--backend', 'wasm']);
    try {
      const url = (await proc.waitFor('ready'))['url'] as string;
      let signalled = false;
      const stopping = new Promise((r) => setTimeout(r, 3_000)).then(() => {
        signalled = true;
        proc.child.kill('SIGTERM');
      });
      // Each client stops once it is told the server is shutting down (after that the port closes).
      const answers = await flood(url, longOverview, 8, (a) => a.outcome === '503 SHUTTING_DOWN' || (signalled && a.outcome === 'network error ECONNREFUSED'));
      await stopping;
      expect(await proc.exited).toBe(0);
      const outcomes = new Set(answers.map((a) => a.outcome));
      // A client pausing after a 503 may find the port closed once the in-flight requests are done: refused, never reset.
      expect([...outcomes].filter((o) => !['200 OK', '503 OVERLOADED', '503 SHUTTING_DOWN', 'network error ECONNREFUSED'].includes(o))).toEqual([]);
      expect(outcomes).toContain('503 SHUTTING_DOWN');
      const lines = proc.stdout.map((l) => JSON.parse(l) as { msg: string; level: number });
      expect(lines.map((l) => l.msg)).not.toContain('shutdown: grace period over, cutting remaining connections');
      expect(lines.filter((l) => l.level >= 50)).toEqual([]); // no error line: 503s are not faults
    } finally {
      proc.child.kill('SIGKILL');
    }
  });
});
