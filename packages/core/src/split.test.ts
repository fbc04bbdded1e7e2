import { describe, expect, it } from 'vitest';
import { createRng, seedMathRandom, shuffleInPlace } from './random.js';
import { foldOf, foldPlan, holdoutSplit, splitMismatch } from './split.js';

const films = Array.from({ length: 5000 }, (_, i) => ({ id: `tt${String(1000000 + i * 7).padStart(7, '0')}` }));

describe('holdoutSplit', () => {
  it('is deterministic and close to the requested fraction', () => {
    const a = holdoutSplit(films, { seed: 0 });
    const b = holdoutSplit(films, { seed: 0 });
    expect(a.validation.map((f) => f.id)).toEqual(b.validation.map((f) => f.id));
    expect(a.validation.length / films.length).toBeGreaterThan(0.18);
    expect(a.validation.length / films.length).toBeLessThan(0.22);
    expect(a.train.length + a.validation.length).toBe(films.length);
  });

  it('keeps every film on its side when rows are added, removed or reordered elsewhere', () => {
    const before = new Set(holdoutSplit(films, { seed: 3 }).validation.map((f) => f.id));
    const changed = shuffleInPlace([...films.slice(100), { id: 'tt9999991' }, { id: 'tt9999992' }], createRng(1));
    const after = holdoutSplit(changed, { seed: 3 }).validation.map((f) => f.id);
    for (const id of after) if (id < 'tt9999990') expect(before.has(id)).toBe(true);
    expect(after.filter((id) => id < 'tt9999990').length).toBe([...before].filter((id) => changed.some((f) => f.id === id)).length);
  });

  it('gives a different split for a different seed', () => {
    const a = holdoutSplit(films, { seed: 0 }).validation.map((f) => f.id);
    const b = holdoutSplit(films, { seed: 1 }).validation.map((f) => f.id);
    expect(a).not.toEqual(b);
  });
});

describe('createRng', () => {
  it('repeats its sequence for a seed and stays in [0, 1)', () => {
    const a = createRng(42);
    const b = createRng(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((s, x) => s + x, 0) / xs.length).toBeCloseTo(0.5, 1);
  });
});

describe('seedMathRandom', () => {
  it('makes Math.random repeat its sequence for a seed, and differ for another', () => {
    const draw = (seed: number) => {
      seedMathRandom(seed);
      return Array.from({ length: 5 }, () => Math.random());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    expect(draw(7).every((x) => x >= 0 && x < 1)).toBe(true);
  });
});

describe('holdoutSplit and foldOf', () => {
  it('spreads films evenly over the folds, each film in one fold', () => {
    const counts = new Array<number>(5).fill(0);
    for (const f of films) counts[foldOf(f.id, { folds: 5, seed: 2 })]!++;
    for (const c of counts) expect(c / films.length).toBeGreaterThan(0.17);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(films.length);
  });

  it('records a digest that changes with the seed, the folds or the films, and names the difference', () => {
    const base = holdoutSplit(films, { seed: 0 }).record;
    expect(holdoutSplit([...films].reverse(), { seed: 0 }).record).toEqual(base);
    expect(splitMismatch(base, holdoutSplit(films, { seed: 0 }).record)).toBeNull();
    expect(splitMismatch(base, holdoutSplit(films, { seed: 1 }).record)).toMatch(/seed 1 instead of 0/);
    expect(splitMismatch(base, holdoutSplit(films, { seed: 0, folds: 4 }).record)).toMatch(/4 folds instead of 5/);
    expect(splitMismatch(base, holdoutSplit(films.slice(1), { seed: 0 }).record)).toMatch(/other films \(4999 films/);
  });

  it('rejects a bad fold count or validation fold by name', () => {
    expect(() => foldOf('tt0000001', { folds: 1 })).toThrow(/folds must be an integer in \[2, 100\]/);
    expect(() => holdoutSplit(films, { folds: 5, validationFold: 5 })).toThrow(/validationFold must be in \[0, 5\)/);
  });
});

describe('createRng state', () => {
  it('resumes the same stream from a saved state', () => {
    const rng = createRng(42);
    rng();
    const state = rng.getState();
    const ahead = [rng(), rng(), rng()];
    const other = createRng(7);
    other.setState(state);
    expect([other(), other(), other()]).toEqual(ahead);
  });
});

describe('foldPlan', () => {
  it('gives each film its fold, agrees with holdoutSplit on the partition, and records a cross-fitted split', () => {
    const plan = foldPlan(films, { seed: 2, folds: 5 });
    const holdout = holdoutSplit(films, { seed: 2, folds: 5, validationFold: 3 });
    expect(plan.items.filter((_, i) => plan.folds[i] === 3).map((f) => f.id)).toEqual(holdout.validation.map((f) => f.id));
    expect(plan.record).toMatchObject({ seed: 2, folds: 5, validationFold: null, films: 5000, validationFilms: 5000, digest: holdout.record.digest });
    expect(splitMismatch(plan.record, holdout.record)).toMatch(/validation fold 3 instead of null/);
  });
});
