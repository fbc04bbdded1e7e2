import { describe, expect, it } from 'vitest';
import { ngramsOf, TfidfVectorizer } from './tfidf.js';

const TEXTS = ['A detective hunts a killer.', 'A killer hunts a detective in the snow.', 'Two friends open a bakery.'];

describe('TF-IDF of word n-grams', () => {
  it('takes words and pairs of consecutive words, lower-cased by the product tokenizer', () => {
    expect(ngramsOf('Detective hunts killer', 2)).toEqual(['detective', 'hunts', 'killer', 'detective hunts', 'hunts killer']);
    expect(ngramsOf('Detective hunts killer', 1)).toEqual(['detective', 'hunts', 'killer']);
  });

  it('learns the vocabulary and smoothed idf from the fitting texts only, rows L2-normalised', () => {
    const v = TfidfVectorizer.fit(TEXTS, { maxNgram: 2, minDocuments: 1 });
    expect(v.terms).toContain('a killer');
    expect(v.terms).not.toContain('bakery two');
    const df = (term: string) => TEXTS.filter((t) => ngramsOf(t, 2).includes(term)).length;
    const killer = v.terms.indexOf('killer');
    expect(v.idf[killer]).toBeCloseTo(Math.log((1 + TEXTS.length) / (1 + df('killer'))) + 1, 6);
    const x = v.transform(['Killer, killer... bakery!', 'nothing known here']);
    const bakery = v.terms.indexOf('bakery');
    // Known terms only ('killer killer' and 'killer bakery' are not in the vocabulary): tf × idf, then L2.
    const norm = Math.hypot(2 * v.idf[killer]!, v.idf[bakery]!);
    expect(Array.from(x.columns.subarray(0, x.start[1]!))).toEqual([bakery, killer].sort((a, b) => a - b));
    expect(x.values[x.columns.indexOf(killer)]).toBeCloseTo((2 * v.idf[killer]!) / norm, 6);
    expect(x.values[x.columns.indexOf(bakery)]).toBeCloseTo(v.idf[bakery]! / norm, 6);
    // A text with no known n-gram is an empty row, not NaN.
    expect(x.start[2]! - x.start[1]!).toBe(0);
  });

  it('leaves rare terms out, and round-trips through its JSON', () => {
    const v = TfidfVectorizer.fit(TEXTS, { minDocuments: 2 });
    expect([...v.terms].sort()).toEqual(['a', 'a detective', 'a killer', 'detective', 'hunts', 'hunts a', 'killer'].sort());
    const back = TfidfVectorizer.fromJson(JSON.parse(JSON.stringify(v.toJson())), 'test');
    expect(back.transform(TEXTS)).toEqual(v.transform(TEXTS));
    expect(() => TfidfVectorizer.fromJson({ ...v.toJson(), idf: [1] }, 'tfidf.json')).toThrow(/tfidf\.json: field 'idf' one idf per term/);
    expect(() => TfidfVectorizer.fit([])).toThrow(/at least one text/);
  });
});
