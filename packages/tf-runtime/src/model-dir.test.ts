import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replaceDirAtomic } from './atomic.js';
import { initBackend } from './backend.js';
import { loadModelDir, readModelMetadata, saveModelDir, type ModelMetadata } from './model-dir.js';

const work = mkdtempSync(join(tmpdir(), 'tf-runtime-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const metadata: ModelMetadata = {
  format: 1, name: 'toy', modality: 'image', variant: 'test', genres: ['A', 'B'], thresholds: [0.4, 0.6],
  preprocessing: { imageSize: 4 }, metrics: {}, history: [], training: {}, versions: { '@tensorflow/tfjs': tf.version.tfjs },
  gitCommit: null, backend: 'cpu', createdAt: new Date(0).toISOString(),
};

function toyModel(): tf.LayersModel {
  return tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [4, 4, 3], filters: 2, kernelSize: 3 }), tf.layers.flatten(), tf.layers.dense({ units: 2, activation: 'sigmoid' })] });
}

describe('initBackend', () => {
  it('falls back past tensorflow when tfjs-node is absent and reports what it skipped', async () => {
    const lines: string[] = [];
    const info = await initBackend('auto', { log: (l) => lines.push(l) });
    expect(['tensorflow', 'wasm']).toContain(info.name);
    expect(lines[0]).toMatch(new RegExp(`^\\[tfjs\\] backend: ${info.name}`));
    if (info.name === 'wasm') expect(info.skipped.map((s) => s.name)).toEqual(['tensorflow']);
  });

  it('rejects an unknown backend by name', async () => {
    await expect(initBackend('gpu' as never, { log: () => {} })).rejects.toThrow(/unknown backend 'gpu'/);
  });
});

describe('saveModelDir / loadModelDir', () => {
  it('saves under wasm and loads under cpu with identical predictions', async () => {
    await initBackend('wasm', { log: () => {} });
    const model = toyModel();
    const input = tf.randomUniform([3, 4, 4, 3], 0, 1, 'float32', 7);
    const expected = Array.from((model.predict(input) as tf.Tensor).dataSync());
    const values = input.arraySync() as number[][][][];
    await saveModelDir(join(work, 'toy'), { model, metadata, files: { 'extra.json': '{"x":1}' } });
    expect(readdirSync(join(work, 'toy')).sort()).toEqual(['extra.json', 'metadata.json', 'model.json', 'weights.bin']);

    await initBackend('cpu', { log: () => {} });
    const loaded = await loadModelDir(join(work, 'toy'));
    const actual = Array.from((loaded.model!.predict(tf.tensor4d(values)) as tf.Tensor).dataSync());
    actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
    expect(loaded.metadata).toEqual(metadata);
    expect(JSON.parse(loaded.readText('extra.json'))).toEqual({ x: 1 });
  });

  it('names the file and field of invalid metadata', async () => {
    const dir = join(work, 'bad');
    expect(() => readModelMetadata(dir)).toThrow(/bad\/metadata.json: not found/);
    // Written by hand, as a corrupted or hand-edited artifact would be.
    await replaceDirAtomic(dir, (tmp) => writeFileSync(join(tmp, 'metadata.json'), JSON.stringify({ ...metadata, thresholds: [2, 0.5] })));
    expect(() => readModelMetadata(dir)).toThrow(/metadata.json: field 'thresholds.0'/);
    await replaceDirAtomic(dir, (tmp) => writeFileSync(join(tmp, 'metadata.json'), '{ not json'));
    expect(() => readModelMetadata(dir)).toThrow(/metadata.json: not valid JSON/);
  });
});

describe('replaceDirAtomic', () => {
  it('keeps the previous complete directory when filling the new one fails', async () => {
    const dir = join(work, 'atomic');
    await replaceDirAtomic(dir, (tmp) => writeFileSync(join(tmp, 'a.txt'), 'first'));
    await expect(replaceDirAtomic(dir, (tmp) => {
      writeFileSync(join(tmp, 'a.txt'), 'half');
      throw new Error('crash while writing');
    })).rejects.toThrow('crash while writing');
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('first');
    expect(readdirSync(work).filter((n) => n.startsWith('.atomic'))).toEqual([]);
    await replaceDirAtomic(dir, (tmp) => writeFileSync(join(tmp, 'b.txt'), 'second'));
    expect(existsSync(join(dir, 'a.txt'))).toBe(false);
    expect(readFileSync(join(dir, 'b.txt'), 'utf8')).toBe('second');
  });
});
