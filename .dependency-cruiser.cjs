// The layout's arrows, checked by the test command (npm run check:layout). Folders are layered
// bottom to top; a folder may import its own layer's folder and any layer below, never above, and
// never a sibling of its layer. docs/ARCHITECTURE.md draws the same picture in words.
const LAYERS = [
  ['src/core'], // plan, events, errors, formatting: imports nothing of ours
  ['inventory'], // the SQLite inventory, its records and their checks
  ['src/remote'], // the one Shell, ssh2, the one quoting function
  ['src/databases', 'src/store'], // the database engines behind one interface; the restic store
  ['src/deps'], // what operations need of the world: Deps, the shell and database of an instance
  ['src/health', 'src/notify'], // probes and the sampler; mail and webhooks
  ['src/engine'], // the executor: locks, steps, undo, audit
  ['src/actions'], // one plan per operation
  ['src/app'], // the composition root: opens inventory, pool, store, engine; the operations table
  ['src/present'], // rows and words shared by the CLI and the console
  ['src/cli', 'screens'], // the two faces
];

const esc = (s) => s.replace(/[/.]/g, '\\$&');
const folder = (f) => `^${esc(f)}/`;
const rules = [];
LAYERS.forEach((layer, rank) => {
  const above = LAYERS.slice(rank + 1).flat();
  for (const f of layer) {
    const siblings = layer.filter((x) => x !== f);
    const banned = [...above, ...siblings];
    if (!banned.length) continue;
    rules.push({
      name: `${f}-imports-upward`,
      comment: `${f} may import only its own folder and the layers below it (see docs/ARCHITECTURE.md)`,
      severity: 'error',
      from: { path: folder(f) },
      to: { path: `(${banned.map(folder).join('|')})` },
    });
  }
});

module.exports = {
  forbidden: [
    ...rules,
    {
      name: 'database-engine-outside-databases',
      comment:
        'which engine an instance uses is known only inside src/databases/: the rest imports src/databases/index.ts, never an engine module (postgres*, mysql*, the dump rewriter) or engine.ts itself',
      severity: 'error',
      from: { path: '^(src|screens|inventory)/', pathNot: '^src/databases/' },
      to: { path: '^src/databases/', pathNot: '^src/databases/index\\.ts$' },
    },
    {
      name: 'no-circular',
      comment: 'modules that import each other (a type-only import back is allowed: records and their rows)',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'product-imports-tests',
      comment: 'the product never imports tests, benchmarks or the lab',
      severity: 'error',
      from: { path: '^(src|inventory|screens)/' },
      to: { path: '^(test|bench|fixtures)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      extensions: ['.ts', '.tsx', '.js'],
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types'],
    },
  },
};
