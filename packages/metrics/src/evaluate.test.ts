import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { applyThresholds, averagePrecision, binaryCrossEntropy, evaluateMultiLabel } from './evaluate.js';

// Four films, four genres. At threshold 0.5:
//   film   probabilities           labels      predicted
//   0      .9   .2  .1   .3         1 0 0 1     1 0 0 0
//   1      .6   .7  .3   .4         1 1 0 0     1 1 0 0
//   2      .55  .8  .6   .2         0 1 0 0     1 1 1 0
//   3      .3   .1  .2   .1         0 0 0 0     0 0 0 0   (all-zero row, predicted empty too)
// C has no positive label but one prediction; D has a positive but is never predicted.
const GENRES = ['A', 'B', 'C', 'D'];
const P = [
  [0.9, 0.2, 0.1, 0.3],
  [0.6, 0.7, 0.3, 0.4],
  [0.55, 0.8, 0.6, 0.2],
  [0.3, 0.1, 0.2, 0.1],
];
const Y = [
  [1, 0, 0, 1],
  [1, 1, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 0, 0],
];

describe('evaluateMultiLabel on a hand-worked example', () => {
  const report = evaluateMultiLabel({ probabilities: P, labels: Y, genres: GENRES });

  it('per genre: counts, precision, recall, F1, average precision', () => {
    const [a, b, c, d] = report.perGenre;
    // A: tp 2 of 3 predicted, both positives found. AP: positives ranked 1st and 2nd → 1.
    expect(a).toEqual({
      genre: 'A', threshold: 0.5, precision: 2 / 3, recall: 1, f1: 0.8, support: 2, predictedPositives: 3, truePositives: 2, averagePrecision: 1,
    });
    expect(b).toMatchObject({ precision: 1, recall: 1, f1: 1, support: 2, predictedPositives: 2, averagePrecision: 1 });
    // C: absent from labels → recall 0/0 = 0, F1 0/(0+1) = 0, AP 0; its false positive still costs precision.
    expect(c).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 0, predictedPositives: 1, averagePrecision: 0 });
    // D: never predicted → precision 0/0 = 0. AP: its positive (.3) ranks 2nd behind a negative (.4) → 1 × 1/2.
    expect(d).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 1, predictedPositives: 0, averagePrecision: 0.5 });
  });

  it('micro: tp 4, predicted 6, positives 5', () => {
    expect(report.micro.precision).toBeCloseTo(4 / 6, 12);
    expect(report.micro.recall).toBeCloseTo(4 / 5, 12);
    expect(report.micro.f1).toBeCloseTo(8 / 11, 12);
    // 16 cells ranked: .9✓ .8✓ .7✓ {.6✓ .6} .55 .4 {.3✓ .3 .3} … → .2 + .2 + .2 + .2·(4/5) + .2·(5/10)
    expect(report.micro.averagePrecision).toBeCloseTo(0.86, 12);
  });

  it('macro: over A, B, D only (C has no positive)', () => {
    expect(report.macro.genresAveraged).toBe(3);
    expect(report.macro.precision).toBeCloseTo((2 / 3 + 1 + 0) / 3, 12);
    expect(report.macro.recall).toBeCloseTo(2 / 3, 12);
    expect(report.macro.f1).toBeCloseTo(0.6, 12);
    expect(report.macro.averagePrecision).toBeCloseTo(2.5 / 3, 12);
  });

  it('weighted by support 2, 2, 0, 1', () => {
    expect(report.weighted.precision).toBeCloseTo((2 * (2 / 3) + 2) / 5, 12);
    expect(report.weighted.recall).toBeCloseTo(0.8, 12);
    expect(report.weighted.f1).toBeCloseTo((2 * 0.8 + 2) / 5, 12);
  });

  it('samples: per-film scores, the empty/empty film counting 0', () => {
    // film 0: P 1, R 1/2, F1 2/3; film 1: 1, 1, 1; film 2: P 1/3, R 1, F1 1/2; film 3: 0, 0, 0.
    expect(report.samples.precision).toBeCloseTo(7 / 12, 12);
    expect(report.samples.recall).toBeCloseTo(0.625, 12);
    expect(report.samples.f1).toBeCloseTo(13 / 24, 12);
  });

  it('subset accuracy, Hamming loss and binary cross-entropy', () => {
    expect(report.films).toBe(4);
    expect(report.subsetAccuracy).toBe(0.5); // films 1 and 3
    expect(report.hammingLoss).toBe(3 / 16); // film 0 D, film 2 A and C
    const expected =
      -[0.9, 0.8, 0.9, 0.3, 0.6, 0.7, 0.7, 0.6, 0.45, 0.8, 0.4, 0.8, 0.7, 0.9, 0.8, 0.9].reduce((s, q) => s + Math.log(q), 0) / 16;
    expect(report.loss).toBeCloseTo(expected, 12);
  });

  it("matches tfjs-layers' binary cross-entropy (the training loss)", () => {
    const tfLoss = tf.tidy(() => tf.metrics.binaryCrossentropy(tf.tensor2d(Y), tf.tensor2d(P)).mean().dataSync()[0]!);
    expect(report.loss).toBeCloseTo(tfLoss, 5);
  });

  it('gives the same answer for flat Float32Array / Uint8Array inputs', () => {
    const flat = evaluateMultiLabel({ probabilities: new Float32Array(P.flat()), labels: new Uint8Array(Y.flat()), genres: GENRES });
    expect(flat.micro.f1).toBeCloseTo(report.micro.f1, 12);
    expect(flat.macro.averagePrecision).toBeCloseTo(report.macro.averagePrecision, 12);
    expect(flat.loss).toBeCloseTo(report.loss, 6);
    // Films' labels are Uint8Array rows: accepted as they are.
    expect(evaluateMultiLabel({ probabilities: P, labels: Y.map((r) => Uint8Array.from(r)), genres: GENRES }).samples).toEqual(report.samples);
  });
});

