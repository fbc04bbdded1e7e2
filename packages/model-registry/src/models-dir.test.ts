import * as tf from '@tensorflow/tfjs';
import { GENRES } from '@filmgenre/core';
import { artifactDigest, readModelMetadata } from '@filmgenre/model-artifact';
import { fixtureFilms, fixtureMetadata, resealModelDir } from '@filmgenre/model-artifact/testing';
import { createPosterCnn, posterPreprocessing, savePosterClassifier } from '@filmgenre/model-cnn';
import { saveFusionClassifier } from '@filmgenre/model-fusion';
import { createSentenceHead, ENCODER_DIR, saveSentenceClassifier, SentenceEncoder } from '@filmgenre/model-sentence-encoder';
import { initBackend } from '@filmgenre/tf-runtime';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_PROCESS, inspectModelsDir, openModelsDir, type MemberClassifier, type ModelHost } from './models-dir.js';

const work = mkdtempSync(join(tmpdir(), 'model-registry-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
});

/**
 * A tiny poster model; `nan`: weights that are not numbers (refused when the weights are read);
 * `overflow`: finite weights so large that a blank poster gives NaN (+Inf − Inf), which only the
 * warm-up pass can catch. In both the files are intact: their hashes match.
 */
async function posterModel(dir: string, poison?: 'nan' | 'overflow'): Promise<void> {
  const model = createPosterCnn({ variant: 'study', imageSize: 16, filters: [2, 2, 2], denseUnits: 4, seed: 3 });
  const weights = model.getWeights();
  if (poison === 'nan') model.setWeights(weights.map((w, i) => (i === 0 ? tf.fill(w.shape, Number.NaN) : w)));
  if (poison === 'overflow') {
    // The first bias lifts a blank input to 3e38; the next kernel's ±3e38 then sums +Inf and −Inf.
    const alternating = (w: tf.Tensor) => tf.tensor(Float32Array.from({ length: w.size }, (_, j) => (j % 2 ? -3e38 : 3e38)), w.shape);
    model.setWeights(weights.map((w, i) => (i === 1 ? tf.fill(w.shape, 3e38) : i === 2 ? alternating(w) : w)));
  }
  await savePosterClassifier(dir, { model, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'cnn', variant: 'study', preprocessing: { ...posterPreprocessing(16) } }) });
  model.dispose();
}

/** A sentence model: the shipped USE-lite encoder and a small untrained head. */
async function sentenceModel(dir: string): Promise<void> {
  const encoder = await SentenceEncoder.load();
  const head = createSentenceHead({ hiddenUnits: 8, dropout: 0, seed: 5, name: 'sentence_head' });
  await saveSentenceClassifier(dir, { head, encoder, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'sentence', variant: 'use-lite-mlp' }) });
  head.dispose();
  encoder.dispose();
}

/** cnn/, sentence/ and a late fusion/ pinned to them, as the default run writes them. */
async function withFusion(dir: string): Promise<void> {
  await posterModel(join(dir, 'cnn'));
  await sentenceModel(join(dir, 'sentence'));
  const member = (key: string) => {
    const m = readModelMetadata(join(dir, key));
    return { kind: m.kind, modality: m.modality as 'image' | 'text', variant: m.variant, digest: artifactDigest(m), createdAt: m.createdAt };
  };
  await saveFusionClassifier(join(dir, 'fusion'), {
    kind: 'late', late: { numGenres: GENRES.length, weights: GENRES.map(() => 0.5), weightGrid: [0.5] }, films: fixtureFilms(),
    metadata: fixtureMetadata({ name: 'fusion', variant: 'late', members: { cnn: member('cnn'), sentence: member('sentence') } }),
  });
}

