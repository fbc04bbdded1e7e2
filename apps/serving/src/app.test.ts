import { GENRES } from '@filmgenre/core';
import { encoderRuntimeLabel, resolveEncoderRuntime } from '@filmgenre/onnx-runtime';
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { deflateSync, crc32 } from 'node:zlib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { defaultConfig } from './config.js';
import { ERROR_CODES, ERRORS } from './errors.js';
import type { ServingModels, TextModel } from './models.js';
import { listen } from './server.js';
import { scanBombJpeg } from '@filmgenre/serving-testing';
import { form, predictMany, prepareModels, slowedMembers, startServer, type TestModels, type TestServer } from './testing/harness.js';

let models: TestModels;
let server: TestServer;
let poster: Buffer;
let overview: string;

interface GenreScore { genre: string; probability: number; threshold: number; predicted: boolean }
interface ModelAnswer { name: string; modality: string; variant: string; members?: string[]; versions: Record<string, string>; genres: GenreScore[]; predicted: string[]; timings: { batchSize: number; inferenceMs: number; waitMs: number } }
interface PredictAnswer { models: Record<string, ModelAnswer>; input: Record<string, unknown>; timings: { totalMs: number; decodeMs: number; inferenceMs: number } }

beforeAll(async () => {
  models = await prepareModels();
  server = await startServer(models.dir);
  poster = readFileSync(models.heldOut[0]!.posterPath);
  overview = models.heldOut[0]!.overview;
});

afterAll(async () => {
  await server?.stop();
  models?.cleanup();
});

