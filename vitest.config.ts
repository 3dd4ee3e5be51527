import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // dawn.node is a native addon: separate processes are more robust than worker threads.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
