import { describe, expect, it } from 'vitest';
import { escapeHtml, formatTable, randomFilmsTable, topK, type FilmsTableRow } from './table.js';

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

describe('formatTable', () => {
  const table: FilmsTableRow[] = [
    {
      id: 'tt0000001',
      title: 'Us | Them <b>',
      truth: ['Drama', 'Sci-Fi'],
      predictions: {
        CNN: [{ genre: 'Drama', probability: 0.812, correct: true }, { genre: 'Comedy', probability: 0.4, correct: false }],
        LSTM: [{ genre: 'Sci-Fi', probability: 0.5, correct: true }, { genre: 'Drama', probability: 0.449, correct: true }],
      },
    },
    {
      id: 'tt0000002',
      truth: ['Comedy'],
      predictions: {
        CNN: [{ genre: 'Drama', probability: 0.6, correct: false }, { genre: 'Comedy', probability: 0.35, correct: true }],
        LSTM: [{ genre: 'Comedy', probability: 0.9, correct: true }, { genre: 'Romance', probability: 0.2, correct: false }],
      },
    },
  ];

  it('renders markdown with true genres in bold and cell text escaped', () => {
    expect(formatTable(table, 'markdown')).toBe(
      [
        '| Film | True genres | CNN | LSTM |',
        '| --- | --- | --- | --- |',
        '| Us \\| Them \\<b\\> (tt0000001) | Drama, Sci-Fi | **Drama** 0.81, Comedy 0.40 | **Sci-Fi** 0.50, **Drama** 0.45 |',
        '| tt0000002 | Comedy | Drama 0.60, **Comedy** 0.35 | **Comedy** 0.90, Romance 0.20 |',
      ].join('\n'),
    );
  });

  it('renders aligned plain text with * after true genres', () => {
    expect(formatTable(table, 'text', 1)).toBe(
      [
        'Film                       True genres    CNN                     LSTM',
        '-------------------------  -------------  ----------------------  ------------------------',
        'Us | Them <b> (tt0000001)  Drama, Sci-Fi  Drama* 0.8, Comedy 0.4  Sci-Fi* 0.5, Drama* 0.4',
        'tt0000002                  Comedy         Drama 0.6, Comedy* 0.3  Comedy* 0.9, Romance 0.2',
        '(* = a true genre)',
      ].join('\n'),
    );
  });

  it('renders HTML with every text escaped', () => {
    const html = formatTable(table, 'html');
    expect(html).toContain('<td>Us | Them &lt;b&gt; (tt0000001)</td>');
    expect(html).toContain('<td><strong>Drama 0.81</strong>, Comedy 0.40</td>');
    expect(html).not.toContain('<b>');
    expect(html.startsWith('<table>')).toBe(true);
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
