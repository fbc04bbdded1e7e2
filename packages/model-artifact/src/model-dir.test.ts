import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@filmgenre/tf-runtime';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide, NonFiniteOutputError } from './decide.js';
import type { ModelMetadataInput } from './metadata.js';
import { artifactDigest, openModelDir, readModelMetadata, saveModelDir } from './model-dir.js';
import { resealModelDir } from './testing.js';

const work = mkdtempSync(join(tmpdir(), 'model-artifact-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
});

const metadata: ModelMetadataInput = {
  name: 'toy', kind: 'toy-classifier', modality: 'image', variant: 'test', genres: ['A', 'B'], thresholds: [0.4, 0.6],
  preprocessing: { imageSize: 4 }, split: { seed: 0, folds: 5, validationFold: 0, films: 10, validationFilms: 2, digest: '0123456789abcdef' },
  metrics: {}, history: [], training: {}, versions: { '@tensorflow/tfjs': tf.version.tfjs }, gitCommit: null, backend: 'cpu', createdAt: new Date(0).toISOString(),
};
const films = { scheme: 'validation' as const, train: ['tt0000001'], heldOut: ['tt0000002'], heldOutProbabilities: new Float32Array([0.25, 0.75]) };

function toyModel(): tf.LayersModel {
  return tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 3] }), tf.layers.dense({ units: 2, activation: 'sigmoid' })] });
}

async function saveToy(name: string): Promise<string> {
  const dir = join(work, name);
  await saveModelDir(dir, { model: toyModel(), metadata, films, files: { 'vocabulary.json': '{"x":1}' } });
  return dir;
}

