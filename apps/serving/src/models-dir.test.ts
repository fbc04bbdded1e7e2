// Serving whatever the models directory holds: the default models' shape ({cnn, sentence, fusion}: a
// non-square poster model, the sentence encoder, a stacked fusion), and a directory with several
// poster models of different input sizes and several overview models, over HTTP and as a process.
import { GENRES } from '@filmgenre/core';
import { decodePoster } from '@filmgenre/data-images';
import type { ModalityOutput } from '@filmgenre/model-artifact';
import { fixtureFilms, fixtureMetadata } from '@filmgenre/model-artifact/testing';
import { encoderRuntimeLabel, resolveEncoderRuntime } from '@filmgenre/onnx-runtime';
import { createPosterCnn, posterPreprocessing, savePosterClassifier } from '@filmgenre/model-cnn';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageModel, ServingModels, TextModel } from './models.js';
import { TEST_POSTER_HEIGHT, TEST_POSTER_WIDTH } from '@filmgenre/serving-testing';
import { form, prepareModels, startServer, type TestModels, type TestServer } from './testing/harness.js';
import { start } from './testing/process.js';

interface ModelAnswer { name: string; modality: string; variant: string; members?: string[]; genres: { genre: string; probability: number; threshold: number; predicted: boolean }[]; predicted: string[] }
interface PredictAnswer { models: Record<string, ModelAnswer>; input: { poster?: { width: number; height: number } } }

let sentence: TestModels;
let tiny: TestModels;
let server: TestServer;
let poster: Buffer;
let overview: string;
const scratch: string[] = [];

beforeAll(async () => {
  tiny = await prepareModels('tiny');
  sentence = await prepareModels('sentence');
  server = await startServer(sentence.dir);
  poster = readFileSync(sentence.heldOut[1]!.posterPath);
  overview = sentence.heldOut[1]!.overview;
});

