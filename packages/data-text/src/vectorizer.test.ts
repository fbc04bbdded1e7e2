import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { OOV_INDEX, TextVectorizer, VectorizerError } from './vectorizer.js';

// Word counts, worked out by hand: the 7, a 3, cat 2, sat 2, dog 1, mat 1, on 1, ran 1.
const TEXTS = ['The cat sat on the mat.', 'The dog ran; the cat sat!', 'A the, a the a THE.'];

describe('TextVectorizer.adapt', () => {
  it('builds padding, [UNK], then words by descending count with alphabetical ties', () => {
    const v = new TextVectorizer().adapt(TEXTS);
    expect(v.getVocabulary()).toEqual(['', '[UNK]', 'the', 'a', 'cat', 'sat', 'dog', 'mat', 'on', 'ran']);
    expect(v.vocabularySize).toBe(10);
    expect(v.tokenToIndex('the')).toBe(2);
    expect(v.tokenToIndex('ran')).toBe(9);
    expect(v.tokenToIndex('')).toBe(0);
    expect(v.tokenToIndex('zebra')).toBe(OOV_INDEX);
    expect(v.indexToToken(0)).toBe('');
    expect(v.indexToToken(1)).toBe('[UNK]');
    expect(v.indexToToken(4)).toBe('cat');
    expect(v.adaptStats).toEqual({ documents: 3, tokens: 18, distinctTokens: 8, minKeptCount: 1 });
  });

  it('breaks ties by code point whatever the input order', () => {
    const forward = new TextVectorizer().adapt(['zeta beta alpha', 'alpha beta zeta']);
    const backward = new TextVectorizer().adapt(['zeta alpha beta', 'zeta beta alpha']);
    expect(forward.getVocabulary()).toEqual(['', '[UNK]', 'alpha', 'beta', 'zeta']);
    expect(backward.getVocabulary()).toEqual(forward.getVocabulary());
  });

  it('caps the vocabulary at maxTokens, padding and [UNK] included', () => {
    const v = new TextVectorizer({ maxTokens: 5 }).adapt(TEXTS);
    expect(v.getVocabulary()).toEqual(['', '[UNK]', 'the', 'a', 'cat']);
    expect(v.tokenToIndex('sat')).toBe(OOV_INDEX);
    expect(v.adaptStats?.minKeptCount).toBe(2);
  });

  it('drops words seen fewer than minCount times', () => {
    const v = new TextVectorizer({ minCount: 2 }).adapt(TEXTS);
    expect(v.getVocabulary()).toEqual(['', '[UNK]', 'the', 'a', 'cat', 'sat']);
  });

  it('replaces the previous vocabulary when adapted again', () => {
    const v = new TextVectorizer().adapt(TEXTS).adapt(['new words only']);
    expect(v.getVocabulary()).toEqual(['', '[UNK]', 'new', 'only', 'words']);
  });

  it('rejects invalid settings naming the field', () => {
    expect(() => new TextVectorizer({ maxTokens: 2 })).toThrow(/maxTokens/);
    expect(() => new TextVectorizer({ sequenceLength: 0 })).toThrow(/sequenceLength/);
    expect(() => new TextVectorizer({ sequenceLength: 2.5 })).toThrow(/sequenceLength/);
    expect(() => new TextVectorizer({ maxToken: 10 } as never)).toThrow(VectorizerError);
  });

  it('refuses to encode before adapt', () => {
    expect(() => new TextVectorizer().encode('x')).toThrow(/adapt\(\)/);
    expect(() => new TextVectorizer().vocabularySize).toThrow(VectorizerError);
  });
});

