// Bundles the command line and the console: Node 20 resolves and loads ES modules one by one (~1 ms
// each, and the console is ~300 of ours and Ink's); bundled, a command starts in about half the CPU.
// One build with code splitting: what both use is one shared chunk, and what is loaded on demand
// (pg, mysql2, execa: `await import(...)`) stays in chunks of its own, loaded only by a command that
// uses it. Native and optional modules stay outside. React runs its production build, as any
// shipped app's does. bin/opsdeck uses the bundles only while they are newer than tsc's output.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { inkCaches } from './ink-caches.mjs';
import { pgNodeOnly } from './pg-node-only.mjs';

// Chunks are named by their content's hash: those of an earlier build go first.
for (const f of readdirSync('dist')) if (/^(chunk-.*|cli\.bundle|tui\.bundle)\.mjs$/.test(f)) rmSync(`dist/${f}`);
rmSync('dist/inventory/pg-worker.bundle.mjs', { force: true });

await build({
  // The team inventory's worker thread too: it loads pg (some 40 modules) before it can connect.
  entryPoints: { 'cli.bundle': 'dist/src/cli/main.js', 'tui.bundle': 'dist/screens/tui.js', 'inventory/pg-worker.bundle': 'dist/inventory/pg-worker.js' },
  // In dist/ itself, so that paths found from import.meta.url (the inventory's worker) are the same
  // from every chunk.
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', 'ssh2', 'cpu-features', 'pg-native', 'nodemailer'],
  alias: { 'react-devtools-core': './dist/screens/no-devtools.js' },
  define: { 'process.env.NODE_ENV': '"production"' },
  // Bundled CommonJS (React, pg) still calls require for Node's built-ins.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [inkCaches, pgNodeOnly],
  logLevel: 'warning',
  legalComments: 'none',
});
