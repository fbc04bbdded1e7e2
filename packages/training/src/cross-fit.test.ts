import * as tf from '@tensorflow/tfjs';
import { createRng, NUM_GENRES } from '@filmgenre/core';
import { crossFittedEvaluation, evaluateMultiLabel } from '@filmgenre/metrics';
import { fileSystemIO, initBackend } from '@filmgenre/tf-runtime';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossFitHeads, ensembleHeads } from './cross-fit.js';

const work = mkdtempSync(join(tmpdir(), 'cross-fit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('cpu', { log: () => {} });
});

const DIM = 8;
/** Genre g is present iff feature g (of 8) is positive; the other genres never occur. */
function task(n: number) {
  const rng = createRng(5);
  const features = Float32Array.from({ length: n * DIM }, () => rng() * 2 - 1);
  const labels = new Float32Array(n * NUM_GENRES);
  for (let i = 0; i < n; i++) for (let g = 0; g < 4; g++) labels[i * NUM_GENRES + g] = features[i * DIM + g]! > 0 ? 1 : 0;
  const folds = Int32Array.from({ length: n }, (_, i) => i % 4);
  return { features, labels, folds };
}

function head(fold: number, bag: number): tf.LayersModel {
  return tf.sequential({ name: `head_${fold}_${bag}`, layers: [tf.layers.dense({ inputShape: [DIM], units: NUM_GENRES, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: fold * 10 + bag }) })] });
}

describe('crossFitHeads', () => {
  it('predicts every film from a head that never trained on it, and learns the task out of fold', async () => {
    const { features, labels, folds } = task(600);
    // Features far from zero mean and unit scale, as frozen trunks give: standardizing is what makes them learnable fast.
    const shifted = features.map((v, i) => 50 + v * (1 + (i % DIM)) * 10);
    const result = await crossFitHeads({
      name: 'toy', features: shifted, dim: DIM, labels, folds, createHead: head, bags: 2, standardize: true, learningRate: 0.05, classWeightStrength: 0,
      epochs: 30, batchSize: 32, patience: 5, seed: 1, checkpointDir: join(work, 'ckpt'), resume: false, identity: { test: 1 }, log: () => {},
    });
    expect(result.heads).toHaveLength(8);
    expect(result.bestEpochs.every((e) => e >= 1)).toBe(true);
    const { report, thresholds } = crossFittedEvaluation(result.outOfFold, labels, folds, 'micro');
    expect(report.micro.f1).toBeGreaterThan(0.9);
    expect(thresholds).toHaveLength(NUM_GENRES);
    // The report names the shipped thresholds, and ranks the raw probabilities (not the per-fold shifted ones).
    expect(report.thresholds).toEqual(thresholds);
    expect(report.perGenre.map((g) => g.threshold)).toEqual(thresholds);
    const raw = evaluateMultiLabel({ probabilities: result.outOfFold, labels, thresholds });
    expect(report.perGenre.map((g) => g.averagePrecision)).toEqual(raw.perGenre.map((g) => g.averagePrecision));
    // Out of fold is never better than in sample: a head scoring its own training rows does at least as well.
    const inSample = evaluateMultiLabel({ probabilities: result.outOfFold, labels, thresholds }).micro.f1;
    expect(inSample).toBeGreaterThanOrEqual(report.micro.f1 - 1e-9);

    // The ensemble averages the heads and survives a save / load round trip.
    const ensemble = ensembleHeads(result.heads, DIM);
    // The shipped heads take the raw features: the scaling was folded into their first layer.
    const x = tf.tensor2d(shifted.subarray(0, 5 * DIM), [5, DIM]);
    const mean = tf.tidy(() => tf.stack(result.heads.map((h) => h.predict(x) as tf.Tensor)).mean(0));
    const direct = ensemble.predict(x) as tf.Tensor;
    expect(Array.from(direct.dataSync()).map((v, i) => Math.abs(v - mean.dataSync()[i]!)).every((d) => d < 1e-6)).toBe(true);
    await ensemble.save(fileSystemIO(join(work, 'ensemble')));
    const loaded = await tf.loadLayersModel(fileSystemIO(join(work, 'ensemble')));
    expect(Array.from((loaded.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from(direct.dataSync()));
  }, 120_000);

  it('with mirrorAtTest, scores each film by the mean of its heads over both views', async () => {
    const { features, labels, folds } = task(200);
    // A "mirror" that negates the informative features: the two views give different predictions.
    const mirrored = features.map((v) => -v);
    const options = {
      name: 'toy', features, mirrored, dim: DIM, labels, folds, createHead: head, bags: 1, learningRate: 0.05, classWeightStrength: 0,
      epochs: 2, batchSize: 32, patience: 5, seed: 1, resume: false, identity: { test: 2 }, log: () => {},
    };
    const plain = await crossFitHeads({ ...options, checkpointDir: join(work, 'ckpt-plain') });
    const both = await crossFitHeads({ ...options, mirrorAtTest: true, checkpointDir: join(work, 'ckpt-both') });
    // Fold 2's head (one bag per fold) against the film's both views.
    const film = Array.from(folds).indexOf(2);
    const head2 = both.heads[2]!;
    const x = tf.tensor2d(features.subarray(film * DIM, (film + 1) * DIM), [1, DIM]);
    const xm = tf.tensor2d(mirrored.subarray(film * DIM, (film + 1) * DIM), [1, DIM]);
    const expected = tf.tidy(() => tf.div(tf.add(head2.predict(x) as tf.Tensor, head2.predict(xm) as tf.Tensor), 2).dataSync());
    Array.from(expected).forEach((p, g) => expect(both.outOfFold[film * NUM_GENRES + g]).toBeCloseTo(p, 5));
    expect(Array.from(both.outOfFold).some((p, i) => Math.abs(p - plain.outOfFold[i]!) > 1e-4)).toBe(true);
    [...plain.heads, ...both.heads].forEach((h) => h.dispose());
    await expect(crossFitHeads({ ...options, mirrored: undefined, mirrorAtTest: true, checkpointDir: join(work, 'ckpt-x') })).rejects.toThrow(/mirrorAtTest needs the mirrored view/);
  }, 120_000);
});
