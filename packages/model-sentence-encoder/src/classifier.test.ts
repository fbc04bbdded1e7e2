import * as tf from '@tensorflow/tfjs';
import { fixtureFilms, fixtureMetadata } from '@filmgenre/model-artifact/testing';
import { initBackend } from '@filmgenre/tf-runtime';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSentenceHead, loadSentenceClassifier, saveSentenceClassifier } from './classifier.js';
import { SentenceEncoder } from './encoder.js';

const work = mkdtempSync(join(tmpdir(), 'sentence-classifier-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
});

describe('sentence classifier directory', () => {
  it('ships its encoder: save → load gives the same embeddings and probabilities; a changed vocabulary is refused', async () => {
    const encoder = await SentenceEncoder.load();
    const head = createSentenceHead({ hiddenUnits: 8, dropout: 0.5, seed: 3, name: 'test_head' });
    const dir = join(work, 'sentence');
    await saveSentenceClassifier(dir, { head, encoder, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'sentence', variant: 'test' }) });
    const texts = ['A detective hunts a killer in a rainy city.', 'Two friends fall in love on a summer trip.', ''];
    const embedded = await encoder.embed(texts);
    const expected = (head.predict(tf.tensor2d(embedded, [3, 512])) as tf.Tensor).dataSync();
    const loaded = await loadSentenceClassifier(dir);
    const before = tf.memory().numTensors;
    const got = await loaded.predictWithFeatures(texts);
    expect(tf.memory().numTensors).toBe(before);
    Array.from(got.features).forEach((v, i) => expect(v).toBeCloseTo(embedded[i]!, 6));
    Array.from(got.probabilities).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6));
    loaded.dispose();
    encoder.dispose();
    appendFileSync(join(dir, 'encoder', 'vocab.json'), ' ');
    await expect(loadSentenceClassifier(dir)).rejects.toThrow(/encoder\/vocab\.json: sha256 .* does not match/);
  }, 120_000);
});
