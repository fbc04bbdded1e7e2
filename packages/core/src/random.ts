/** Small, fast, seedable PRNG (mulberry32): same seed, same sequence, on every platform. */
export type Rng = () => number;

/** A generator whose position can be saved and restored (a checkpoint resumes its stream exactly). */
export interface StatefulRng extends Rng {
  getState(): number;
  setState(state: number): void;
}

export function createRng(seed: number): StatefulRng {
  let state = seed >>> 0;
  const next = (() => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }) as StatefulRng;
  next.getState = () => state;
  next.setState = (value: number) => {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`rng state must be a uint32, got ${value}`);
    state = value;
  };
  return next;
}

/** Fisher–Yates shuffle in place with the given generator. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** FNV-1a 32-bit hash of a string, as an unsigned integer. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  // Final avalanche so that ids differing only in their last digit spread over [0, 2^32).
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/**
 * Replaces Math.random with a seeded generator. tfjs has no global seed: its weight initialisers,
 * dropout masks and orthogonal initialisation draw from Math.random whenever no per-layer seed is
 * given, so this is what makes a training run (or a test) repeat exactly for a given seed.
 */
export function seedMathRandom(seed: number): StatefulRng {
  const rng = createRng(seed);
  Math.random = rng;
  return rng;
}
