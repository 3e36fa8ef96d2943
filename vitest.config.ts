import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // expect.poll's default second is a browser round trip or two on a loaded machine (CI failed on it).
    expect: { poll: { timeout: 5_000 } },
    // End-to-end files each start a local stack (DynamoDB Local is a JVM): two at a time fits 2 cores.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