describe('evaluateMultiLabel conventions', () => {
  it('zeroDivision 1 turns every 0/0 into 1, as scikit-learn', () => {
    const r = evaluateMultiLabel({ probabilities: P, labels: Y, genres: GENRES, zeroDivision: 1 });
    expect(r.perGenre[2]).toMatchObject({ precision: 0, recall: 1, f1: 0 }); // C: 0/1, 0/0, 0/1
    expect(r.perGenre[3]).toMatchObject({ precision: 1, recall: 0, f1: 0 }); // D: 0/0, 0/1, 0/1
    expect(r.samples.precision).toBeCloseTo((1 + 1 + 1 / 3 + 1) / 4, 12);
    expect(r.samples.f1).toBeCloseTo((2 / 3 + 1 + 0.5 + 1) / 4, 12);
  });

  it('per-genre thresholds move predictions genre by genre, with p ≥ threshold', () => {
    // D at 0.3 now predicts films 0 (.3, a hit) and 1 (.4).
    const r = evaluateMultiLabel({ probabilities: P, labels: Y, genres: GENRES, thresholds: [0.5, 0.5, 0.5, 0.3] });
    expect(r.perGenre[3]).toMatchObject({ threshold: 0.3, truePositives: 1, predictedPositives: 2, precision: 0.5, recall: 1 });
    expect(r.thresholds).toEqual([0.5, 0.5, 0.5, 0.3]);
  });

  it('scores perfect predictions as perfect, loss ≈ 1e-7 from clipping', () => {
    const r = evaluateMultiLabel({ probabilities: Y, labels: Y, genres: GENRES });
    expect(r.micro).toEqual({ precision: 1, recall: 1, f1: 1, averagePrecision: 1 });
    expect(r.macro).toMatchObject({ precision: 1, recall: 1, f1: 1, averagePrecision: 1 });
    expect(r.subsetAccuracy).toBe(1);
    expect(r.hammingLoss).toBe(0);
    expect(r.loss).toBeCloseTo(1e-7, 9);
    expect(r.samples.f1).toBe(3 / 4); // the all-zero film scores 0 by convention
  });

  it('handles all-zero labels and predictions without NaN', () => {
    const zeros = [[0, 0], [0, 0]];
    const r = evaluateMultiLabel({ probabilities: [[0.1, 0.2], [0.3, 0.4]], labels: zeros, genres: ['x', 'y'] });
    expect(r.micro).toEqual({ precision: 0, recall: 0, f1: 0, averagePrecision: 0 });
    expect(r.macro).toEqual({ precision: 0, recall: 0, f1: 0, averagePrecision: 0, genresAveraged: 0 });
    expect(r.weighted).toEqual({ precision: 0, recall: 0, f1: 0 });
    expect(r.subsetAccuracy).toBe(1);
    expect(JSON.stringify(r)).not.toMatch(/null|NaN/);
  });

  it('rejects inputs of the wrong shape or range, saying where', () => {
    expect(() => evaluateMultiLabel({ probabilities: P, labels: Y.slice(1), genres: GENRES })).toThrow(/4 rows but labels have 3/);
    expect(() => evaluateMultiLabel({ probabilities: new Float32Array(7), labels: Y, genres: GENRES })).toThrow(/multiple of 4/);
    expect(() => evaluateMultiLabel({ probabilities: [[0.1, 0.2, 0.3]], labels: [[0, 0, 0, 0]], genres: GENRES })).toThrow(/row 0 has 3 values/);
    expect(() => evaluateMultiLabel({ probabilities: [[0.1, NaN, 0, 0]], labels: [[0, 0, 0, 0]], genres: GENRES })).toThrow(/row 0, genre 1 is NaN/);
    expect(() => evaluateMultiLabel({ probabilities: [[0, 0, 0, 0]], labels: [[0, 2, 0, 0]], genres: GENRES })).toThrow(/expected 0 or 1/);
    expect(() => evaluateMultiLabel({ probabilities: P, labels: Y, genres: GENRES, thresholds: [0.5] })).toThrow(/expected 1 or 4/);
    expect(() => evaluateMultiLabel({ probabilities: [], labels: [], genres: GENRES })).toThrow(/no films/);
  });

  it('defaults to the 25 dataset genres', () => {
    const r = evaluateMultiLabel({ probabilities: new Float32Array(50).fill(0.2), labels: new Uint8Array(50) });
    expect(r.genres).toHaveLength(25);
    expect(r.genres[7]).toBe('Drama');
    expect(r.films).toBe(2);
  });
});

