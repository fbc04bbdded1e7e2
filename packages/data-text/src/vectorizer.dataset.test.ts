import { readDataset, findDatasetDir, holdoutSplit } from '@filmgenre/core';
import { describe, expect, it } from 'vitest';
import { tokenize } from './tokenize.js';
import { TextVectorizer } from './vectorizer.js';

const datasetDir = findDatasetDir();

// Reads the shared dataset in place; skipped (not failed) on a machine without it.
describe.skipIf(!datasetDir)('TextVectorizer on the real overviews (80/20 split, seed 0)', () => {
  const films = datasetDir ? readDataset(datasetDir).films : [];
  const { train, validation } = holdoutSplit(films, { seed: 0 });
  const vectorizer = new TextVectorizer().adapt(train.map((f) => f.overview));

  it('fills the 10,000-entry cap: the training overviews have more distinct words than that', () => {
    expect(vectorizer.vocabularySize).toBe(10_000);
    expect(vectorizer.adaptStats!.distinctTokens).toBeGreaterThan(10_000);
  });

  it('ranks stopwords first', () => {
    expect(vectorizer.getVocabulary().slice(2, 7)).toEqual(['a', 'the', 'to', 'of', 'and']);
  });

  it("keeps accented words and the possessive 's token", () => {
    expect(vectorizer.tokenToIndex("'s")).toBeLessThan(20);
    const accented = vectorizer.getVocabulary().filter((t) => /[^\x00-\x7f]/.test(t));
    expect(accented.length).toBeGreaterThan(5);
    for (const token of accented) expect(tokenize(token)).toEqual([token]);
  });

  it('covers validation overviews well: OOV rate measured 7.0%, bound 9%; nothing truncated at 100', () => {
    const stats = vectorizer.coverage(validation.map((f) => f.overview));
    expect(stats.documents).toBe(validation.length);
    expect(stats.oovRate).toBeGreaterThan(0.02);
    expect(stats.oovRate).toBeLessThan(0.09);
    expect(stats.truncatedDocuments).toBe(0);
    expect(stats.meanTokensPerDocument).toBeGreaterThan(20);
    expect(stats.meanTokensPerDocument).toBeLessThan(35);
  });

  it('encodes the whole validation split to ids inside the vocabulary', () => {
    const ids = vectorizer.encodeBatch(validation.map((f) => f.overview));
    expect(ids.length).toBe(validation.length * 100);
    let max = 0;
    for (const id of ids) max = Math.max(max, id);
    expect(max).toBeLessThan(10_000);
    // Every overview has at least one word, so no row is all padding.
    for (let i = 0; i < validation.length; i++) expect(ids[i * 100]).not.toBe(0);
  });
});
