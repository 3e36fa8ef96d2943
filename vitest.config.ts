import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // End-to-end files each start a local stack (DynamoDB Local is a JVM): two at a time fits 2 cores.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
