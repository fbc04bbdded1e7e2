import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { GENRES, NUM_GENRES } from '@filmgenre/core';
import { fixtureFilms, fixtureMetadata } from '@filmgenre/model-artifact/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFusionClassifier, saveFusionClassifier } from './classifier.js';
import { createJointFusionModel } from './joint.js';
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

/** Genres 0–1 are decided by signs of image features, genres 2–3 by text features. */
function featureTask(n: number, seed: number) {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
  const dv = 6;
  const dt = 5;
  const k = 4;
  const image = new Float32Array(n * dv).map(() => rand());
  const text = new Float32Array(n * dt).map(() => rand());
  const labels = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    labels[i * k] = image[i * dv]! + image[i * dv + 1]! > 0 ? 1 : 0;
    labels[i * k + 1] = image[i * dv + 2]! > 0.1 ? 1 : 0;
    labels[i * k + 2] = text[i * dt]! - text[i * dt + 1]! > 0 ? 1 : 0;
    labels[i * k + 3] = text[i * dt + 2]! > -0.1 ? 1 : 0;
  }
  return { image, text, labels, dv, dt, k, n };
}

function microF1(p: ArrayLike<number>, y: ArrayLike<number>) {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < y.length; i++) {
    const hit = p[i]! >= 0.5;
    if (hit && y[i] === 1) tp++;
    else if (hit) fp++;
    else if (y[i] === 1) fn++;
  }
  return (2 * tp) / Math.max(1, 2 * tp + fp + fn);
}

describe('joint fusion', () => {
  const train = featureTask(800, 3);
  const test = featureTask(300, 17);

  async function fitAndScore(kind: 'concat' | 'gmu', use: 'both' | 'image' | 'text') {
    const model = createJointFusionModel({ imageFeatureDim: train.dv, textFeatureDim: train.dt, hiddenUnits: 32, dropout: 0.1, kind, numGenres: train.k });
    model.compile({ optimizer: tf.train.adam(0.02), loss: 'binaryCrossentropy' });
    // A single-modality baseline sees zeros in place of the other modality's features.
    const feed = (d: typeof train) => [
      tf.tensor2d(use === 'text' ? new Float32Array(d.image.length) : d.image, [d.n, d.dv]),
      tf.tensor2d(use === 'image' ? new Float32Array(d.text.length) : d.text, [d.n, d.dt]),
    ];
    const xs = feed(train);
    const ys = tf.tensor2d(train.labels, [train.n, train.k]);
    await model.fit(xs, ys, { epochs: 40, batchSize: 64, verbose: 0 });
    const txs = feed(test);
    const probs = (model.predict(txs) as tf.Tensor).dataSync();
    tf.dispose([...xs, ys, ...txs]);
    return { model, f1: microF1(probs, test.labels), probs };
  }

  it('the GMU model learns a task where each genre is decided by one modality, better than either modality alone', async () => {
    const both = await fitAndScore('gmu', 'both');
    const image = await fitAndScore('gmu', 'image');
    const text = await fitAndScore('gmu', 'text');
    console.log(`joint gmu micro-F1: both ${both.f1.toFixed(3)}, image only ${image.f1.toFixed(3)}, text only ${text.f1.toFixed(3)}`);
    expect(both.f1).toBeGreaterThan(0.9);
    expect(both.f1).toBeGreaterThan(image.f1 + 0.1);
    expect(both.f1).toBeGreaterThan(text.f1 + 0.1);

    // save → load → identical predictions, fed through the FusionClassifier contract
    const dir = join(tmp, 'joint');
    await saveFusionClassifier(dir, { kind: 'joint', model: both.model, films: fixtureFilms(), metadata: metadata(test.k) });
    const loaded = await loadFusionClassifier(dir);
    expect(loaded.metadata.preprocessing).toMatchObject({ kind: 'joint', imageFeatureDim: 6, textFeatureDim: 5 });
    expect(loaded.members).toEqual(['cnn', 'lstm']);
    const inputs = {
      cnn: { probabilities: new Float32Array(test.n * test.k), features: test.image, featureDim: 6 },
      lstm: { probabilities: new Float32Array(test.n * test.k), features: test.text, featureDim: 5 },
    };
    const before = tf.memory().numTensors;
    const again = await loaded.predict(inputs);
    expect(tf.memory().numTensors).toBe(before);
    for (let i = 0; i < again.length; i++) expect(again[i]).toBeCloseTo(both.probs[i]!, 5);
    await expect(loaded.predict({ ...inputs, lstm: { ...inputs.lstm, features: new Float32Array(test.n * 7) } })).rejects.toThrow(/lstm features: expected 300 × 5/);
    loaded.dispose();
    [both, image, text].forEach((r) => r.model.dispose());
  });

  it('the concat model learns it too', async () => {
    const both = await fitAndScore('concat', 'both');
    expect(both.f1).toBeGreaterThan(0.9);
    both.model.dispose();
  });

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
});