afterAll(async () => {
  await server?.stop();
  sentence?.cleanup();
  tiny?.cleanup();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

const predict = async (url: string, body: FormData) => {
  const res = await fetch(`${url}/v1/predict`, { method: 'POST', body });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as PredictAnswer;
};

/** Each member's own outputs for this poster (decoded at its input size) and overview, and the fusion's over them. */
async function ownOutputs(models: ServingModels): Promise<Record<string, Float32Array>> {
  const outputs: Record<string, ModalityOutput> = {};
  for (const [key, member] of Object.entries(models.members)) {
    outputs[key] = member.modality === 'image'
      ? await (member.model as ImageModel).predictWithFeatures([await decodePoster(poster, { width: member.model.inputWidth, height: member.model.inputHeight })])
      : await (member.model as TextModel).predictWithFeatures([overview]);
  }
  const out: Record<string, Float32Array> = Object.fromEntries(Object.entries(outputs).map(([k, o]) => [k, o.probabilities]));
  if (models.fusion) out[models.fusion.metadata.name] = await models.fusion.predict(outputs);
  return out;
}

/** The answer's probabilities are the model's own, genre by genre (the answer rounds to 6 digits). */
function expectSameProbabilities(answer: ModelAnswer, probabilities: Float32Array) {
  expect(answer.genres).toHaveLength(GENRES.length);
  for (const g of answer.genres) expect(g.probability).toBeCloseTo(probabilities[GENRES.indexOf(g.genre as (typeof GENRES)[number])]!, 5);
}

describe('the default models\' shape: {cnn (non-square), sentence, fusion (stacked)}', () => {
  it('GET /v1/models and the OpenAPI document name the models served, by key', async () => {
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { models: Record<string, Record<string, unknown>> };
    expect(Object.keys(models.models)).toEqual(['cnn', 'sentence', 'fusion']);
    expect(models.models['cnn']).toMatchObject({ modality: 'image', kind: 'poster-classifier', variant: 'pretrained', needs: ['poster'], input: { width: TEST_POSTER_WIDTH, height: TEST_POSTER_HEIGHT } });
    // What computed the poster features the head was trained on.
    expect(models.models['cnn']!['encoderRuntime']).toBe(encoderRuntimeLabel(resolveEncoderRuntime(), 'wasm'));
    expect(models.models['sentence']).toMatchObject({ modality: 'text', kind: 'sentence-classifier', variant: 'use-lite', needs: ['overview'] });
    expect(models.models['fusion']).toMatchObject({ modality: 'fusion', kind: 'fusion', variant: 'stacked', members: ['cnn', 'sentence'], needs: ['poster', 'overview'] });

    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      info: { description: string };
      components: { schemas: Record<string, { properties: Record<string, { properties?: Record<string, { $ref: string; description: string }>; additionalProperties?: unknown }> }> };
    };
    const answerModels = doc.components.schemas['Prediction']!.properties['models']!;
    expect(Object.keys(answerModels.properties!)).toEqual(['cnn', 'sentence', 'fusion']);
    expect(answerModels.properties!['cnn']).toMatchObject({ $ref: '#/components/schemas/ModelPrediction' });
    expect(answerModels.properties!['cnn']!.description).toMatch(/image model, variant pretrained \(poster decoded to 32×64\); answers when the request has poster/);
    expect(answerModels.properties!['fusion']!.description).toMatch(/fusion model, variant stacked over cnn \+ sentence; answers when the request has poster and overview/);
    expect(answerModels.additionalProperties).toEqual({ $ref: '#/components/schemas/ModelPrediction' });
    expect(Object.keys(doc.components.schemas['Models']!.properties['models']!.properties!)).toEqual(['cnn', 'sentence', 'fusion']);
    expect(doc.info.description).toMatch(/Models served: `cnn`/);
  });

  it('answers each model for its input: the poster at 32 × 64 to cnn, the overview to sentence, both to all three', async () => {
    const expected = await ownOutputs(server.models);
    const posterOnly = await predict(server.url, form({ poster }));
    expect(Object.keys(posterOnly.models)).toEqual(['cnn']);
    expect(posterOnly.input.poster).toMatchObject({ width: 150, height: 300 }); // the upload's own size
    expectSameProbabilities(posterOnly.models['cnn']!, expected['cnn']!);

    const overviewOnly = await predict(server.url, form({ overview }));
    expect(Object.keys(overviewOnly.models)).toEqual(['sentence']);
    expectSameProbabilities(overviewOnly.models['sentence']!, expected['sentence']!);

    const both = await predict(server.url, form({ poster, overview }));
    expect(Object.keys(both.models)).toEqual(['cnn', 'sentence', 'fusion']);
    expect(both.models['cnn']).toMatchObject({ name: 'cnn', modality: 'image', variant: 'pretrained' });
    expect(both.models['sentence']).toMatchObject({ name: 'sentence', modality: 'text', variant: 'use-lite' });
    expect(both.models['fusion']).toMatchObject({ name: 'fusion', modality: 'fusion', variant: 'stacked', members: ['cnn', 'sentence'] });
    for (const key of ['cnn', 'sentence', 'fusion']) {
      expectSameProbabilities(both.models[key]!, expected[key]!);
      const answer = both.models[key]!;
      for (const g of answer.genres) expect(g.predicted).toBe(g.probability >= g.threshold);
      expect(answer.predicted).toEqual(answer.genres.filter((g) => g.predicted).map((g) => g.genre));
    }
  });

  it('the real process serves it with every model in its own worker (two per poster model, two per overview model), then stops on SIGTERM', async () => {
    const proc = start(['--models-dir', sentence.dir, '--port', '0', '--backend', 'wasm', '--poster-workers', '2']);
    try {
      const checked = await proc.waitFor('models directory checked');
      expect(checked['models']).toEqual([`cnn:image/pretrained ${TEST_POSTER_WIDTH}x${TEST_POSTER_HEIGHT}`, 'sentence:text/use-lite', 'fusion:fusion/stacked(cnn+sentence)']);
      const ready = await proc.waitFor('ready', 120_000);
      expect(ready).toMatchObject({ inference: 'workers', models: ['cnn:image/pretrained', 'sentence:text/use-lite', 'fusion:fusion/stacked'] });
      const url = ready['url'] as string;
      const both = await predict(url, form({ poster, overview }));
      expect(Object.keys(both.models)).toEqual(['cnn', 'sentence', 'fusion']);
      const expected = await ownOutputs(server.models);
      for (const key of ['cnn', 'sentence', 'fusion']) expectSameProbabilities(both.models[key]!, expected[key]!);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      for (const runtime of ['cnn#1', 'cnn#2', 'sentence#1', 'sentence#2', 'fusion']) expect(metrics).toMatch(new RegExp(`tfjs_live_tensors\\{runtime="${runtime}"\\} \\d+`));
      expect(metrics).toMatch(/model_inference_seconds_count\{model="sentence"\} 1/);
      expect(metrics).toMatch(/model_inference_seconds_count\{model="fusion"\} 1/);
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.child.kill('SIGKILL');
    }
  }, 180_000);
});

describe('any set of members', () => {
  it('several poster models of different input sizes and several overview models: each gets its input, the poster decoded once per size', async () => {
    // The default shape plus the tiny fixture's BiLSTM and a 16 × 16 study CNN keyed 'study' (untrained: its speed and shape are what matter).
    const dir = mkdtempSync(join(tmpdir(), 'serving-mixed-'));
    scratch.push(dir);
    for (const key of ['cnn', 'sentence', 'fusion']) cpSync(join(sentence.dir, key), join(dir, key), { recursive: true });
    cpSync(join(tiny.dir, 'lstm'), join(dir, 'lstm'), { recursive: true });
    const study = createPosterCnn({ imageSize: 16, filters: [2, 2, 2], denseUnits: 4, seed: 7 });
    await savePosterClassifier(join(dir, 'study'), { model: study, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'study', variant: 'study', preprocessing: { ...posterPreprocessing(16) } }) });
    study.dispose();

    const mixed = await startServer(dir, { batchWindowMs: 5 });
    try {
      const expected = await ownOutputs(mixed.models);
      const both = await predict(mixed.url, form({ poster, overview }));
      // Members in directory order, then the fusion over its own members.
      expect(Object.keys(both.models)).toEqual(['cnn', 'lstm', 'sentence', 'study', 'fusion']);
      for (const key of Object.keys(both.models)) expectSameProbabilities(both.models[key]!, expected[key]!);
      expect(Object.keys((await predict(mixed.url, form({ poster }))).models)).toEqual(['cnn', 'study']);
      expect(Object.keys((await predict(mixed.url, form({ overview }))).models)).toEqual(['lstm', 'sentence']);
      const metrics = await (await fetch(`${mixed.url}/metrics`)).text();
      for (const key of ['cnn', 'lstm', 'sentence', 'study', 'fusion']) expect(metrics).toMatch(new RegExp(`model_inference_seconds_count\\{model="${key}"\\} [1-9]`));
      // One decode per request with a poster (each decode produces both sizes).
      expect(metrics).toMatch(/poster_decode_seconds_count\{lane="in-process",outcome="ok"\} 2\n/);
    } finally {
      await mixed.stop();
    }
  });

  it('a directory with overview models only answers overviews, and says so to a poster alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'serving-text-only-'));
    scratch.push(dir);
    cpSync(join(tiny.dir, 'lstm'), join(dir, 'lstm'), { recursive: true });
    const textOnly = await startServer(dir);
    try {
      expect(Object.keys((await predict(textOnly.url, form({ poster, overview }))).models)).toEqual(['lstm']);
      const res = await fetch(`${textOnly.url}/v1/predict`, { method: 'POST', body: form({ poster }) });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'NO_INPUT', message: expect.stringMatching(/no poster model: send an overview/) } });
    } finally {
      await textOnly.stop();
    }
  });
});
