import { decodePoster } from '@filmgenre/data-images';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeModels, loadModels, ModelsDirError, type ServingModels } from '../models.js';
import { predictMany, prepareModels, startServer, type TestModels } from '../testing/harness.js';
import { loadModelsInWorkers } from './worker-models.js';

let models: TestModels;
let workers: ServingModels;
let inline: ServingModels;

beforeAll(async () => {
  models = await prepareModels();
  workers = await loadModelsInWorkers(models.dir, { backend: 'wasm', threadsPerModel: 1, posterWorkers: 2 });
  inline = await loadModels(models.dir);
});

afterAll(() => {
  if (workers) disposeModels(workers);
  if (inline) disposeModels(inline);
  models?.cleanup();
});

describe('models in worker threads', () => {
  it('predict exactly what the same models predict in this thread', async () => {
    const films = models.heldOut.slice(0, 5);
    const posters = await Promise.all(films.map((f) => decodePoster(f.posterPath, { size: workers.cnn.imageSize })));
    const overviews = films.map((f) => f.overview);

    expect(workers.cnn.imageSize).toBe(inline.cnn.imageSize);
    expect(workers.cnn.parallelism).toBe(2);
    expect(workers.runtime).toEqual({ inference: 'workers', backend: 'wasm', threads: 1 });
    // Two batches at once land on the two poster workers; both answer like the in-thread model.
    const [a, b] = await Promise.all([workers.cnn.predictWithFeatures(posters), workers.cnn.predictWithFeatures(posters.slice(0, 2))]);
    const expected = await inline.cnn.predictWithFeatures(posters);
    expect(Array.from(a.probabilities)).toEqual(Array.from(expected.probabilities));
    expect(Array.from(a.features)).toEqual(Array.from(expected.features));
    expect(Array.from(b.probabilities)).toEqual(Array.from(expected.probabilities.subarray(0, 2 * 25)));

    const text = await workers.lstm.predictWithFeatures(overviews);
    const textExpected = await inline.lstm.predictWithFeatures(overviews);
    expect(Array.from(text.probabilities)).toEqual(Array.from(textExpected.probabilities));
    expect(text.featureDim).toBe(textExpected.featureDim);

    if (workers.fusion && inline.fusion) {
      const fused = await workers.fusion.predict({ image: a, text });
      expect(Array.from(fused)).toEqual(Array.from(await inline.fusion.predict({ image: expected, text: textExpected })));
    }
  });

  it('pass a model error back to the caller, and keep serving', async () => {
    await expect(workers.cnn.predict([new Uint8Array(7)])).rejects.toThrow(/poster 0: expected .* bytes/);
    const blank = new Uint8Array(workers.cnn.imageSize ** 2 * 3);
    expect(await workers.cnn.predict([blank])).toHaveLength(25);
  });

  it('leak no tensor in any worker over 1,000 HTTP requests', async () => {
    const films = models.heldOut.slice(0, 16).map((f) => ({ poster: readFileSync(f.posterPath), overview: f.overview }));
    const server = await startServer(models.dir, { batchWindowMs: 10 }, workers);
    try {
      await predictMany(server.url, films, 20, 4); // every code path once, in every worker
      const before = await workers.tensorCounts();
      expect(Object.keys(before).sort()).toEqual(['cnn#1', 'cnn#2', ...(workers.fusion ? ['fusion'] : []), 'lstm'].sort());
      const statuses = await predictMany(server.url, films);
      expect(statuses.get(200)).toBe(900);
      expect(statuses.get(400)).toBe(100);
      expect(await workers.tensorCounts()).toEqual(before);
      // The same counts, as Prometheus sees them.
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toContain(`tfjs_live_tensors{runtime="lstm"} ${before['lstm']}`);
      expect(metrics).toContain(`tfjs_live_tensors{runtime="cnn#2"} ${before['cnn#2']}`);
      const models = (await (await fetch(`${server.url}/v1/models`)).json()) as Record<string, unknown>;
      expect(models).toMatchObject({ inference: 'workers', backend: 'wasm', backendThreads: 1 });
    } finally {
      await server.stop({ dispose: false });
    }
  });
});

describe('loading models in worker threads', () => {
  let broken: string;
  beforeAll(() => {
    broken = mkdtempSync(join(tmpdir(), 'serving-broken-'));
    cpSync(models.dir, broken, { recursive: true });
  });
  afterAll(() => rmSync(broken, { recursive: true, force: true }));

  it('names the model and the file when a worker cannot load its model', async () => {
    writeFileSync(join(broken, 'lstm', 'weights.bin'), Buffer.alloc(10));
    const loading = loadModelsInWorkers(broken, { backend: 'wasm', threadsPerModel: 1, posterWorkers: 1 });
    await expect(loading).rejects.toThrow(ModelsDirError);
    await expect(loading).rejects.toThrow(new RegExp(`lstm model in ${join(broken, 'lstm')} could not be loaded`));
  });

  it('refuses a bad worker count before starting anything', async () => {
    await expect(loadModelsInWorkers(models.dir, { backend: 'wasm', threadsPerModel: 1, posterWorkers: 0 })).rejects.toThrow(/posterWorkers must be an integer ≥ 1/);
  });

  it('rejects calls after dispose instead of hanging', async () => {
    const short = await loadModelsInWorkers(models.dir, { backend: 'wasm', threadsPerModel: 1, posterWorkers: 1 });
    disposeModels(short);
    await expect(short.lstm.predict(['a film'])).rejects.toThrow(/lstm model worker is stopped/);
  });
});
