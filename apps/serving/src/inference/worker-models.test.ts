import { decodePoster } from '@filmgenre/data-images';
import { encoderRuntimeLabel, resolveEncoderRuntime } from '@filmgenre/onnx-runtime';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModalityOutput } from '@filmgenre/model-artifact';
import { disposeModels, loadModels, ModelsDirError, type ImageModel, type ServingModels, type TextModel } from '../models.js';
import { predictMany, prepareModels, startServer, type TestModels } from '../testing/harness.js';

let models: TestModels;
let workers: ServingModels;
let inline: ServingModels;

beforeAll(async () => {
  models = await prepareModels();
  workers = await loadModels(models.dir, { workers: { backend: 'wasm', threadsPerModel: 1, posterWorkers: 2 } });
  inline = await loadModels(models.dir);
});

afterAll(() => {
  if (workers) disposeModels(workers);
  if (inline) disposeModels(inline);
  models?.cleanup();
});

const image = (m: ServingModels, key: string) => m.members[key]!.model as ImageModel;
const text = (m: ServingModels, key: string) => m.members[key]!.model as TextModel;

/** Every member and the fusion answer in the workers exactly what they answer in this thread. */
async function expectSameAnswers(inWorkers: ServingModels, inThread: ServingModels, films: { posterPath: string; overview: string }[]) {
  expect(Object.keys(inWorkers.members)).toEqual(Object.keys(inThread.members));
  const outputs: Record<string, ModalityOutput> = {};
  const expected: Record<string, ModalityOutput> = {};
  for (const [key, member] of Object.entries(inThread.members)) {
    if (member.modality === 'image') {
      const { inputWidth: width, inputHeight: height } = image(inWorkers, key);
      expect({ width, height }).toEqual({ width: member.model.inputWidth, height: member.model.inputHeight });
      const posters = await Promise.all(films.map((f) => decodePoster(f.posterPath, { width, height })));
      outputs[key] = await image(inWorkers, key).predictWithFeatures(posters);
      expected[key] = await member.model.predictWithFeatures(posters);
    } else {
      outputs[key] = await text(inWorkers, key).predictWithFeatures(films.map((f) => f.overview));
      expected[key] = await member.model.predictWithFeatures(films.map((f) => f.overview));
    }
    expect(Array.from(outputs[key]!.probabilities), key).toEqual(Array.from(expected[key]!.probabilities));
    expect(Array.from(outputs[key]!.features), key).toEqual(Array.from(expected[key]!.features));
    expect(outputs[key]!.featureDim).toBe(expected[key]!.featureDim);
  }
  expect(inWorkers.fusion?.members).toEqual(inThread.fusion?.members);
  if (inWorkers.fusion && inThread.fusion) {
    expect(Array.from(await inWorkers.fusion.predict(outputs))).toEqual(Array.from(await inThread.fusion.predict(expected)));
  }
}

describe('models in worker threads', () => {
  it('predict exactly what the same models predict in this thread', async () => {
    const films = models.heldOut.slice(0, 5);
    expect(image(workers, 'cnn').parallelism).toBe(2);
    expect(workers.runtime).toEqual({ inference: 'workers', backend: 'wasm', threads: 1, encoders: encoderRuntimeLabel(resolveEncoderRuntime(), 'wasm') });
    await expectSameAnswers(workers, inline, films);
    // Two batches at once land on the two poster workers; both answer like the in-thread model.
    const posters = await Promise.all(films.map((f) => decodePoster(f.posterPath, { size: 16 })));
    const [a, b] = await Promise.all([image(workers, 'cnn').predictWithFeatures(posters), image(workers, 'cnn').predictWithFeatures(posters.slice(0, 2))]);
    const expected = await image(inline, 'cnn').predictWithFeatures(posters);
    expect(Array.from(a.probabilities)).toEqual(Array.from(expected.probabilities));
    expect(Array.from(b.probabilities)).toEqual(Array.from(expected.probabilities.subarray(0, 2 * 25)));
  });

  it('serve the default models\' shape too: a non-square poster model, the sentence encoder, a stacked fusion', async () => {
    const sentence = await prepareModels('sentence');
    const [inWorkers, inThread] = await Promise.all([
      loadModels(sentence.dir, { workers: { backend: 'wasm', threadsPerModel: 1, posterWorkers: 2 } }),
      loadModels(sentence.dir),
    ]);
    try {
      expect(Object.keys(inWorkers.members)).toEqual(['cnn', 'sentence']);
      expect(image(inWorkers, 'cnn')).toMatchObject({ inputWidth: 32, inputHeight: 64, parallelism: 2 });
      expect(inWorkers.fusion?.metadata.variant).toBe('stacked');
      await expectSameAnswers(inWorkers, inThread, models.heldOut.slice(0, 3));
      // Two workers for the overview model: one for the lane of long overviews (see predictor.ts).
      expect(Object.keys(await inWorkers.tensorCounts()).sort()).toEqual(['cnn#1', 'cnn#2', 'fusion', 'sentence#1', 'sentence#2']);
    } finally {
      disposeModels(inWorkers);
      disposeModels(inThread);
      sentence.cleanup();
    }
  });

  it('pass a model error back to the caller, and keep serving', async () => {
    await expect(image(workers, 'cnn').predict([new Uint8Array(7)])).rejects.toThrow(/poster 0: expected .* bytes/);
    const blank = new Uint8Array(16 * 16 * 3);
    expect(await image(workers, 'cnn').predict([blank])).toHaveLength(25);
  });

  it('leak no tensor in any worker over 1,000 HTTP requests', async () => {
    const films = models.heldOut.slice(0, 16).map((f) => ({ poster: readFileSync(f.posterPath), overview: f.overview }));
    const server = await startServer(models.dir, { batchWindowMs: 10 }, workers);
    try {
      await predictMany(server.url, films, 20, 4); // every code path once, in every worker
      const before = await workers.tensorCounts();
      expect(Object.keys(before).sort()).toEqual(['cnn#1', 'cnn#2', ...(workers.fusion ? ['fusion'] : []), 'lstm#1', 'lstm#2'].sort());
      const statuses = await predictMany(server.url, films);
      expect(statuses.get(200)).toBe(900);
      expect(statuses.get(400)).toBe(100);
      expect(await workers.tensorCounts()).toEqual(before);
      // The same counts, as Prometheus sees them.
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toContain(`tfjs_live_tensors{runtime="lstm#2"} ${before['lstm#2']}`);
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
    const loading = loadModels(broken, { workers: { backend: 'wasm', threadsPerModel: 1, posterWorkers: 1 } });
    await expect(loading).rejects.toThrow(ModelsDirError);
    await expect(loading).rejects.toThrow(new RegExp(`lstm model in ${join(broken, 'lstm')} could not be loaded`));
  });

  it('refuses a bad worker count before starting anything', async () => {
    await expect(loadModels(models.dir, { workers: { backend: 'wasm', threadsPerModel: 1, posterWorkers: 0 } })).rejects.toThrow(/posterWorkers must be an integer ≥ 1/);
  });

  it('rejects calls after dispose instead of hanging', async () => {
    const short = await loadModels(models.dir, { workers: { backend: 'wasm', threadsPerModel: 1, posterWorkers: 1 } });
    disposeModels(short);
    await expect(text(short, 'lstm').predict(['a film'])).rejects.toThrow(/lstm model worker is stopped/);
  });
});
