import { beforeEach } from 'vitest';

/**
 * Makes every test repeatable. tfjs draws its weight initialisers, dropout masks and shuffles from
 * Math.random whenever no seed is passed, so a test that checks that a model learns would otherwise
 * pass or fail by luck (CI saw exactly that). Each test gets its own stream, seeded by its full name,
 * so the result does not depend on which other tests ran before it.
 */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fullName(task: { name: string; suite?: { name: string; suite?: unknown } | undefined; file?: { name: string } }): string {
  const parts: string[] = [task.name];
  let suite = task.suite as { name: string; suite?: unknown } | undefined;
  while (suite) {
    parts.unshift(suite.name);
    suite = suite.suite as typeof suite;
  }
  return `${task.file?.name ?? ''} > ${parts.join(' > ')}`;
}

// Module-level code (beforeAll, describe bodies) gets a stream seeded by nothing but this constant.
Math.random = mulberry32(0x5eed);

beforeEach((context) => {
  Math.random = mulberry32(fnv1a(fullName(context.task)));
});
