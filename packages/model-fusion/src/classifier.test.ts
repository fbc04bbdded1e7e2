import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { GENRES, NUM_GENRES } from '@filmgenre/core';
import { fixtureFilms, fixtureMetadata } from '@filmgenre/model-artifact/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFusionClassifier, saveFusionClassifier } from './classifier.js';
import { fitLateFusion } from './late.js';

const tmp = mkdtempSync(join(tmpdir(), 'model-fusion-'));
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MEMBERS = {
  cnn: { kind: 'poster-classifier', modality: 'image' as const, variant: 'test', digest: '0123456789abcdef', createdAt: new Date(0).toISOString() },
  lstm: { kind: 'overview-classifier', modality: 'text' as const, variant: 'test', digest: 'fedcba9876543210', createdAt: new Date(0).toISOString() },
};

function metadata(numGenres: number, overrides: Record<string, unknown> = {}) {
  const genres = numGenres === NUM_GENRES ? [...GENRES] : Array.from({ length: numGenres }, (_, g) => `genre${g}`);
  return fixtureMetadata({ name: 'fusion', genres, thresholds: genres.map(() => 0.5), members: MEMBERS, ...overrides });
}

describe('fusion directories', () => {
  it('late fusion saves and loads with identical predictions; bad directories are refused by name', async () => {
    const k = 3;
    const n = 200;
    const image = Float32Array.from({ length: n * k }, (_, i) => ((i * 7919) % 1000) / 1000);
    const text = Float32Array.from({ length: n * k }, (_, i) => ((i * 104729) % 1000) / 1000);
    const labels = Float32Array.from({ length: n * k }, (_, i) => (image[i]! > 0.6 ? 1 : 0));
    const late = fitLateFusion({ imageProbs: image, textProbs: text, labels, numGenres: k });
    const dir = join(tmp, 'late');
    await saveFusionClassifier(dir, { kind: 'late', late, films: fixtureFilms(), metadata: metadata(k, { thresholds: late.thresholds }) });
    const loaded = await loadFusionClassifier(dir);
    const feats = new Float32Array(0);
    const p = await loaded.predict({ cnn: { probabilities: image, features: feats, featureDim: 0 }, lstm: { probabilities: text, features: feats, featureDim: 0 } });
    expect(p[4]).toBeCloseTo(late.weights[1]! * image[4]! + (1 - late.weights[1]!) * text[4]!, 6);
    loaded.dispose();

    await expect(saveFusionClassifier(join(tmp, 'x'), { kind: 'late', late, films: fixtureFilms(), metadata: metadata(k, { members: { cnn: MEMBERS.cnn } }) })).rejects.toThrow(/members must be one image and one text model/);
    await expect(saveFusionClassifier(join(tmp, 'x'), { kind: 'joint', films: fixtureFilms(), metadata: metadata(k) })).rejects.toThrow(/needs the LayersModel/);
    writeFileSync(join(dir, 'late-fusion.json'), '{"numGenres": 3}');
    await expect(loadFusionClassifier(dir)).rejects.toThrow(/late\/late-fusion\.json: sha256 .* does not match/);
    await expect(loadFusionClassifier(join(tmp, 'nowhere'))).rejects.toThrow(/nowhere: model directory not found/);
  });

  it("a joint head over the members' concatenated features saves and loads, and predicts as before", async () => {
    const k = 4;
    const n = 120;
    const dv = 6;
    const dt = 5;
    const rand = (i: number) => ((i * 7919) % 1000) / 1000;
    const members = {
      cnn: { probabilities: new Float32Array(n * k), features: Float32Array.from({ length: n * dv }, (_, i) => rand(i * 3) - 0.5), featureDim: dv },
      lstm: { probabilities: new Float32Array(n * k), features: Float32Array.from({ length: n * dt }, (_, i) => rand(i * 5) - 0.5), featureDim: dt },
    };
    const head = tf.sequential({ layers: [tf.layers.dense({ inputShape: [dv + dt], units: k, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })] });
    const concatenated = new Float32Array(n * (dv + dt));
    for (let i = 0; i < n; i++) {
      concatenated.set(members.cnn.features.subarray(i * dv, (i + 1) * dv), i * (dv + dt));
      concatenated.set(members.lstm.features.subarray(i * dt, (i + 1) * dt), i * (dv + dt) + dv);
    }
    const expected = (head.predict(tf.tensor2d(concatenated, [n, dv + dt])) as tf.Tensor).dataSync();
    const dir = join(tmp, 'joint');
    await saveFusionClassifier(dir, { kind: 'joint', model: head, featureMembers: ['cnn', 'lstm'], films: fixtureFilms(), metadata: metadata(k) });
    const loaded = await loadFusionClassifier(dir);
    expect(loaded.metadata.preprocessing).toMatchObject({ kind: 'joint', featureMembers: ['cnn', 'lstm'], featureDim: dv + dt });
    expect(loaded.members).toEqual(['cnn', 'lstm']);
    const before = tf.memory().numTensors;
    const got = await loaded.predict(members);
    expect(tf.memory().numTensors).toBe(before);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(expected[i]!, 5);
    await expect(loaded.predict({ cnn: members.cnn })).rejects.toThrow(/fusion needs the outputs of lstm/);
    await expect(loaded.predict({ ...members, lstm: { ...members.lstm, features: new Float32Array(n * 7), featureDim: 7 } })).rejects.toThrow(/joint head takes 11 features, members cnn \+ lstm give 13/);
    loaded.dispose();
    await expect(saveFusionClassifier(join(tmp, 'x'), { kind: 'joint', model: head, films: fixtureFilms(), metadata: metadata(k) })).rejects.toThrow(/needs preprocessing.featureMembers/);
    await expect(saveFusionClassifier(join(tmp, 'x'), { kind: 'stacked', model: head, films: fixtureFilms(), metadata: metadata(k) })).rejects.toThrow(/takes no LayersModel/);
    head.dispose();
  });
});
