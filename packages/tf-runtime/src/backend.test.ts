import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { fileSystemIO } from './io-handler.js';

const work = mkdtempSync(join(tmpdir(), 'tf-runtime-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));


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

describe('fileSystemIO', () => {
  it('saves under wasm and loads under cpu with identical predictions', async () => {
    await initBackend('wasm', { log: () => {} });
    const model = toyModel();
    const input = tf.randomUniform([3, 4, 4, 3], 0, 1, 'float32', 7);
    const expected = Array.from((model.predict(input) as tf.Tensor).dataSync());
    const values = input.arraySync() as number[][][][];
    await model.save(fileSystemIO(join(work, 'toy')));
    await initBackend('cpu', { log: () => {} });
    const loaded = await tf.loadLayersModel(fileSystemIO(join(work, 'toy')));
    const actual = Array.from((loaded.predict(tf.tensor4d(values)) as tf.Tensor).dataSync());
    actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
  });

  it('names the missing file', async () => {
    await expect(tf.loadLayersModel(fileSystemIO(join(work, 'nothing-here')))).rejects.toThrow(/nothing-here\/model.json: model file not found/);
  });
});
