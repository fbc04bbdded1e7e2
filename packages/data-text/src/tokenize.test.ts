import { describe, expect, it } from 'vitest';
import { tokenize } from './tokenize.js';

describe('tokenize', () => {
  it('lower-cases and keeps accented letters inside words', () => {
    expect(tokenize('The Fabergé Egg')).toEqual(['the', 'fabergé', 'egg']);
    expect(tokenize('Naïve CAFÉ résumé')).toEqual(['naïve', 'café', 'résumé']);
  });

  it('treats a decomposed accent (e + U+0301) like the precomposed letter', () => {
    expect(tokenize('Fabergé')).toEqual(tokenize('Faberge\u0301'));
    expect(tokenize('Faberge\u0301')).toEqual(['fabergé']);
  });

  it('drops punctuation and quotes, including curly ones', () => {
    expect(tokenize('Wait... "what?!" (she said); ok: done.')).toEqual(['wait', 'what', 'she', 'said', 'ok', 'done']);
    expect(tokenize("'quoted' and \u201Cdouble\u201D and \u2018single\u2019")).toEqual(['quoted', 'and', 'double', 'and', 'single']);
  });

  it("splits a final 's off as its own token and keeps other inner apostrophes", () => {
    expect(tokenize("the daughter's secret")).toEqual(['the', 'daughter', "'s", 'secret']);
    expect(tokenize("He's O'Brien's friend")).toEqual(['he', "'s", "o'brien", "'s", 'friend']);
    expect(tokenize("don't, can't, rock'n'roll")).toEqual(["don't", "can't", "rock'n'roll"]);
    expect(tokenize('daughter\u2019s don\u2019t')).toEqual(['daughter', "'s", "don't"]);
    expect(tokenize("his parents' house")).toEqual(['his', 'parents', 'house']);
    expect(tokenize("the 'sam' case")).toEqual(['the', 'sam', 'case']);
  });

  it('splits hyphenated words into their parts', () => {
    expect(tokenize('a mother-in-law, an ex-con and a small-town x-ray')).toEqual([
      'a', 'mother', 'in', 'law', 'an', 'ex', 'con', 'and', 'a', 'small', 'town', 'x', 'ray',
    ]);
    expect(tokenize('love—and war – again')).toEqual(['love', 'and', 'war', 'again']);
  });

  it('keeps numbers whole: thousands separators removed, decimals kept, symbols dropped', () => {
    expect(tokenize('$1,000,000 in 1984, 3.5 times, the 1980s, 19th century, 10,000-metre')).toEqual([
      '1000000', 'in', '1984', '3.5', 'times', 'the', '1980s', '19th', 'century', '10000', 'metre',
    ]);
    expect(tokenize('in 1984. Then')).toEqual(['in', '1984', 'then']);
  });

  it('collapses any whitespace and removes soft hyphens', () => {
    expect(tokenize('  two   spaces\tand\nlines  ')).toEqual(['two', 'spaces', 'and', 'lines']);
    expect(tokenize('co\u00ADoperate')).toEqual(['cooperate']);
  });

  it('returns no tokens for empty or punctuation-only text', () => {
    expect(tokenize('')).toEqual([]);
    expect(tokenize('   ')).toEqual([]);
    expect(tokenize('... -- !? "" \'\'')).toEqual([]);
  });

  it('is deterministic and stateless across calls (global regex)', () => {
    const text = 'Same text, same tokens.';
    expect(tokenize(text)).toEqual(tokenize(text));
    expect(tokenize(text)).toEqual(['same', 'text', 'same', 'tokens']);
  });
});
