// Bundles the console into one file: Ink, React and their ~150 small modules take ~0.5 s to
// resolve and load one by one on Node 20; as one file, ~0.2 s. Native and optional modules stay
// outside. React runs its production build, as any shipped app's does.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/screens/tui.js'],
  outfile: 'dist/tui.bundle.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', 'ssh2', 'cpu-features', 'pg-native', 'nodemailer'],
  alias: { 'react-devtools-core': './dist/screens/no-devtools.js' },
  define: { 'process.env.NODE_ENV': '"production"' },
  // Bundled CommonJS (React, pg) still calls require for Node's built-ins.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});