describe('stacked fusion with its own joint head', () => {
  it('saves and loads; predicts the stacked combination of the members and of the head over their concatenated features', async () => {
    const { fitStackedFusion, applyStackedFusion } = await import('./stack.js');
    const { JOINT_HEAD } = await import('./classifier.js');
    const k = 4;
    const n = 120;
    const dv = 6;
    const dt = 5;
    const rand = (i: number) => ((i * 7919) % 1000) / 1000;
    const members = {
      cnn: { probabilities: Float32Array.from({ length: n * k }, (_, i) => 0.05 + 0.9 * rand(i)), features: Float32Array.from({ length: n * dv }, (_, i) => rand(i * 3) - 0.5), featureDim: dv },
      lstm: { probabilities: Float32Array.from({ length: n * k }, (_, i) => 0.05 + 0.9 * rand(i + 17)), features: Float32Array.from({ length: n * dt }, (_, i) => rand(i * 5) - 0.5), featureDim: dt },
    };
    const labels = Float32Array.from({ length: n * k }, (_, i) => (members.cnn.probabilities[i]! + members.lstm.probabilities[i]! > 1 ? 1 : 0));
    const head = tf.sequential({ layers: [tf.layers.dense({ inputShape: [dv + dt], units: k, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })] });
    const concatenated = new Float32Array(n * (dv + dt));
    for (let i = 0; i < n; i++) {
      concatenated.set(members.cnn.features.subarray(i * dv, (i + 1) * dv), i * (dv + dt));
      concatenated.set(members.lstm.features.subarray(i * dt, (i + 1) * dt), i * (dv + dt) + dv);
    }
    const headProbabilities = (head.predict(tf.tensor2d(concatenated, [n, dv + dt])) as tf.Tensor).dataSync() as Float32Array;
    const stacked = fitStackedFusion({ members: { cnn: members.cnn.probabilities, lstm: members.lstm.probabilities, [JOINT_HEAD]: headProbabilities }, labels, numGenres: k });
    const dir = join(tmp, 'stacked');
    await saveFusionClassifier(dir, { kind: 'stacked', stacked, model: head, featureMembers: ['cnn', 'lstm'], films: fixtureFilms(), metadata: metadata(k) });
    const loaded = await loadFusionClassifier(dir);
    expect(loaded.metadata.preprocessing).toMatchObject({ kind: 'stacked', featureMembers: ['cnn', 'lstm'], featureDim: dv + dt });
    const expected = applyStackedFusion(stacked, { cnn: members.cnn.probabilities, lstm: members.lstm.probabilities, [JOINT_HEAD]: headProbabilities });
    const got = await loaded.predict(members);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(expected[i]!, 5);
    await expect(loaded.predict({ cnn: members.cnn })).rejects.toThrow(/fusion needs the outputs of lstm/);
    loaded.dispose();
    await expect(saveFusionClassifier(join(tmp, 'x'), { kind: 'stacked', stacked, films: fixtureFilms(), metadata: metadata(k) })).rejects.toThrow(/needs the LayersModel/);
  });
});
