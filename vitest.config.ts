import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    // The lab (sshd, PostgreSQL) is shared by every integration file: start it once.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration files share one lab and one machine of 2 cores: run files one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
});