describe('saveModelDir / openModelDir', () => {
  it('records the sha256 of every file and loads the same model, films record and extra files back', async () => {
    const model = toyModel();
    const dir = join(work, 'roundtrip');
    const written = await saveModelDir(dir, { model, metadata, films, files: { 'vocabulary.json': '{"x":1}' } });
    expect(Object.keys(written.files).sort()).toEqual(['films.json', 'model.json', 'vocabulary.json', 'weights.bin']);
    const opened = openModelDir(dir);
    expect(opened.metadata).toEqual(written);
    const loaded = (await opened.loadLayersModel())!;
    const x = tf.ones([1, 4, 4, 3]);
    expect(Array.from((loaded.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()));
    expect(JSON.parse(opened.readText('vocabulary.json'))).toEqual({ x: 1 });
    expect(opened.films()).toEqual(films);
  });

  it('refuses a weights file replaced by same-size random bytes, naming the file', async () => {
    const dir = await saveToy('tampered');
    const size = readFileSync(join(dir, 'weights.bin')).byteLength;
    writeFileSync(join(dir, 'weights.bin'), Buffer.from(Array.from({ length: size }, (_, i) => (i * 37) % 256)));
    expect(() => openModelDir(dir)).toThrow(/tampered\/weights.bin: sha256 .* does not match .* the file changed after training/);
  });

  it('refuses NaN weights even when their sha256 was rewritten to match', async () => {
    const dir = await saveToy('nan');
    const weights = readFileSync(join(dir, 'weights.bin'));
    weights.writeFloatLE(Number.NaN, 4 * 5);
    writeFileSync(join(dir, 'weights.bin'), weights);
    resealModelDir(dir);
    const opened = openModelDir(dir);
    await expect(opened.loadLayersModel()).rejects.toThrow(/nan\/model.json: weight '.*' holds NaN at index 5: the weights are damaged/);
  });

  it('refuses a listed file that is missing, and reads of files it does not list', async () => {
    const dir = await saveToy('incomplete');
    rmSync(join(dir, 'vocabulary.json'));
    expect(() => openModelDir(dir)).toThrow(/incomplete\/vocabulary.json: listed in metadata.json but missing/);
    const whole = openModelDir(await saveToy('whole'));
    writeFileSync(join(whole.dir, 'notes.txt'), 'added later');
    expect(() => whole.readText('notes.txt')).toThrow(/notes.txt: not one of the files recorded/);
  });

  it('names the file and field of invalid metadata, and refuses an older format by name', async () => {
    const dir = await saveToy('bad-metadata');
    const path = join(dir, 'metadata.json');
    const good = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify({ ...good, thresholds: [2, 0.5] }));
    expect(() => readModelMetadata(dir)).toThrow(/metadata.json: field 'thresholds.0'/);
    writeFileSync(path, JSON.stringify({ ...good, format: 2 }));
    expect(() => readModelMetadata(dir)).toThrow(/format 2, this code reads format 3 \(retrain/);
    writeFileSync(path, '{ not json');
    expect(() => readModelMetadata(dir)).toThrow(/metadata.json: not valid JSON/);
    expect(() => readModelMetadata(join(work, 'absent'))).toThrow(/absent\/metadata.json: not found/);
  });

  it('refuses to write metadata that breaks the contract', async () => {
    await expect(saveModelDir(join(work, 'no-write'), { metadata: { ...metadata, thresholds: [0.5] }, films })).rejects.toThrow(/metadata field 'thresholds' thresholds must have one value per genre/);
    await expect(saveModelDir(join(work, 'no-write'), { metadata: { ...metadata, thresholds: [0.5, 1] }, films })).rejects.toThrow(/metadata field 'thresholds.1' must be below 1/);
  });

  it('refuses a metadata field edited, added or removed after training, naming it, as it refuses a changed file', async () => {
    const dir = await saveToy('edited');
    const path = join(dir, 'metadata.json');
    const good = readFileSync(path, 'utf8');
    const edit = (change: (m: Record<string, unknown>) => void) => {
      const m = JSON.parse(good) as Record<string, unknown>;
      change(m);
      writeFileSync(path, JSON.stringify(m));
    };
    edit((m) => (m['thresholds'] = [0.4, 0.7]));
    expect(() => openModelDir(dir)).toThrow(/edited\/metadata.json: field 'thresholds' changed after training .*restore metadata.json or retrain/);
    edit((m) => (m['preprocessing'] = { imageSize: 64 }));
    expect(() => readModelMetadata(dir)).toThrow(/field 'preprocessing' changed after training/);
    edit((m) => delete m['metrics']);
    expect(() => readModelMetadata(dir)).toThrow(/field 'metrics' was removed after training/);
    edit((m) => (m['note'] = 'hand-tuned'));
    expect(() => readModelMetadata(dir)).toThrow(/field 'note' was added after training/);
    // At the edges of (0, 1) a genre is predicted for every film or for none: refused even when sealed.
    edit((m) => (m['thresholds'] = [0, 1]));
    expect(() => readModelMetadata(dir)).toThrow(/metadata.json: field 'thresholds.0' must be above 0/);
    resealModelDir(dir, (m) => (m['thresholds'] = [0.5, 1]));
    expect(() => readModelMetadata(dir)).toThrow(/metadata.json: field 'thresholds.1' must be below 1/);
    // Reformatting changes no field.
    writeFileSync(path, JSON.stringify(JSON.parse(good)));
    expect(openModelDir(dir).metadata).toEqual(JSON.parse(good));
  });

  it('digests a directory over its metadata as well as its files, so a member pinned by it cannot change unseen', async () => {
    const dir = await saveToy('pinned');
    const before = artifactDigest(readModelMetadata(dir));
    expect(openModelDir(dir).digest).toBe(before);
    resealModelDir(dir, (m) => (m['preprocessing'] = { imageSize: 8 }));
    const after = artifactDigest(readModelMetadata(dir));
    expect(after).not.toBe(before);
    writeFileSync(join(dir, 'vocabulary.json'), '{"x":2}');
    resealModelDir(dir);
    expect(artifactDigest(readModelMetadata(dir))).not.toBe(after);
  });
});

describe('decide', () => {
  it('predicts a genre at or above its own threshold', () => {
    expect(decide([0.4, 0.59], metadata).map((d) => d.predicted)).toEqual([true, false]);
  });

  it('refuses a non-finite probability', () => {
    expect(() => decide([0.4, Number.NaN], metadata)).toThrow(NonFiniteOutputError);
  });
});
