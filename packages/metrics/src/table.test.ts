import { describe, expect, it } from 'vitest';
import { escapeHtml, randomFilmsTable, topK } from './table.js';

describe('topK', () => {
  it('returns the k most probable genres, ties in genre order', () => {
    const genres = ['a', 'b', 'c', 'd', 'e'];
    expect(topK([0.2, 0.5, 0.2, 0.5, 0.1], genres, 3)).toEqual([
      { genre: 'b', probability: 0.5 },
      { genre: 'd', probability: 0.5 },
      { genre: 'a', probability: 0.2 },
    ]);
    expect(topK([0.2, 0.5, 0.2, 0.5, 0.1], genres, 10)).toHaveLength(5);
    expect(topK(new Float32Array(5), genres).map((s) => s.genre)).toEqual(['a', 'b', 'c']);
  });

  it('defaults to the 25 dataset genres and k = 3', () => {
    const row = new Float32Array(25);
    row[7] = 0.9; // Drama
    row[4] = 0.8; // Comedy
    row[18] = 0.7; // Romance
    expect(topK(row).map((s) => s.genre)).toEqual(['Drama', 'Comedy', 'Romance']);
  });

  it('rejects a row of the wrong length', () => {
    expect(() => topK([0.1, 0.2], ['a', 'b', 'c'])).toThrow(/2 probabilities for 3 genres/);
  });
});

describe('randomFilmsTable', () => {
  const genres = ['a', 'b', 'c', 'd'];
  // Film i: model "m1" is sure of genre i % 4, model "m2" of genre (i + 1) % 4; truth is genre i % 4.
  const n = 20;
  const films = Array.from({ length: n }, (_, i) => ({ id: `tt${String(i).padStart(7, '0')}`, truth: [genres[i % 4]!] }));
  const oneHot = (shift: number) => {
    const m = new Float32Array(n * 4).fill(0.1);
    for (let i = 0; i < n; i++) m[i * 4 + ((i + shift) % 4)] = 0.9;
    return m;
  };
  const options = { films, predictions: { m1: oneHot(0), m2: oneHot(1) }, genres, count: 5, seed: 7 };

  it('draws count films deterministically from the seed, in dataset order', () => {
    const t = randomFilmsTable(options);
    expect(t).toHaveLength(5);
    expect(Object.keys(t[0]!.predictions)).toEqual(['m1', 'm2']);
    const ids = t.map((r) => r.id);
    expect(ids).toEqual([...ids].sort());
    expect(new Set(ids).size).toBe(5);
    expect(randomFilmsTable(options)).toEqual(t);
    expect(randomFilmsTable({ ...options, seed: 8 }).map((r) => r.id)).not.toEqual(ids);
  });

  it("lists each model's top 3 aligned with the right film, marking true genres", () => {
    for (const row of randomFilmsTable(options)) {
      const i = Number(row.id.slice(2));
      expect(row.truth).toEqual([genres[i % 4]]);
      expect(row.predictions.m1![0]).toMatchObject({ genre: genres[i % 4], correct: true });
      expect(row.predictions.m2![0]).toMatchObject({ genre: genres[(i + 1) % 4], correct: false });
      expect(row.predictions.m1![0]!.probability).toBeCloseTo(0.9, 6);
      expect(row.predictions.m1).toHaveLength(3);
    }
  });

  it('takes every film when there are fewer than count, and checks row counts', () => {
    expect(randomFilmsTable({ ...options, count: 50 })).toHaveLength(20);
    expect(() => randomFilmsTable({ ...options, predictions: { m1: new Float32Array(8) } })).toThrow(/predictions\.m1 has 2 rows for 20 films/);
  });
});

describe('escapeHtml', () => {
  it('escapes every character HTML gives a meaning', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