const predict = (body: FormData | string, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/v1/predict`, { method: 'POST', body, headers });

async function expectError(res: Response, status: number, code: keyof typeof ERROR_CODES): Promise<string> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(5);
  expect(ERROR_CODES[code]).toBe(status);
  // Never a stack trace or a server path in an answer.
  expect(text).not.toMatch(/\n\s+at |node_modules|\/work\/|\.ts:\d+/);
  return body.error.message;
}

function checkModelAnswer(answer: ModelAnswer | undefined, name: string) {
  expect(answer).toBeDefined();
  expect(answer!.name).toBe(name);
  expect(answer!.modality).toBe(name === 'cnn' ? 'image' : name === 'fusion' ? 'fusion' : 'text');
  expect(answer!.genres).toHaveLength(GENRES.length);
  expect(new Set(answer!.genres.map((g) => g.genre))).toEqual(new Set(GENRES));
  for (let i = 1; i < answer!.genres.length; i++) expect(answer!.genres[i - 1]!.probability).toBeGreaterThanOrEqual(answer!.genres[i]!.probability);
  for (const g of answer!.genres) {
    expect(g.probability).toBeGreaterThanOrEqual(0);
    expect(g.probability).toBeLessThanOrEqual(1);
    expect(g.predicted).toBe(g.probability >= g.threshold);
  }
  expect(answer!.predicted).toEqual(answer!.genres.filter((g) => g.predicted).map((g) => g.genre));
  expect(answer!.versions['@tensorflow/tfjs']).toBe(tf.version.tfjs);
  expect(answer!.timings.batchSize).toBeGreaterThanOrEqual(1);
}

/** A PNG whose header declares width × height but that holds almost no data: a decompression bomb's shape. */
function pngDeclaring(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(4096))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('operational endpoints', () => {
  it('GET /healthz answers alive', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers ready once models are loaded', async () => {
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });

  it('GET /readyz answers 503 while models load, and predictions wait for readiness', async () => {
    let resolve!: (m: ServingModels) => void;
    const pending = new Promise<ServingModels>((r) => (resolve = r));
    const serving = createApp({ models: pending, config: defaultConfig({ logLevel: 'silent' }), logger: pino({ level: 'silent' }) });
    const running = await listen(serving, { host: '127.0.0.1', port: 0 });
    try {
      await expectError(await fetch(`${running.url}/readyz`), 503, 'NOT_READY');
      await expectError(await fetch(`${running.url}/v1/predict`, { method: 'POST', body: form({ overview: 'x' }) }), 503, 'NOT_READY');
      expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
      resolve(server.models);
      await serving.ready;
      expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
    } finally {
      await running.close(1_000);
    }
  });

  it('GET /v1/models describes what is loaded', async () => {
    const res = await fetch(`${server.url}/v1/models`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { backend: string; encoderRuntime: string; models: Record<string, Record<string, unknown>>; batching: { maxBatch: number } };
    expect(body.backend).toBe('wasm');
    expect(body.encoderRuntime).toBe(encoderRuntimeLabel(resolveEncoderRuntime(), 'wasm'));
    expect(Object.keys(body.models).sort()).toEqual(server.models.fusion ? ['cnn', 'fusion', 'lstm'] : ['cnn', 'lstm']);
    expect(body.models['cnn']).toMatchObject({ name: 'cnn', modality: 'image', variant: 'study', genres: [...GENRES] });
    expect(body.models['lstm']).toMatchObject({ name: 'lstm', modality: 'text', genres: [...GENRES] });
    expect(body.models['cnn']!['thresholds']).toEqual(server.models.members['cnn']!.model.metadata.thresholds);
    expect(body.models['cnn']).toMatchObject({ kind: 'poster-classifier', needs: ['poster'], input: { width: 16, height: 16 } });
    expect(body.models['lstm']!['versions']).toEqual({ '@tensorflow/tfjs': tf.version.tfjs });
    expect(body.models['lstm']!['metrics']).toEqual(server.models.members['lstm']!.model.metadata.metrics);
    expect(body.models['fusion']).toMatchObject({ modality: 'fusion', variant: 'late', members: ['cnn', 'lstm'], needs: ['poster', 'overview'] });
    expect(body.batching.maxBatch).toBe(32);
  });

  it('GET /openapi.json documents every endpoint and error code', async () => {
    const res = await fetch(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>>;
      components: { schemas: { Error: { properties: { error: { properties: { code: { enum: string[] } } } } } } };
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/predict', '/v1/models', '/healthz', '/readyz', '/metrics', '/openapi.json', '/']));
    const multipart = doc.paths['/v1/predict']!['post']!.requestBody!.content['multipart/form-data']!;
    expect(Object.keys(multipart.schema.properties)).toEqual(['poster', 'overview']);
    // The request schema is the one the handler validates with, with this instance's limits.
    expect(multipart.schema).toEqual(expect.objectContaining({ additionalProperties: false }));
    expect(multipart.schema.properties['overview']).toMatchObject({ maxLength: 10_000 });
    expect(doc.components.schemas.Error.properties.error.properties.code.enum.sort()).toEqual(Object.keys(ERRORS).sort());
    // Each predict error of the registry is listed under its status.
    const responses = (doc.paths['/v1/predict']!['post'] as unknown as { responses: Record<string, { content?: Record<string, { schema: { properties: { error: { properties: { code: { enum: string[] } } } } } }> }> }).responses;
    for (const [code, spec] of Object.entries(ERRORS).filter(([, e]) => (e.routes as readonly string[]).includes('predict'))) {
      expect(responses[String(spec.status)]!.content!['application/json']!.schema.properties.error.properties.code.enum, code).toContain(code);
    }
  });

  it('GET / serves one self-contained page under a strict CSP', async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('<form');
    expect(html).not.toMatch(/<(script|link|img|iframe)[^>]+(src|href)="(?!data:)/i); // no external resources
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toMatch(/unsafe-inline/);
  });

  it('sends security headers and no CORS headers unless configured', async () => {
    const res = await fetch(`${server.url}/healthz`, { headers: { Origin: 'https://elsewhere.example' } });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${server.url}/v1/predict`, { method: 'OPTIONS', headers: { Origin: 'https://elsewhere.example', 'Access-Control-Request-Method': 'POST' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers CORS for configured origins only', async () => {
    const cors = await startServer(models.dir, { corsOrigins: ['https://app.example'] }, server.models);
    try {
      const allowed = await fetch(`${cors.url}/v1/models`, { headers: { Origin: 'https://app.example' } });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const other = await fetch(`${cors.url}/v1/models`, { headers: { Origin: 'https://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const preflight = await fetch(`${cors.url}/v1/predict`, { method: 'OPTIONS', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' } });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST/);
    } finally {
      await cors.stop({ dispose: false });
    }
  });
});