describe('inspectModelsDir', () => {
  it('names what is wrong with a models directory', async () => {
    expect(() => inspectModelsDir(join(work, 'absent'))).toThrow(/models directory .*absent not found: train models first/);
    mkdirSync(join(work, 'empty'));
    expect(() => inspectModelsDir(join(work, 'empty'))).toThrow(/holds no model directory/);
    const dir = join(work, 'misnamed');
    await posterModel(join(dir, 'posters'));
    expect(() => inspectModelsDir(dir)).toThrow(/the model is named 'cnn' but sits in posters\//);
    const genres = join(work, 'genres');
    await posterModel(join(genres, 'cnn'));
    const path = join(genres, 'cnn', 'metadata.json');
    const metadata = JSON.parse(readFileSync(path, 'utf8'));
    // A careless edit is refused by name; a consistent directory of other genres or kind, too.
    writeFileSync(path, JSON.stringify({ ...metadata, thresholds: GENRES.map(() => 0.9) }));
    expect(() => inspectModelsDir(genres)).toThrow(/cnn model is invalid: .*cnn\/metadata.json: field 'thresholds' changed after training/);
    writeFileSync(path, JSON.stringify(metadata));
    resealModelDir(join(genres, 'cnn'), (m) => (m['genres'] = [...GENRES].reverse()));
    expect(() => inspectModelsDir(genres)).toThrow(/genres do not match the dataset's 25 genres in order \(first difference at position 1\)/);
    resealModelDir(join(genres, 'cnn'), (m) => Object.assign(m, { genres: [...GENRES], kind: 'mystery' }));
    expect(() => inspectModelsDir(genres)).toThrow(/kind 'mystery' is not one of poster-classifier, overview-classifier, sentence-classifier, lexical-classifier, sentence-neighbours, fusion/);
  });

  it('refuses a sub-directory that is not a model, such as a fusion whose metadata.json was deleted', async () => {
    const dir = join(work, 'no-fusion-metadata');
    await withFusion(dir);
    expect(inspectModelsDir(dir).fusion?.name).toBe('fusion');
    rmSync(join(dir, 'fusion', 'metadata.json'));
    expect(() => inspectModelsDir(dir)).toThrow(/no-fusion-metadata\/fusion: not a model directory \(no metadata.json\): restore it, or move it out of the models directory/);
    // Hidden directories (checkpoints, atomic writes in progress) are not models.
    rmSync(join(dir, 'fusion'), { recursive: true });
    mkdirSync(join(dir, '.checkpoints', 'cnn'), { recursive: true });
    expect(Object.keys(inspectModelsDir(dir).members)).toEqual(['cnn', 'sentence']);
  }, 120_000);

  it('leaves out a fusion whose member changed, even only in its metadata, and says why: the pin covers it', async () => {
    const dir = join(work, 'member-metadata');
    await withFusion(dir);
    // Same files, other thresholds, with every checksum forged to match: not the member the fusion was fitted on.
    resealModelDir(join(dir, 'sentence'), (m) => (m['thresholds'] = GENRES.map(() => 0.4)));
    const plan = inspectModelsDir(dir);
    expect(plan.fusion).toBeUndefined();
    expect(Object.keys(plan.members)).toEqual(['cnn', 'sentence']);
    expect(plan.unavailable['fusion']).toMatch(/fusion: fusion was fitted on sentence [0-9a-f]{16} .* but .*sentence is [0-9a-f]{16} .*refit the fusion/);
    // The members are served; asked for every model, the opener refuses with the same reason.
    const opened = await openModelsDir(dir);
    expect(Object.keys(opened.members)).toEqual(['cnn', 'sentence']);
    expect(opened.fusion).toBeUndefined();
    expect(opened.unavailable).toEqual(plan.unavailable);
    opened.dispose();
    await expect(openModelsDir(dir, { requireAll: true })).rejects.toThrow(/fusion model cannot be served: .*fusion was fitted on sentence/);
  }, 120_000);
});

describe('openModelsDir', () => {
  it('loads, verifies and warms up a sound directory, and refuses weights that give non-finite outputs', async () => {
    await posterModel(join(work, 'sound', 'cnn'));
    const loaded = await openModelsDir(join(work, 'sound'));
    expect(Object.keys(loaded.members)).toEqual(['cnn']);
    loaded.dispose();
    await posterModel(join(work, 'nan', 'cnn'), 'nan');
    await expect(openModelsDir(join(work, 'nan'))).rejects.toThrow(/nan\/cnn\/model.json: .*weight 'conv.*' holds NaN at index 0: the weights are damaged/);
    await posterModel(join(work, 'overflow', 'cnn'), 'overflow');
    await expect(openModelsDir(join(work, 'overflow'))).rejects.toThrow(/cnn model gives invalid outputs on a blank input .*: its weights are broken; retrain it/);
  });

  it('runs each model where its host puts it, and refuses one whose warm-up answers are not probabilities', async () => {
    const dir = join(work, 'sound');
    const hosted: string[] = [];
    // A host that runs the model in this thread but scales its answers past 1, as broken weights would.
    const skewed: ModelHost = {
      load: async (key, modelDir, metadata) => {
        hosted.push(`${key}:${metadata.kind}`);
        const model = (await IN_PROCESS.load(key, modelDir, metadata)) as MemberClassifier;
        const scale = (p: Float32Array) => p.map((v, i) => v + 1 + i);
        return Object.assign(Object.create(model) as MemberClassifier, {
          predict: async (x: never[]) => scale(await model.predict(x)),
          predictWithFeatures: async (x: never[]) => {
            const output = await model.predictWithFeatures(x);
            return { ...output, probabilities: scale(output.probabilities) };
          },
        });
      },
    };
    await expect(openModelsDir(dir, { host: skewed })).rejects.toThrow(/cnn model gives invalid outputs on a blank input \(cnn warm-up: output [0-9.]+ at row 0, column 0 \(50 invalid values\)\)/);
    expect(hosted).toEqual(['cnn:poster-classifier']);
  });

  it('disposes nothing while a warm-up still runs: one instance refused, the other finishes first (a worker terminated mid-call aborted the server)', async () => {
    const dir = join(work, 'two-instances');
    await posterModel(join(dir, 'cnn'));
    const events: string[] = [];
    let calls = 0;
    // Two instances (as two poster workers): the first answers NaN at once, the second answers later.
    const twoInstances: ModelHost = {
      load: async (key, modelDir, metadata) => {
        const model = (await IN_PROCESS.load(key, modelDir, metadata)) as MemberClassifier;
        return Object.assign(Object.create(model) as MemberClassifier, {
          parallelism: 2,
          predictWithFeatures: async (x: never[]) => {
            const output = await model.predictWithFeatures(x);
            if (calls++ === 0) return { ...output, probabilities: output.probabilities.map(() => Number.NaN) };
            await new Promise((resolve) => setTimeout(resolve, 300));
            events.push('slow warm-up done');
            return output;
          },
          dispose: () => {
            events.push('disposed');
            model.dispose();
          },
        });
      },
    };
    await expect(openModelsDir(dir, { host: twoInstances })).rejects.toThrow(/cnn model gives invalid outputs on a blank input/);
    expect(events).toEqual(['slow warm-up done', 'disposed']);
  });

  it('stops at once when its signal aborts during a model\'s load, and disposes the model that arrives after', async () => {
    const dir = join(work, 'sound');
    let disposed = 0;
    const slow: ModelHost = {
      load: async (key, modelDir, metadata) => {
        const model = await IN_PROCESS.load(key, modelDir, metadata);
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        return Object.assign(Object.create(model) as MemberClassifier, { dispose: () => { disposed++; model.dispose(); } });
      },
    };
    const controller = new AbortController();
    const opening = openModelsDir(dir, { host: slow, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop requested')), 100);
    const started = performance.now();
    await expect(opening).rejects.toThrow(/stop requested/);
    expect(performance.now() - started).toBeLessThan(1_000);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    expect(disposed).toBe(1);
  });

  it('refuses an encoder that answers the same whatever the text: NaN planted in a shard, every hash forged', async () => {
    const dir = join(work, 'nan-encoder');
    await sentenceModel(join(dir, 'sentence'));
    const sound = await openModelsDir(dir);
    sound.dispose();
    const encoderDir = join(dir, 'sentence', ENCODER_DIR);
    const shard = join(encoderDir, 'group1-shard1of7');
    const bytes = readFileSync(shard);
    for (let i = 0; i < 64; i++) bytes.writeFloatLE(Number.NaN, 4 * 97 * i);
    writeFileSync(shard, bytes);
    // The forger also rewrites the encoder's own fingerprint that the head records.
    const planted = await SentenceEncoder.load({ dir: encoderDir });
    const fingerprint = planted.info.modelSha256;
    planted.dispose();
    resealModelDir(join(dir, 'sentence'), (m) => ((m['preprocessing'] as { encoder: { modelSha256: string } }).encoder.modelSha256 = fingerprint));
    await expect(openModelsDir(dir)).rejects.toThrow(/sentence model gives the same probabilities \(.*\) for two different inputs: its weights are broken; retrain it/);
  }, 120_000);
});
