import { defineConfig } from 'vitest/config';

// The workspace's settings (see the root vitest.config.ts) plus one global setup that fits the tiny
// test models once for all of this app's test files instead of once per file.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    pool: 'forks',
    setupFiles: ['tools/testing/seeded-random.ts'],
    globalSetup: ['apps/serving/src/testing/global-setup.ts'],
  },
});
