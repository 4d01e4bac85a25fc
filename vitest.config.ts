import { defineConfig } from 'vitest/config';

// Files that stop, freeze or restart the lab's third host (lab3), and the files that use it: they
// run one at a time, beside the rest. Everything else shares the lab without stepping on each
// other (each file its own home, instances, databases and proxies) and runs two files at a time:
// most of a test's time is spent waiting on SSH, restic and PostgreSQL, not on the two cores.
const LAB3 = ['alerts', 'many', 'sampler', 'health', 'remote', 'inventory'].map((f) => `test/integration/${f}.test.ts`);

const UNIT = ['test/unit/**/*.test.ts'];

const shared = {
  // The lab (sshd, PostgreSQL) is shared by every integration file: start it once.
  globalSetup: ['test/global-setup.ts'],
  // Per test wall time and CPU, with OPSDECK_TEST_PROFILE=FILE set (test/profile.ts); else nothing.
  setupFiles: ['test/profile.ts'],
  testTimeout: 120_000,
  hookTimeout: 180_000,
};

export default defineConfig({
  test: {
    reporters: ['default'],
    maxWorkers: 3,
    minWorkers: 1,
    projects: [
      { test: { ...shared, name: 'lab', include: ['test/**/*.test.ts', 'test/**/*.test.tsx'], exclude: [...LAB3, ...UNIT] } },
      // Pure unit files need no lab, and share workers instead of a fresh process and module graph
      // per file (~1.3 s of CPU each): none of them changes module state another reads.
      { test: { name: 'unit', include: UNIT, isolate: false, testTimeout: shared.testTimeout } },
      // One fork runs these files one after another.
      { test: { ...shared, name: 'lab3', include: LAB3, poolOptions: { forks: { singleFork: true } } } },
    ],
  },
});