describe('averagePrecision', () => {
  it('treats tied scores as one step', () => {
    // All scores tied: one step to recall 1 at precision 2/4.
    expect(averagePrecision([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0])).toBe(0.5);
    // Ranked 1✓ 2✗ 3✓: 1/2·1 + 1/2·2/3.
    expect(averagePrecision([0.9, 0.8, 0.7], [1, 0, 1])).toBeCloseTo(0.5 + 1 / 3, 12);
  });
});

describe('applyThresholds', () => {
  it('predicts 1 where p ≥ threshold, flat row-major', () => {
    expect([...applyThresholds([[0.5, 0.49], [0.2, 0.3]], [0.5, 0.3], ['a', 'b'])]).toEqual([1, 1, 0, 1]);
    expect([...applyThresholds([[0.5, 0.49], [0.2, 0.3]], 0.5, ['a', 'b'])]).toEqual([1, 0, 0, 0]);
  });
});

describe('macroAllGenres and binaryCrossEntropy', () => {
  it('averages F1 over every genre, a genre without positives counting 0 (scikit-learn average="macro")', () => {
    // Genre 0 is perfect, genre 1 half right, genre 2 never occurs and is never predicted.
    const report = evaluateMultiLabel({
      probabilities: [[0.9, 0.9, 0.1], [0.1, 0.1, 0.1], [0.9, 0.1, 0.1]],
      labels: [[1, 1, 0], [0, 1, 0], [1, 0, 0]],
      thresholds: 0.5, genres: ['a', 'b', 'c'],
    });
    const f1b = (2 * 1) / (2 + 1);
    expect(report.macro.f1).toBeCloseTo((1 + f1b) / 2, 10);
    expect(report.macroAllGenres.f1).toBeCloseTo((1 + f1b + 0) / 3, 10);
  });

  it('binaryCrossEntropy weights only positive terms and matches the report loss without weights', () => {
    const p = [0.9, 0.2, 0.6, 0.7];
    const y = [1, 0, 0, 1];
    expect(binaryCrossEntropy(p, y)).toBeCloseTo(-(Math.log(0.9) + Math.log(0.8) + Math.log(0.4) + Math.log(0.7)) / 4, 10);
    expect(binaryCrossEntropy(p, y, [2, 1])).toBeCloseTo(-(2 * Math.log(0.9) + Math.log(0.8) + Math.log(0.4) + Math.log(0.7)) / 4, 10);
    expect(evaluateMultiLabel({ probabilities: p, labels: y, genres: ['a', 'b'] }).loss).toBeCloseTo(binaryCrossEntropy(p, y), 10);
  });
});
