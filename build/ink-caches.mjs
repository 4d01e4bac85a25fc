// An esbuild plugin for the console's bundle: Ink 6 works out every frame from scratch, and most of a
// frame's time goes to measuring and cutting the same lines again (string-width runs the Unicode
// segmenter over any line that is not plain ASCII: rules, sparklines, ellipses; Ink's per-frame
// caches start empty each frame). Frames repeat most of their lines, so:
//  - string-width answers lines of ASCII, rules, blocks and dashes by their length (each of those
//    characters is one column: checked against the real module at each build), the rest from a
//    bounded cache; slice-ansi from a bounded cache too (both are pure functions of their arguments);
//  - Ink's per-frame OutputCaches (line widths and a line's styled characters, also pure) live across
//    frames, renewed when they grow large;
//  - Yoga's WebAssembly, inlined as a data: URL, is decoded directly instead of through fetch(), whose
//    first call loads Node's whole HTTP client (undici) before the first frame.
// A pattern that is not found fails the build: a newer Ink or Yoga must be looked at again, not
// silently slow.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

const LIMIT = 8192;

/** Characters one column wide each that string-width would segment: middle dot, dashes and dots, box drawing, blocks. */
const NARROW = [
  [0x20, 0x7e],
  [0xb7, 0xb7],
  [0x2010, 0x2027],
  [0x2500, 0x259f],
];
const narrowClass = NARROW.map(([a, b]) => (a === b ? `\\u{${a.toString(16)}}` : `\\u{${a.toString(16)}}-\\u{${b.toString(16)}}`)).join('');

const memo = (key, fast = '') => `
const cache = new Map();
export default function memoized(...args) {${fast}
  const k = ${key};
  if (k === undefined) return real(...args);
  let v = cache.get(k);
  if (v === undefined) {
    if (cache.size >= ${LIMIT}) cache.clear();
    v = real(...args);
    cache.set(k, v);
  }
  return v;
}`;

const WRAPPED = {
  // Options change the answer: those calls (rare) go straight through.
  'string-width': memo(
    "args.length === 1 && typeof args[0] === 'string' ? args[0] : undefined",
    // Colours (SGR sequences, which nested <Text color> leave in a line) take no columns.
    `
  if (args.length === 1 && typeof args[0] === 'string') {
    const plain = args[0].includes('\\u001b') ? args[0].replace(/\\u001b\\[[0-9;]*m/g, '') : args[0];
    if (/^[${narrowClass}]*$/u.test(plain)) return plain.length;
  }`,
  ),
  'slice-ansi': memo("typeof args[0] === 'string' && args.length <= 3 ? `${args[1]}:${args[2]}:${args[0]}` : undefined"),
};

const OUTPUT_FROM = 'caches = new OutputCaches();';
const OUTPUT_TO = 'caches = sharedOutputCaches();';
const OUTPUT_SHARED = `
let sharedCaches;
function sharedOutputCaches() {
  if (!sharedCaches || sharedCaches.styledChars.size + sharedCaches.widths.size + sharedCaches.blockWidths.size > ${LIMIT * 2}) sharedCaches = new OutputCaches();
  return sharedCaches;
}
`;

/** Yoga's loader uses fetch() when there is one, also for its data: URL. */
const NO_FETCH_FROM = '"function"!=typeof fetch';

export const inkCaches = {
  name: 'ink-caches',
  setup(b) {
    b.onResolve({ filter: /^(string-width|slice-ansi)$/ }, async (args) => {
      // The real module, as the importer would have found it (packages may pin other versions).
      if (args.pluginData?.inner) return undefined;
      const r = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, pluginData: { inner: true } });
      if (r.errors.length) return { errors: r.errors };
      return { path: r.path, namespace: 'memo', pluginData: { name: args.path } };
    });
    b.onLoad({ filter: /.*/, namespace: 'memo' }, async (args) => {
      if (args.pluginData.name === 'string-width') {
        const real = (await import(pathToFileURL(args.path).href)).default;
        for (const [a, z] of NARROW)
          for (let c = a; c <= z; c++) {
            const w = real(String.fromCodePoint(c));
            if (w !== 1) throw new Error(`build/ink-caches.mjs: ${args.path} says U+${c.toString(16)} is ${w} columns wide: take it out of NARROW`);
          }
      }
      return { contents: `import real from ${JSON.stringify(args.path)};\n${WRAPPED[args.pluginData.name]}`, resolveDir: dirname(args.path), loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]yoga-layout[\\/]dist[\\/]binaries[\\/]yoga-wasm-base64-esm\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(NO_FETCH_FROM)) throw new Error(`build/ink-caches.mjs: ${args.path} no longer has '${NO_FETCH_FROM}': look at how Yoga loads its WebAssembly again`);
      return { contents: text.replaceAll(NO_FETCH_FROM, 'true'), loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]ink[\\/]build[\\/]output\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(OUTPUT_FROM)) throw new Error(`build/ink-caches.mjs: ${args.path} no longer has "${OUTPUT_FROM}": look at Ink's output caches again`);
      return { contents: text.replace(OUTPUT_FROM, OUTPUT_TO) + OUTPUT_SHARED, loader: 'js' };
    });
  },
};
