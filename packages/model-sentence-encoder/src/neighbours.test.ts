import { GENRES, NUM_GENRES } from '@filmgenre/core';
import { fixtureFilms, fixtureMetadata, resealModelDir } from '@filmgenre/model-artifact/testing';
import { initBackend } from '@filmgenre/tf-runtime';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SentenceEncoder } from './encoder.js';
import { loadSentenceNeighbours, NEIGHBOUR_EMBEDDINGS_FILE, NEIGHBOUR_LABELS_FILE, neighbourIndex, neighbourVotes, saveSentenceNeighbours } from './neighbours.js';

const work = mkdtempSync(join(tmpdir(), 'sentence-neighbours-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
});

const CRIME = GENRES.indexOf('Crime');
const ROMANCE = GENRES.indexOf('Romance');

/** Rows of `dim` values from the given directions (unnormalised on purpose: the index normalises). */
const rowsOf = (dim: number, vectors: number[][]) => Float32Array.from(vectors.flatMap((v) => [...v, ...new Array<number>(dim - v.length).fill(0)]));
const labelsOf = (genres: number[][]) => Float32Array.from(genres.flatMap((gs) => Array.from({ length: NUM_GENRES }, (_, g) => (gs.includes(g) ? 1 : 0))));

describe('neighbour votes', () => {
  const index = neighbourIndex(rowsOf(3, [[2, 0, 0], [1, 0.1, 0], [0, 3, 0], [0, 1, 0.1]]), labelsOf([[CRIME], [CRIME], [ROMANCE], [ROMANCE]]), 3, NUM_GENRES);

  it('the nearest films decide; the base rates only smooth, in proportion to priorWeight', async () => {
    const votes = await neighbourVotes(index, rowsOf(3, [[1, 0, 0], [0, 5, 0]]), { k: 2, temperature: 0.05, priorWeight: 1 });
    // Query 0: its two neighbours are the crime films (similarities 1 and ≈0.995), weights 1 and ≈0.905.
    const w = Math.exp((1 / Math.sqrt(1.01) - 1) / 0.05);
    // Base rates smoothed as if one more film had each genre and one more had none: crime 3/6, drama 1/6.
    expect(votes[CRIME]).toBeCloseTo((1 + w + 0.5) / (1 + w + 1), 4);
    expect(votes[ROMANCE]).toBeCloseTo(0.5 / (1 + w + 1), 4);
    expect(votes[NUM_GENRES + ROMANCE]).toBeGreaterThan(0.7);
    expect(votes[NUM_GENRES + CRIME]).toBeLessThan(0.3);
    // No indexed film is a drama: unlikely, not impossible (every probability lies strictly inside (0, 1)).
    expect(votes[GENRES.indexOf('Drama')]).toBeCloseTo((1 / 6) / (1 + w + 1), 6);
    expect(Array.from(votes).every((p) => p > 0 && p < 1)).toBe(true);
    const sharp = await neighbourVotes(index, rowsOf(3, [[1, 0, 0]]), { k: 2, temperature: 0.05, priorWeight: 0 });
    expect(sharp[CRIME]).toBeCloseTo(1, 6);
    expect(sharp[ROMANCE]).toBe(0);
  });

  it('k limits the voters, and a high temperature makes them equal', async () => {
    const all = await neighbourVotes(index, rowsOf(3, [[1, 0, 0]]), { k: 4, temperature: 1e6, priorWeight: 0 });
    expect(all[CRIME]).toBeCloseTo(0.5, 4);
    expect(all[ROMANCE]).toBeCloseTo(0.5, 4);
    const one = await neighbourVotes(index, rowsOf(3, [[1, 0, 0]]), { k: 1, temperature: 1e6, priorWeight: 0 });
    expect(one[CRIME]).toBe(1);
    const more = await neighbourVotes(index, rowsOf(3, [[1, 0, 0]]), { k: 50, temperature: 1e6, priorWeight: 0 });
    expect(Array.from(more)).toEqual(Array.from(all));
  });

  it('refuses labels that are not 0/1 or do not match the films', () => {
    expect(() => neighbourIndex(rowsOf(3, [[1, 0, 0]]), labelsOf([[CRIME], [ROMANCE]]), 3, NUM_GENRES)).toThrow(/labels hold 2 films, the embeddings 1/);
    expect(() => neighbourIndex(rowsOf(3, [[1, 0, 0]]), new Float32Array(NUM_GENRES).fill(0.5), 3, NUM_GENRES)).toThrow(/0 or 1/);
  });
});

describe('sentence-neighbours directory', () => {
  it('ships its index and encoder: save → load votes as the index did; damaged files are refused by name', async () => {
    const encoder = await SentenceEncoder.load();
    const training = ['A detective hunts a serial killer through the city.', 'Two detectives chase a killer across the snow.', 'A young couple falls in love in Paris.', 'Old lovers meet again and fall in love.'];
    const index = neighbourIndex(await encoder.embed(training), labelsOf([[CRIME], [CRIME], [ROMANCE], [ROMANCE]]), 512, NUM_GENRES);
    const settings = { k: 2, temperature: 0.05, priorWeight: 1 };
    const dir = join(work, 'neighbours');
    await saveSentenceNeighbours(dir, { index, settings, encoder, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'neighbours', variant: 'test' }) });
    const texts = ['A killer stalks a detective at night.', 'A love story on a summer island.'];
    const expected = await neighbourVotes(index, await encoder.embed(texts), settings);
    const loaded = await loadSentenceNeighbours(dir);
    expect(loaded.metadata.kind).toBe('sentence-neighbours');
    const got = await loaded.predictWithFeatures(texts);
    Array.from(got.probabilities).forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 6));
    expect(got.probabilities[CRIME]).toBeGreaterThan(got.probabilities[ROMANCE]!);
    expect(got.probabilities[NUM_GENRES + ROMANCE]).toBeGreaterThan(got.probabilities[NUM_GENRES + CRIME]!);
    expect(got.featureDim).toBe(NUM_GENRES);
    expect(1 / (1 + Math.exp(-got.features[CRIME]!))).toBeCloseTo(got.probabilities[CRIME]!, 5);
    loaded.dispose();
    await expect(loaded.predict(texts)).rejects.toThrow(/disposed/);
    encoder.dispose();

    writeFileSync(join(dir, NEIGHBOUR_LABELS_FILE), new Uint8Array(4 * NUM_GENRES).fill(2));
    await expect(loadSentenceNeighbours(dir)).rejects.toThrow(/neighbour-labels\.bin: sha256 .* does not match/);
    resealModelDir(dir);
    await expect(loadSentenceNeighbours(dir)).rejects.toThrow(/neighbour-labels\.bin: byte 0 is 2/);
    writeFileSync(join(dir, NEIGHBOUR_LABELS_FILE), new Uint8Array(4 * NUM_GENRES));
    writeFileSync(join(dir, NEIGHBOUR_EMBEDDINGS_FILE), new Uint8Array(new Float32Array(4 * 512).fill(0.5).buffer));
    resealModelDir(dir);
    await expect(loadSentenceNeighbours(dir)).rejects.toThrow(/neighbour-embeddings\.bin: film 0's embedding has squared length 128, not 1/);
    writeFileSync(join(dir, NEIGHBOUR_EMBEDDINGS_FILE), new Uint8Array(8));
    resealModelDir(dir);
    await expect(loadSentenceNeighbours(dir)).rejects.toThrow(/neighbour-embeddings\.bin: 8 bytes, expected 4 films × 512 × 4/);
  }, 120_000);
});
