import { defineConfig } from 'vitest/config';

// One configuration for every project; `nx test <project>` narrows it with --dir.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    setupFiles: ['tools/testing/seeded-random.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Model tests are CPU-bound; running files in parallel on 2 cores only slows each down.
    fileParallelism: false,
    pool: 'forks',
  },
});
