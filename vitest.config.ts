import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Every suite spawns its own redis-server processes; two cores run two files at once comfortably.
    maxWorkers: 2,
    pool: 'forks',
  },
});
