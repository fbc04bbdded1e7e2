import { GENRES, NUM_GENRES } from '@filmgenre/core';
import { fixtureFilms, fixtureMetadata, resealModelDir } from '@filmgenre/model-artifact/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GENRE_WEIGHTS_FILE, loadLexicalClassifier, saveLexicalClassifier, TFIDF_FILE } from './classifier.js';
import { fitGenreLogistic, genreProbabilities } from './logistic.js';
import { TfidfVectorizer } from './tfidf.js';

const tmp = mkdtempSync(join(tmpdir(), 'model-lexical-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const OVERVIEWS = [
  'A detective hunts a serial killer through the city.', 'Two detectives chase a killer across the snow.',
  'A young couple falls in love in Paris.', 'Old lovers meet again and fall in love.',
  'A killer stalks a detective at night.', 'A love story on a summer island.',
];
// Crime (index of 'Crime') for the killer stories, Romance for the love stories.
const CRIME = GENRES.indexOf('Crime');
const ROMANCE = GENRES.indexOf('Romance');

async function trained() {
  const labels = new Float32Array(OVERVIEWS.length * NUM_GENRES);
  OVERVIEWS.forEach((text, i) => (labels[i * NUM_GENRES + (/killer/.test(text) ? CRIME : ROMANCE)] = 1));
  const vectorizer = TfidfVectorizer.fit(OVERVIEWS);
  const regression = await fitGenreLogistic(vectorizer.transform(OVERVIEWS), labels, NUM_GENRES, { c: 100 });
  return { vectorizer, regression };
}

describe('lexical classifier directories', () => {
  it('save and load give the same probabilities, and the logits as features', async () => {
    const model = await trained();
    const dir = join(tmp, 'lexical');
    await saveLexicalClassifier(dir, { model, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'lexical' }) });
    const loaded = await loadLexicalClassifier(dir);
    const texts = ['a killer on the loose', 'love in the summer'];
    const out = await loaded.predictWithFeatures(texts);
    const expected = genreProbabilities(model.regression, model.vectorizer.transform(texts));
    out.probabilities.forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 6));
    expect(out.featureDim).toBe(NUM_GENRES);
    expect(1 / (1 + Math.exp(-out.features[CRIME]!))).toBeCloseTo(out.probabilities[CRIME]!, 6);
    expect(out.probabilities[CRIME]).toBeGreaterThan(out.probabilities[ROMANCE]!);
    expect(out.probabilities[NUM_GENRES + ROMANCE]).toBeGreaterThan(out.probabilities[NUM_GENRES + CRIME]!);
    expect(loaded.metadata.kind).toBe('lexical-classifier');
    loaded.dispose();
    await expect(loaded.predict(texts)).rejects.toThrow(/disposed/);
  });

  it('refuses a changed, truncated or non-finite weights file, naming it', async () => {
    const model = await trained();
    const dir = join(tmp, 'damaged');
    await saveLexicalClassifier(dir, { model, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'lexical' }) });
    writeFileSync(join(dir, GENRE_WEIGHTS_FILE), new Uint8Array(8));
    await expect(loadLexicalClassifier(dir)).rejects.toThrow(/genre-weights\.bin: sha256 .* does not match/);
    resealModelDir(dir);
    await expect(loadLexicalClassifier(dir)).rejects.toThrow(/genre-weights\.bin: 8 bytes, expected/);
    const weights = new Float32Array((model.vectorizer.dim + 1) * NUM_GENRES);
    weights[3] = Number.NaN;
    writeFileSync(join(dir, GENRE_WEIGHTS_FILE), new Uint8Array(weights.buffer));
    resealModelDir(dir);
    await expect(loadLexicalClassifier(dir)).rejects.toThrow(/holds NaN at index 3/);
    writeFileSync(join(dir, TFIDF_FILE), '{"format": "other"}');
    resealModelDir(dir);
    await expect(loadLexicalClassifier(dir)).rejects.toThrow(/tfidf\.json: field 'format'/);
  });

  it('refuses regressions that do not fit the vocabulary or the genres', async () => {
    const model = await trained();
    const regression = { ...model.regression, dim: model.regression.dim + 1 };
    await expect(saveLexicalClassifier(join(tmp, 'x'), { model: { ...model, regression }, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'lexical' }) }))
      .rejects.toThrow(/regressions take \d+ columns, the vocabulary has/);
    await expect(saveLexicalClassifier(join(tmp, 'x'), { model, films: fixtureFilms(), metadata: fixtureMetadata({ name: 'lexical', genres: ['Drama'], thresholds: [0.5] }) }))
      .rejects.toThrow(/25 regressions, metadata lists 1 genres/);
  });
});