describe('TextVectorizer.encode', () => {
  const v = new TextVectorizer({ sequenceLength: 5 }).adapt(TEXTS);

  it('pads with 0 at the end', () => {
    expect([...v.encode('The cat')]).toEqual([2, 4, 0, 0, 0]);
    expect([...v.encode('')]).toEqual([0, 0, 0, 0, 0]);
  });

  it('truncates at the end', () => {
    expect([...v.encode('the cat sat on the mat')]).toEqual([2, 4, 5, 8, 2]);
  });

  it('maps unknown words to [UNK] = 1', () => {
    expect([...v.encode('the zebra sat')]).toEqual([2, 1, 5, 0, 0]);
    expect(v.decode(v.encode('the zebra sat'))).toEqual(['the', '[UNK]', 'sat']);
  });

  it('encodes a batch row-major, and as an int32 tensor', () => {
    const flat = v.encodeBatch(['the cat', 'a dog ran', '']);
    expect(flat).toBeInstanceOf(Int32Array);
    expect([...flat]).toEqual([2, 4, 0, 0, 0, 3, 6, 9, 0, 0, 0, 0, 0, 0, 0]);
    const tensor = v.encodeTensor(['the cat', 'a dog ran']);
    try {
      expect(tensor.shape).toEqual([2, 5]);
      expect(tensor.dtype).toBe('int32');
      expect(tensor.arraySync()).toEqual([[2, 4, 0, 0, 0], [3, 6, 9, 0, 0]]);
    } finally {
      tensor.dispose();
    }
    expect(tf.memory().numTensors).toBe(0);
  });

  it('reports coverage: OOV share of tokens and truncated documents', () => {
    const stats = v.coverage(['the zebra sat', 'the cat sat on the mat', '']);
    expect(stats).toEqual({
      documents: 3,
      tokens: 9,
      oovTokens: 1,
      oovRate: 1 / 9,
      distinctTokens: 6,
      distinctOovTokens: 1,
      truncatedDocuments: 1,
      meanTokensPerDocument: 3,
      maxTokensPerDocument: 6,
    });
  });
});

describe('TextVectorizer JSON', () => {
  const v = new TextVectorizer({ maxTokens: 8, sequenceLength: 4 }).adapt(TEXTS);

  it('round-trips through JSON text with the same ids and settings', () => {
    const restored = TextVectorizer.fromJSON(JSON.stringify(v));
    expect(restored.settings).toEqual({ maxTokens: 8, sequenceLength: 4, minCount: 1 });
    expect(restored.getVocabulary()).toEqual(v.getVocabulary());
    expect(restored.adaptStats).toEqual(v.adaptStats);
    expect([...restored.encode('the dog sat on a zebra')]).toEqual([...v.encode('the dog sat on a zebra')]);
    expect(TextVectorizer.fromJSON(v.toJSON()).toJSON()).toEqual(v.toJSON());
  });

  it('writes the format, version and tokenizer id', () => {
    const json = v.toJSON();
    expect(json.format).toBe('filmgenre-text-vectorizer');
    expect(json.version).toBe(1);
    expect(json.tokenizer).toBe('filmgenre-words-v1');
  });

  const bad = (patch: Record<string, unknown>) => ({ ...v.toJSON(), ...patch });
  it.each([
    ['not JSON', '{"format":', /not valid JSON/],
    ['wrong format', bad({ format: 'keras' }), /^text vectorizer: format:/],
    ['newer version', bad({ version: 2 }), /version:/],
    ['other tokenizer', bad({ tokenizer: 'whitespace' }), /tokenizer:/],
    ['bad setting', bad({ settings: { maxTokens: 8, sequenceLength: -1, minCount: 1 } }), /settings\.sequenceLength:/],
    ['missing setting', bad({ settings: { maxTokens: 8, sequenceLength: 4 } }), /settings\.minCount:/],
    ['vocabulary not strings', bad({ vocabulary: ['', '[UNK]', 3] }), /vocabulary\.2:/],
    ['no padding/[UNK] head', bad({ vocabulary: ['the', 'a'] }), /vocabulary: must start with/],
    ['vocabulary over the cap', bad({ vocabulary: ['', '[UNK]', ...'abcdefg'] }), /more than settings\.maxTokens = 8/],
    ['duplicate token', bad({ vocabulary: ['', '[UNK]', 'the', 'the'] }), /vocabulary\.3: duplicate token 'the'/],
    ['unknown key', bad({ extra: true }), /extra/],
    ['not an object', 42, /\(root\)/],
  ])('rejects %s with an error naming the field', (_name, json, message) => {
    expect(() => TextVectorizer.fromJSON(json)).toThrow(VectorizerError);
    expect(() => TextVectorizer.fromJSON(json)).toThrow(message);
  });
});
