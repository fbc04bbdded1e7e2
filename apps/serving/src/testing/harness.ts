import type { Film } from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp, type ServingApp } from '../app.js';
import { defaultConfig, type ServingConfig } from '../config.js';
import { disposeModels, loadModels, type ServingModels } from '../models.js';
import { listen, type RunningServer } from '../server.js';
import { expect, inject } from 'vitest';
import { buildSentenceModels, buildTinyModels, heldOutFilms } from '@filmgenre/serving-testing';

export interface TestModels {
  dir: string;
  heldOut: Film[];
  cleanup(): void;
}

/**
 * The tiny models fitted once by the global setup (see vitest.config.ts), or fitted here when a
 * test file runs under another configuration; then the backend switches to wasm to serve them.
 * `tiny`: {cnn (square study CNN), lstm, fusion (late)}; `sentence`: {cnn (non-square, pretrained
 * features), sentence, fusion (stacked)}, the shape of the default models.
 */
export async function prepareModels(which: 'tiny' | 'sentence' = 'tiny'): Promise<TestModels> {
  const silent = { log: () => {} };
  let provided: string | undefined;
  try {
    provided = inject(which === 'tiny' ? 'servingModelsDir' : 'servingSentenceModelsDir');
  } catch {
    provided = undefined;
  }
  let dir = provided;
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), 'serving-models-'));
    if (which === 'tiny') {
      await initBackend('cpu', silent);
      await buildTinyModels(dir);
    } else {
      await initBackend('wasm', silent);
      await buildSentenceModels(dir);
    }
  }
  await initBackend('wasm', silent);
  const own = dir;
  return {
    dir,
    heldOut: heldOutFilms(),
    cleanup: () => {
      if (!provided) rmSync(own, { recursive: true, force: true });
    },
  };
}

export interface TestServer {
  url: string;
  serving: ServingApp;
  running: RunningServer;
  models: ServingModels;
  /** Stops the server; disposes the models unless told not to. */
  stop(options?: { dispose?: boolean }): Promise<void>;
}

export async function startServer(modelsDir: string, overrides: Partial<ServingConfig> = {}, models?: ServingModels): Promise<TestServer> {
  const config = defaultConfig({ port: 0, logLevel: 'silent', ...overrides });
  const loaded = models ?? (await loadModels(modelsDir));
  const serving = createApp({ models: loaded, config, logger: pino({ level: config.logLevel }) });
  await serving.ready;
  const running = await listen(serving, { host: '127.0.0.1', port: 0, http: config });
  return {
    url: running.url,
    serving,
    running,
    models: loaded,
    async stop(options = {}) {
      await running.close(2_000);
      if (options.dispose ?? true) disposeModels(loaded);
    },
  };
}

/**
 * The same models, every member answering `ms` later: keeps requests in flight as long as a test
 * needs (a lone request no longer waits for a batch window, so a long window does not).
 */
export function slowedMembers(models: ServingModels, ms: number): ServingModels {
  const later = async <T>(result: Promise<T>): Promise<T> => {
    const value = await result;
    await new Promise((resolve) => setTimeout(resolve, ms));
    return value;
  };
  const members = Object.fromEntries(Object.entries(models.members).map(([key, member]) => [key, {
    ...member,
    model: new Proxy(member.model, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        const method = (value as (...args: unknown[]) => unknown).bind(target);
        return property === 'predict' || property === 'predictWithFeatures' ? (...args: unknown[]) => later(method(...args) as Promise<unknown>) : method;
      },
    }),
  }]));
  return { ...models, members: members as ServingModels['members'] };
}

/** A multipart form as browsers and curl send it. */
export function form(fields: { poster?: Buffer | Blob; posterName?: string; overview?: string; extra?: Record<string, string> }): FormData {
  const data = new FormData();
  if (fields.poster) {
    const blob = fields.poster instanceof Blob ? fields.poster : new Blob([new Uint8Array(fields.poster)], { type: 'image/jpeg' });
    data.append('poster', blob, fields.posterName ?? 'poster.jpg');
  }
  if (fields.overview !== undefined) data.append('overview', fields.overview);
  for (const [k, v] of Object.entries(fields.extra ?? {})) data.append(k, v);
  return data;
}

/** Latencies (ms) of `perClient` poster + overview requests from each of `clients` sequential clients; all must answer 200. */
export async function normalTraffic(url: string, films: { poster: Buffer; overview: string }[], clients: number, perClient: number): Promise<number[]> {
  const latencies: number[] = [];
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; i < perClient; i++) {
      const film = films[(c * perClient + i) % films.length]!;
      const started = performance.now();
      const res = await fetch(`${url}/v1/predict`, { method: 'POST', body: form(film) });
      const text = await res.text();
      expect(res.status, text).toBe(200);
      latencies.push(performance.now() - started);
    }
  }));
  return latencies;
}

/**
 * `total` predict requests from `concurrency` clients: mostly poster + overview, plus poster-only,
 * overview-only and (every tenth) a truncated poster that must fail. Returns the count per status.
 */
export async function predictMany(url: string, films: { poster: Buffer; overview: string }[], total = 1_000, concurrency = 32): Promise<Map<number, number>> {
  let next = 0;
  const statuses = new Map<number, number>();
  const client = async () => {
    while (next < total) {
      const i = next++;
      const f = films[i % films.length]!;
      const body = i % 10 === 7 ? form({ poster: f.poster.subarray(0, 500) }) : i % 5 === 1 ? form({ poster: f.poster }) : i % 5 === 2 ? form({ overview: f.overview }) : form(f);
      const res = await fetch(`${url}/v1/predict`, { method: 'POST', body });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return statuses;
}
