import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startLab } from '../fixtures/lab.js';
import { makeFastStoreTemplate } from '../fixtures/restic-fast.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A directory holding store/ and store.pass with a low-cost restic key, copied into each test home (see fixtures/restic-fast.ts). */
    resticTemplate: string;
    /** A directory, empty at the start of the run, where homeWithHosts keeps the homes it copies (test/helpers.ts). */
    homeTemplates: string;
  }
}

// One lab for the whole run; it is idempotent, so a lab already up (npm run lab) is reused.
export default async function setup(project: TestProject) {
  await startLab();
  // A template of its own per run: runs side by side never share or remove each other's.
  const template = mkdtempSync(join(tmpdir(), 'opsdeck-restic-template-'));
  await makeFastStoreTemplate(template);
  project.provide('resticTemplate', template);
  const homes = mkdtempSync(join(tmpdir(), 'opsdeck-home-templates-'));
  project.provide('homeTemplates', homes);
  return () => {
    rmSync(template, { recursive: true, force: true });
    rmSync(homes, { recursive: true, force: true });
  };
}
