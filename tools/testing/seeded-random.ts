import { hashString, seedMathRandom } from '@filmgenre/core';
import { beforeEach } from 'vitest';

/**
 * Makes every test repeatable. tfjs draws its weight initialisers, dropout masks and shuffles from
 * Math.random whenever no seed is passed, so a test that checks that a model learns would otherwise
 * pass or fail by luck (CI saw exactly that). Each test gets its own stream, seeded by its full name,
 * so the result does not depend on which other tests ran before it.
 */
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
seedMathRandom(0x5eed);

beforeEach((context) => {
  seedMathRandom(hashString(fullName(context.task)));
});