describe('POST /v1/predict', () => {
  it('answers the CNN for a poster alone', async () => {
    const res = await predict(form({ poster }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as PredictAnswer;
    expect(Object.keys(body.models)).toEqual(['cnn']);
    checkModelAnswer(body.models['cnn'], 'cnn');
    expect(body.input['poster']).toMatchObject({ format: 'jpeg', bytes: poster.length });
    expect(body.timings.totalMs).toBeGreaterThan(0);
  });

  it('answers the LSTM for an overview alone', async () => {
    const res = await predict(form({ overview }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as PredictAnswer;
    expect(Object.keys(body.models)).toEqual(['lstm']);
    checkModelAnswer(body.models['lstm'], 'lstm');
    expect(body.input['overview']).toEqual({ chars: [...overview.trim()].length });
  });

  it('answers every applicable model for poster + overview', async () => {
    const res = await predict(form({ poster, overview }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as PredictAnswer;
    checkModelAnswer(body.models['cnn'], 'cnn');
    checkModelAnswer(body.models['lstm'], 'lstm');
    if (server.models.fusion) checkModelAnswer(body.models['fusion'], server.models.fusion.metadata.name);
    else expect(body.models['fusion']).toBeUndefined();
  });

  it('accepts an overview of exactly the character limit (counting characters, not bytes)', async () => {
    const res = await predict(form({ overview: 'é'.repeat(10_000) }));
    expect(res.status).toBe(200);
  });

  it('batches concurrent requests into shared model calls without changing any answer', async () => {
    // A wide window makes the batches certain even though the client shares this process's thread.
    const batching = await startServer(models.dir, { batchWindowMs: 50 }, server.models);
    const films = models.heldOut.slice(0, 24);
    const one = async (i: number) => {
      const f = films[i]!;
      const res = await fetch(`${batching.url}/v1/predict`, { method: 'POST', body: form({ poster: readFileSync(f.posterPath), overview: f.overview }) });
      expect(res.status).toBe(200);
      return (await res.json()) as PredictAnswer;
    };
    const alone = [];
    for (let i = 0; i < 4; i++) alone.push(await one(i));
    const together = await Promise.all(films.map((_, i) => one(i)));
    await batching.stop({ dispose: false });
    const batchSizes = together.flatMap((b) => [b.models['cnn']!.timings.batchSize, b.models['lstm']!.timings.batchSize]);
    expect(Math.max(...batchSizes)).toBeGreaterThan(1);
    for (let i = 0; i < 4; i++) {
      for (const key of ['cnn', 'lstm']) {
        const byGenre = new Map(alone[i]!.models[key]!.genres.map((g) => [g.genre, g.probability]));
        for (const g of together[i]!.models[key]!.genres) expect(g.probability).toBeCloseTo(byGenre.get(g.genre)!, 4);
      }
    }
  });
});

describe('bad input gets a 4xx JSON error and the server stays up', () => {
  it('neither poster nor overview → 400 NO_INPUT', async () => {
    await expectError(await predict(new FormData()), 400, 'NO_INPUT');
  });

  it('empty or blank overview → 400 EMPTY_OVERVIEW', async () => {
    await expectError(await predict(form({ overview: '' })), 400, 'EMPTY_OVERVIEW');
    await expectError(await predict(form({ overview: '  \n\t ' })), 400, 'EMPTY_OVERVIEW');
  });

  it('an overview with no visible character (zero-width spaces, U+FEFF, format and control characters) → 400 EMPTY_OVERVIEW', async () => {
    await expectError(await predict(form({ overview: '\u200B'.repeat(500) })), 400, 'EMPTY_OVERVIEW');
    await expectError(await predict(form({ overview: '\uFEFF\u200C\u200D\u2060 \u00AD\u202E\u0007\u3164' })), 400, 'EMPTY_OVERVIEW');
    // Invisible characters inside real text are dropped, and not counted.
    const res = await predict(form({ overview: `\u200B${overview}\uFEFF` }));
    expect(res.status).toBe(200);
    expect(((await res.json()) as PredictAnswer).input['overview']).toEqual({ chars: [...overview.trim()].length });
  });

  it('overview over 10,000 characters → 400 OVERVIEW_TOO_LONG (just over, and far over)', async () => {
    await expectError(await predict(form({ overview: 'a'.repeat(10_001) })), 400, 'OVERVIEW_TOO_LONG');
    await expectError(await predict(form({ overview: 'word '.repeat(200_000) })), 400, 'OVERVIEW_TOO_LONG');
  });

  it('a file that is not an image → 400 POSTER_NOT_AN_IMAGE', async () => {
    await expectError(await predict(form({ poster: Buffer.from('this is plain text, not a poster\n'.repeat(20)) })), 400, 'POSTER_NOT_AN_IMAGE');
    await expectError(await predict(form({ poster: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') })), 400, 'POSTER_NOT_AN_IMAGE');
    await expectError(await predict(form({ poster: Buffer.alloc(0) })), 400, 'POSTER_NOT_AN_IMAGE');
  });

  it('a truncated JPEG → 400 POSTER_CORRUPT', async () => {
    await expectError(await predict(form({ poster: poster.subarray(0, Math.floor(poster.length / 2)) })), 400, 'POSTER_CORRUPT');
  });

  it('a poster over 10 MB → 413 POSTER_TOO_LARGE', async () => {
    const big = Buffer.concat([poster, Buffer.alloc(10 * 1024 * 1024)]);
    await expectError(await predict(form({ poster: big })), 413, 'POSTER_TOO_LARGE');
  });

  it('a decompression bomb (header declares 40,000 × 40,000) → 422 POSTER_TOO_MANY_PIXELS, without decoding it', async () => {
    const bomb = pngDeclaring(40_000, 40_000);
    expect(bomb.length).toBeLessThan(1_000);
    const started = performance.now();
    const message = await expectError(await predict(form({ poster: new Blob([new Uint8Array(bomb)], { type: 'image/png' }) })), 422, 'POSTER_TOO_MANY_PIXELS');
    expect(message).toMatch(/40000×40000/);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('a body that is not multipart → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    await expectError(await predict(JSON.stringify({ overview }), { 'Content-Type': 'application/json' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await expectError(await predict(`overview=${encodeURIComponent(overview)}`, { 'Content-Type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await expectError(await fetch(`${server.url}/v1/predict`, { method: 'POST' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('malformed multipart → 400 MALFORMED_MULTIPART', async () => {
    const truncated = '--XYZ\r\nContent-Disposition: form-data; name="overview"\r\n\r\nA film about';
    await expectError(await predict(truncated, { 'Content-Type': 'multipart/form-data; boundary=XYZ' }), 400, 'MALFORMED_MULTIPART');
    await expectError(await predict('garbage', { 'Content-Type': 'multipart/form-data' }), 400, 'MALFORMED_MULTIPART');
  });

  it('unknown or repeated fields → 400 UNKNOWN_FIELD', async () => {
    await expectError(await predict(form({ overview, extra: { title: 'Heat' } })), 400, 'UNKNOWN_FIELD');
    const otherFile = new FormData();
    otherFile.append('image', new Blob([new Uint8Array(poster)], { type: 'image/jpeg' }), 'p.jpg');
    await expectError(await predict(otherFile), 400, 'UNKNOWN_FIELD');
    const twoPosters = form({ poster });
    twoPosters.append('poster', new Blob([new Uint8Array(poster)], { type: 'image/jpeg' }), 'p2.jpg');
    await expectError(await predict(twoPosters), 400, 'UNKNOWN_FIELD');
    await expectError(await predict(form({ extra: { poster: 'not a file' } })), 400, 'UNKNOWN_FIELD');
    const twoOverviews = form({ overview });
    twoOverviews.append('overview', 'again');
    await expectError(await predict(twoOverviews), 400, 'UNKNOWN_FIELD');
  });

  it('unknown routes → 404 NOT_FOUND, wrong methods → 405 METHOD_NOT_ALLOWED with Allow', async () => {
    await expectError(await fetch(`${server.url}/v2/predict`), 404, 'NOT_FOUND');
    await expectError(await fetch(`${server.url}/nope`, { method: 'POST' }), 404, 'NOT_FOUND');
    const get = await fetch(`${server.url}/v1/predict`);
    expect(get.headers.get('allow')).toBe('POST');
    await expectError(get, 405, 'METHOD_NOT_ALLOWED');
    await expectError(await fetch(`${server.url}/healthz`, { method: 'DELETE' }), 405, 'METHOD_NOT_ALLOWED');
    await expectError(await fetch(`${server.url}/v1/models`, { method: 'PUT' }), 405, 'METHOD_NOT_ALLOWED');
  });

  it('a model failure → 500 INTERNAL without details, other requests unaffected', async () => {
    const real = server.models;
    const failing = new Error('kernel exploded at /secret/path/model.ts:12');
    const lstm = real.members['lstm']!.model as TextModel;
    const broken: ServingModels = {
      dir: real.dir,
      members: {
        cnn: real.members['cnn']!,
        lstm: {
          modality: 'text',
          model: {
            metadata: lstm.metadata,
            predict: () => Promise.reject(failing),
            predictWithFeatures: () => Promise.reject(failing),
            dispose: () => {},
          },
        },
      },
      unavailable: {},
      runtime: real.runtime,
      tensorCounts: () => real.tensorCounts(),
    };
    const other = await startServer(models.dir, {}, broken);
    try {
      const res = await fetch(`${other.url}/v1/predict`, { method: 'POST', body: form({ overview }) });
      const message = await expectError(res, 500, 'INTERNAL');
      expect(message).not.toMatch(/exploded|secret/);
      expect((await fetch(`${other.url}/v1/predict`, { method: 'POST', body: form({ poster }) })).status).toBe(200);
    } finally {
      await other.stop({ dispose: false });
    }
  });

  it('a non-finite probability → 500 MODEL_OUTPUT_INVALID and a log line naming the model, never a 200 with null; other requests unaffected', async () => {
    const real = server.models;
    const POISON = 'poisoned overview';
    const poison = (texts: string[], probabilities: Float32Array) => {
      const out = probabilities.slice();
      texts.forEach((t, i) => { if (t === POISON) out.fill(Number.NaN, i * GENRES.length, i * GENRES.length + 3).fill(Infinity, i * GENRES.length + 3, (i + 1) * GENRES.length); });
      return out;
    };
    const lstm = real.members['lstm']!.model as TextModel;
    const broken: ServingModels = {
      ...real,
      members: {
        ...real.members,
        lstm: {
          modality: 'text',
          model: {
            metadata: lstm.metadata,
            predict: async (texts) => poison(texts, await lstm.predict(texts)),
            predictWithFeatures: async (texts) => {
              const result = await lstm.predictWithFeatures(texts);
              return { ...result, probabilities: poison(texts, result.probabilities) };
            },
            dispose: () => {},
          },
        },
      },
    };
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const serving = createApp({ models: broken, config: defaultConfig({ batchWindowMs: 20 }), logger });
    await serving.ready;
    const running = await listen(serving, { host: '127.0.0.1', port: 0 });
    try {
      const send = (text: string) => fetch(`${running.url}/v1/predict`, { method: 'POST', body: form({ overview: text }) });
      // Batched together: only the poisoned one fails.
      const [bad, good] = await Promise.all([send(POISON), send(overview)]);
      const message = await expectError(bad, 500, 'MODEL_OUTPUT_INVALID');
      expect(message).toMatch(/lstm/);
      expect(good.status).toBe(200);
      const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'model produced an invalid probability');
      expect(logged).toMatchObject({ level: 50, model: 'lstm', modelName: lstm.metadata.name, invalid: 25, example: 'NaN' });
      const metrics = await (await fetch(`${running.url}/metrics`)).text();
      expect(metrics).toMatch(/model_invalid_outputs_total\{model="lstm"\} 1/);
    } finally {
      await running.close(1_000);
    }
  });

  it('the server is still up and answering after all of the above', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await predict(form({ poster, overview }))).status).toBe(200);
  });
});

/** Sends raw bytes on a new connection and reads the answer until the server closes it. */
async function rawExchange(url: string, request: string | Buffer, options: { keepSending?: boolean } = {}): Promise<{ status: number; head: string; body: string; ms: number }> {
  const { port, hostname } = new URL(url);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body, ms: performance.now() - started });
    });
    socket.write(request);
    if (!options.keepSending) socket.end();
  });
}

function expectRawError(answer: { status: number; head: string; body: string }, status: number, code: keyof typeof ERRORS): void {
  expect(answer.status, answer.head).toBe(status);
  expect(answer.head).toMatch(/content-type: application\/json/i);
  expect(JSON.parse(answer.body)).toMatchObject({ error: { code } });
}

describe('errors the HTTP server answers itself carry the JSON shape', () => {
  it('a 100 KB URL → 431 HEADERS_TOO_LARGE, as JSON, read by the client instead of a reset', async () => {
    const res = await new Promise<{ status?: number; type?: string; body: string }>((resolve, reject) => {
      const req = request(`${server.url}/?q=${'a'.repeat(100_000)}`, (r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode, type: r.headers['content-type'], body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(431);
    expect(res.type).toMatch(/application\/json/);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'HEADERS_TOO_LARGE' } });
    expectRawError(await rawExchange(server.url, `GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: ${'c'.repeat(20_000)}\r\n\r\n`), 431, 'HEADERS_TOO_LARGE');
  });

  it('a malformed request line or header, or HTTP/1.1 without Host → 400 BAD_REQUEST', async () => {
    expectRawError(await rawExchange(server.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n'), 400, 'BAD_REQUEST');
    expectRawError(await rawExchange(server.url, 'NOT A REQUEST\r\n\r\n'), 400, 'BAD_REQUEST');
    expectRawError(await rawExchange(server.url, 'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), 400, 'BAD_REQUEST');
    expectRawError(await rawExchange(server.url, 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'), 400, 'BAD_REQUEST');
    // HTTP/1.0 needs no Host.
    expect((await rawExchange(server.url, 'GET /healthz HTTP/1.0\r\n\r\n')).status).toBe(200);
  });

  it('Expect other than 100-continue → 417 EXPECTATION_FAILED; CONNECT → 405 METHOD_NOT_ALLOWED', async () => {
    expectRawError(await rawExchange(server.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: a-miracle\r\nConnection: close\r\n\r\n'), 417, 'EXPECTATION_FAILED');
    expectRawError(await rawExchange(server.url, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'), 405, 'METHOD_NOT_ALLOWED');
  });

  it('headers or a body that arrive too slowly → 408 REQUEST_TIMEOUT', async () => {
    const slow = await startServer(models.dir, { headersTimeoutMs: 300, requestTimeoutMs: 600 }, server.models);
    try {
      const headers = await rawExchange(slow.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', { keepSending: true });
      expectRawError(headers, 408, 'REQUEST_TIMEOUT');
      expect(headers.ms).toBeLessThan(5_000);
      const body = await rawExchange(slow.url, 'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n--b\r\n', { keepSending: true });
      expectRawError(body, 408, 'REQUEST_TIMEOUT');
    } finally {
      await slow.stop({ dispose: false });
    }
  });
});

describe('metrics and resources', () => {
  it('GET /metrics exposes request counts, latencies, inference times and batch sizes', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/http_requests_total\{method="POST",route="\/v1\/predict",status="200"\} \d+/);
    expect(text).toMatch(/http_requests_total\{method="POST",route="\/v1\/predict",status="400"\} \d+/);
    expect(text).toMatch(/http_request_duration_seconds_bucket\{le="0.1",method="GET",route="\/healthz",status="200"\} \d+/);
    expect(text).toMatch(/model_inference_seconds_count\{model="cnn"\} [1-9]/);
    expect(text).toMatch(/model_inference_seconds_count\{model="lstm"\} [1-9]/);
    expect(text).toMatch(/model_batch_size_bucket\{le="1",model="cnn"\} \d+/);
    expect(text).toMatch(/model_queue_wait_seconds_count\{model="lstm"\} [1-9]/);
    expect(text).toMatch(/process_cpu_seconds_total/);
    // 404s are grouped under one label, so arbitrary paths cannot blow up the series count.
    expect(text).not.toMatch(/route="\/nope"/);
  });

  it('leaks no tensor over 1,000 requests', async () => {
    const films = models.heldOut.slice(0, 16).map((f) => ({ poster: readFileSync(f.posterPath), overview: f.overview }));
    // Its own server with a 10 ms window, so that 32 concurrent clients share model calls and the
    // 1,000 requests take seconds, not minutes (tensors are counted process-wide either way).
    const leak = await startServer(models.dir, { batchWindowMs: 10 }, server.models);
    // Warm up every code path once, so lazily created tensors are in the baseline.
    await (await fetch(`${leak.url}/v1/predict`, { method: 'POST', body: form(films[0]!) })).text();
    const before = tf.memory().numTensors;
    const statuses = await predictMany(leak.url, films);
    await leak.stop({ dispose: false });
    expect(statuses.get(200)).toBe(900);
    expect(statuses.get(400)).toBe(100);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('graceful shutdown', () => {
  it('finishes in-flight requests, then refuses connections', async () => {
    const slow = await startServer(models.dir, {}, slowedMembers(server.models, 300));
    const requests = Array.from({ length: 8 }, () => fetch(`${slow.url}/v1/predict`, { method: 'POST', body: form({ poster, overview }) }));
    const deadline = Date.now() + 5_000;
    while (slow.serving.inFlight() < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(slow.serving.inFlight()).toBe(8);
    const closed = slow.stop({ dispose: false });
    const responses = await Promise.all(requests);
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));
    await closed;
    await expect(fetch(`${slow.url}/healthz`)).rejects.toThrow();
  });
});

describe('bounded resources per client', () => {
  /** A connection that sent `head` and keeps it open, with what the server answered on it (if anything). */
  async function holdOpen(url: string, head: string) {
    const { port, hostname } = new URL(url);
    const socket = connect(Number(port), hostname);
    let received = '';
    let closed = false;
    socket.on('data', (c: Buffer) => (received += c.toString()));
    socket.on('error', () => {});
    socket.on('close', () => (closed = true));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(head);
    await new Promise((r) => setTimeout(r, 50));
    return { socket, received: () => received, closed: () => closed };
  }
  const halfSentHeaders = 'POST /v1/predict HTTP/1.1\r\nHost: x\r\n';
  const halfSentBody = (length: number) =>
    `POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${length}\r\n\r\n--b\r\nContent-Disposition: form-data; name="overview"\r\n\r\nhalf`;

  it('past --max-connections, the oldest half-sent connection makes room; when all have a request under way, the new one is answered 503 OVERLOADED', async () => {
    const capped = await startServer(models.dir, { maxConnections: 4 }, server.models);
    const held: Awaited<ReturnType<typeof holdOpen>>[] = [];
    try {
      for (let i = 0; i < 4; i++) held.push(await holdOpen(capped.url, halfSentHeaders));
      const res = await fetch(`${capped.url}/healthz`, { headers: { Connection: 'close' } });
      expect(res.status).toBe(200);
      expect(held[0]!.closed()).toBe(true);
      expect(held.slice(1).every((h) => !h.closed())).toBe(true);
      held.forEach((h) => h.socket.destroy());
      held.length = 0;
      await new Promise((r) => setTimeout(r, 50));
      // Every connection now has a request under way (headers in, body still coming).
      for (let i = 0; i < 4; i++) held.push(await holdOpen(capped.url, halfSentBody(100_000)));
      const refused = await fetch(`${capped.url}/healthz`);
      await expectError(refused, 503, 'OVERLOADED');
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(held.every((h) => !h.closed())).toBe(true);
    } finally {
      held.forEach((h) => h.socket.destroy());
      await capped.stop({ dispose: false });
    }
  });

  it('request bodies buffered at once are capped: one that does not fit gets 503 OVERLOADED with Retry-After, and the room returns when the holder goes', async () => {
    const capped = await startServer(models.dir, { maxBufferedUploadBytes: 100_000 }, server.models);
    try {
      const holder = await holdOpen(capped.url, halfSentBody(90_000));
      const refused = await fetch(`${capped.url}/v1/predict`, { method: 'POST', body: form({ poster, overview }) });
      const message = await expectError(refused, 503, 'OVERLOADED');
      expect(message).toMatch(/100000 bytes/);
      expect(refused.headers.get('retry-after')).toBe('1');
      holder.socket.destroy();
      await new Promise((r) => setTimeout(r, 50));
      expect((await fetch(`${capped.url}/v1/predict`, { method: 'POST', body: form({ poster, overview }) })).status).toBe(200);
    } finally {
      await capped.stop({ dispose: false });
    }
  });

  it('a request still uploading, or whose poster decodes in a decoder process, holds no batch back: the others start at once', async () => {
    // A batch waits (up to batchMaxWaitMs, long here) only for requests that will reach it within
    // milliseconds. Before, a scan bomb in the one-at-a-time lane added the whole wait (50 ms by
    // default) to every other request until its decode ended; a half-sent upload, for as long as it hung.
    const patient = await startServer(models.dir, { batchMaxWaitMs: 5_000 }, server.models);
    const uploading = await holdOpen(patient.url, halfSentBody(90_000));
    try {
      const bomb = fetch(`${patient.url}/v1/predict`, { method: 'POST', body: form({ poster: scanBombJpeg(5000, 5000, 99) }) });
      await new Promise((r) => setTimeout(r, 50)); // uploaded, its header read: in the slow lane
      const started = performance.now();
      const res = await fetch(`${patient.url}/v1/predict`, { method: 'POST', body: form({ overview }) });
      const answer = (await res.json()) as PredictAnswer;
      expect(res.status).toBe(200);
      expect(answer.models['lstm']!.timings.waitMs).toBeLessThan(100);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect((await bomb).status).toBeGreaterThanOrEqual(400); // refused as corrupt, after its decode
    } finally {
      uploading.socket.destroy();
      await patient.stop({ dispose: false });
    }
  });

  it('while stopping, requests on new connections and on connections accepted just before are answered 503 SHUTTING_DOWN, not reset', async () => {
    const slow = await startServer(models.dir, {}, slowedMembers(server.models, 300));
    const inFlight = fetch(`${slow.url}/v1/predict`, { method: 'POST', body: form({ poster, overview }) });
    while (slow.serving.inFlight() < 1) await new Promise((r) => setTimeout(r, 5));
    const early = await holdOpen(slow.url, ''); // accepted, request not sent yet
    const stopped = slow.stop({ dispose: false });
    const during = await fetch(`${slow.url}/v1/predict`, { method: 'POST', body: form({ overview }) });
    await expectError(during, 503, 'SHUTTING_DOWN');
    expect(during.headers.get('connection')).toBe('close');
    early.socket.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    // Its connection closes after the answer, so the client does not reuse it as the server closes it.
    expect(answered.headers.get('connection')).toBe('close');
    await stopped;
    expect(early.received()).toMatch(/^HTTP\/1\.1 503[\s\S]*SHUTTING_DOWN/);
    await expect(fetch(`${slow.url}/healthz`)).rejects.toThrow();
  });

  it('logs /readyz 503s while loading at warn, not error: they are a state, not a fault', async () => {
    const lines: { level: number; status?: number }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number }) });
    const serving = createApp({ models: new Promise<ServingModels>(() => {}), config: defaultConfig(), logger });
    const running = await listen(serving, { host: '127.0.0.1', port: 0 });
    try {
      await expectError(await fetch(`${running.url}/readyz`), 503, 'NOT_READY');
      await new Promise((r) => setTimeout(r, 20));
      expect(lines.filter((l) => l.status === 503).map((l) => l.level)).toEqual([40]);
    } finally {
      await running.close(1_000);
    }
  });
});
