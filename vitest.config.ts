import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // dawn.node is a native addon: separate processes are more robust than worker threads.
    pool: 'forks',
    // With a cold Mesa shader cache (a fresh CI machine) lavapipe JIT-compiles
    // every new pipeline on first dispatch, 0.2-2 s each; a GAN-step test
    // compiles hundreds, several minutes on 2 loaded cores. A timeout is for
    // hangs, not for that.
    testTimeout: 900_000,
    hookTimeout: 900_000,
  },
});
