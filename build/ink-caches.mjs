// An esbuild plugin for the console's bundle: Ink 6 works out every frame from scratch, and most of a
// frame's time goes to measuring and cutting the same lines again (string-width runs the Unicode
// segmenter over any line that is not plain ASCII: rules, sparklines, ellipses; Ink's per-frame
// caches start empty each frame). Frames repeat most of their lines, so:
//  - string-width answers lines of ASCII, rules, blocks, dashes and arrows by their length (each of
//    those characters is one column: checked against the real module at each build), the rest from a
//    bounded cache; slice-ansi from a bounded cache too (both are pure functions of their arguments);
//  - Ink's per-frame OutputCaches (line widths and a line's styled characters, also pure) live across
//    frames, renewed when they grow large;
//  - a frame's rows are made from the writes that land on each (x and line, clipped and transformed, in
//    order): a row whose writes are those of a row made before is that row's string again, not 160
//    cells filled and turned back into a string (a key changes a few of 50 rows); a row that is made
//    starts from one shared blank cell, not 160 new ones (cells are replaced, never changed);
//  - a line that fits its clip whole is not cut (slice-ansi of the whole line gives the same characters
//    in the same styles, at the price of tokenizing it twice);
//  - ansi-tokenize splits such lines into characters by code unit instead of by the grapheme segmenter
//    (each of those characters is a grapheme of its own: checked at each build), characters of one
//    style share one styles array, a character's cell is written out, not spread from its token, and
//    turning a row back into a string skips the comparison of two neighbours whose styles are the same
//    (most of a row): the same string, without three Sets per cell;
//  - the grapheme segmenters (whose first use loads ICU's break rules, ~25 ms) are made on first use,
//    not when the modules load: the first frame, made of such characters, needs none;
//  - Yoga's WebAssembly, inlined as a data: URL, is decoded directly instead of through fetch(), whose
//    first call loads Node's whole HTTP client (undici) before the first frame.
// A pattern that is not found fails the build: a newer Ink, Yoga or tokenizer must be looked at again,
// not silently slow.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const LIMIT = 8192;
/** Finished rows kept (a 160x50 frame's rows 40 times over). */
const ROWS_LIMIT = 2048;

/** Characters one column wide each that string-width would segment: middle dot, dashes and dots, arrows, box drawing, blocks, the run view's ticks. */
const NARROW = [
  [0x20, 0x7e],
  [0xb7, 0xb7],
  [0x2010, 0x2027],
  [0x2190, 0x2193],
  [0x21ba, 0x21ba],
  [0x2500, 0x259f],
  [0x25b8, 0x25b8],
  [0x2713, 0x2713],
  [0x2717, 0x2717],
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
const SLICE_FROM = 'return sliceAnsi(line, from, to);';
// A frame starts as a grid of blank cells that its writes then fill: instead each row starts as the list
// of the writes that land on it (x, line: what Ink would put there, in order), made into cells and a
// string at the end (finishedRow), only when no row with the same writes was made before.
const GRID_FROM = `const row = [];
            for (let x = 0; x < this.width; x++) {
                row.push({
                    type: 'char',
                    value: ' ',
                    fullWidth: false,
                    styles: [],
                });
            }
            output.push(row);`;
const GRID_TO = 'output.push([]);';
// Ink's own placing of a line's characters, moved into finishedRow (this.caches becomes its argument).
const PLACE = `const characters = CACHES.getStyledChars(line);
                    let offsetX = x;
                    for (const character of characters) {
                        currentLine[offsetX] = character;
                        // Determine printed width using string-width to align with measurement
                        const characterWidth = Math.max(1, CACHES.getStringWidth(character.value));
                        // For multi-column characters, clear following cells to avoid stray spaces/artifacts
                        if (characterWidth > 1) {
                            for (let index = 1; index < characterWidth; index++) {
                                currentLine[offsetX + index] = {
                                    type: 'char',
                                    value: '',
                                    fullWidth: false,
                                    styles: character.styles,
                                };
                            }
                        }
                        offsetX += characterWidth;
                    }`;
const PLACE_FROM = PLACE.replaceAll('CACHES', 'this.caches');
const PLACE_TO = 'currentLine.push(x, line);';
const ROWS_FROM = `const generatedOutput = output
            .map(line => {
            // See https://github.com/vadimdemedes/ink/pull/564#issuecomment-1637022742
            const lineWithoutEmptyItems = line.filter(item => item !== undefined);
            return styledCharsToString(lineWithoutEmptyItems).trimEnd();
        })
            .join('\\n');`;
const ROWS_TO = "const generatedOutput = output.map((writes) => finishedRow(this.caches, this.width, writes)).join('\\n');";
const SLICE_TO = 'return from === 0 && to >= width ? line : sliceAnsi(line, from, to);';
const OUTPUT_TO = 'caches = sharedOutputCaches();';
const OUTPUT_SHARED = `
const BLANK_CELL = Object.freeze({ type: 'char', value: ' ', fullWidth: false, styles: Object.freeze([]) });
let sharedCaches;
function sharedOutputCaches() {
  if (!sharedCaches || sharedCaches.styledChars.size + sharedCaches.widths.size + sharedCaches.blockWidths.size > ${LIMIT * 2}) sharedCaches = new OutputCaches();
  return sharedCaches;
}
// A row's string by the frame's width and the row's writes (x, line, x, line...); the length before each
// line keeps two different lists from making the same key.
const finishedRows = new Map();
function finishedRow(caches, width, writes) {
  if (writes.length === 0) return '';
  let key = String(width);
  for (let i = 0; i < writes.length; i += 2) key += '|' + writes[i] + ',' + writes[i + 1].length + ',' + writes[i + 1];
  let done = finishedRows.get(key);
  if (done !== undefined) return done;
  const currentLine = [];
  for (let x = 0; x < width; x++) currentLine.push(BLANK_CELL);
  for (let i = 0; i < writes.length; i += 2) {
    const x = writes[i];
    const line = writes[i + 1];
    ${PLACE.replaceAll('CACHES', 'caches')}
  }
  // See https://github.com/vadimdemedes/ink/pull/564#issuecomment-1637022742
  done = styledCharsToString(currentLine.filter((item) => item !== undefined)).trimEnd();
  if (finishedRows.size >= ${ROWS_LIMIT}) finishedRows.clear();
  finishedRows.set(key, done);
  return done;
}
`;

/** Each [from, to] replaced once in a module's text; one that is not there fails the build. */
function patch(path, text, pairs) {
  for (const [from, to] of pairs) {
    if (!text.includes(from)) throw new Error(`build/ink-caches.mjs: ${path} no longer has "${from}": look at it again`);
    text = text.replace(from, to);
  }
  return text;
}

/** A segmenter made on its first use (only segment() is called on these). */
const lazySegmenter = (name, args) => `let ${name}Made; const ${name} = { segment: (s) => (${name}Made ??= new Intl.Segmenter(${args})).segment(s) };`;

// ansi-tokenize's tokenize, for a line of one-column characters that are each a grapheme of their own
// and escape sequences: the same tokens, by code unit. The escape handling is the original's.
const TOKENIZE_FAST = `
const ONE_COLUMN = /^[\\u001b${narrowClass}]*$/u;
export function tokenize(str, endChar = Number.POSITIVE_INFINITY) {
    if (!ONE_COLUMN.test(str)) return tokenizeSegmented(str, endChar);
    const ret = [];
    let visible = 0;
    for (let index = 0; index < str.length; index++) {
        const segment = str[index];
        if (segment === "\\x1b") {
            let code;
            const nextCodePoint = str.codePointAt(index + 1);
            if (nextCodePoint === OSC) {
                code = parseLinkCode(str, index);
                if (code) ret.push({ type: "ansi", code: code, endCode: getEndCode(code) });
            }
            else if (nextCodePoint === CSI) {
                code = parseSGRSequence(str, index);
                if (code) for (const individualCode of splitCompoundSGRSequences(code)) ret.push({ type: "ansi", code: individualCode, endCode: getEndCode(individualCode) });
            }
            if (code) {
                index += code.length - 1;
                continue;
            }
        }
        ret.push({ type: "char", value: segment, fullWidth: false });
        visible += 1;
        if (visible >= endChar) break;
    }
    return ret;
}
`;

const SAME_STYLES = `
/** Whether two reduced style lists are the same codes (their diff is then empty). */
function sameStyles(a, b) {
    if (a === b) return true;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i].code !== b[i].code || a[i].endCode !== b[i].endCode) return false;
    return true;
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
    b.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      return { contents: patch(args.path, text, [['const segmenter = new Intl.Segmenter();', lazySegmenter('segmenter', '')]]), loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]slice-ansi[\\/]tokenize-ansi\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const from = "const GRAPHEME_SEGMENTER = new Intl.Segmenter(undefined, {granularity: 'grapheme'});";
      return { contents: patch(args.path, text, [[from, lazySegmenter('GRAPHEME_SEGMENTER', "undefined, {granularity: 'grapheme'}")]]), loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]@alcalzone[\\/]ansi-tokenize[\\/]build[\\/]tokenize\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const real = await import(pathToFileURL(args.path).href);
      for (const [a, z] of NARROW)
        for (let c = a; c <= z; c++) {
          const ch = String.fromCodePoint(c);
          const t = real.tokenize(`${ch}${ch}x`);
          if (t.length !== 3 || t.some((x) => x.type !== 'char' || x.fullWidth || x.value.length !== 1))
            throw new Error(`build/ink-caches.mjs: ansi-tokenize does not take U+${c.toString(16)} as a one-column grapheme of its own: take it out of NARROW`);
        }
      const contents = patch(args.path, text, [
        ['const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });', lazySegmenter('segmenter', 'undefined, { granularity: "grapheme" }')],
        ['export function tokenize(str, endChar = Number.POSITIVE_INFINITY) {', 'function tokenizeSegmented(str, endChar = Number.POSITIVE_INFINITY) {'],
      ]);
      return { contents: contents + TOKENIZE_FAST, loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]@alcalzone[\\/]ansi-tokenize[\\/]build[\\/]styledChars\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      // A character's cell is written out instead of spread from its token ({...token, styles}: V8's slow
      // path, ~1.5 us a character, most of a new row's time): the tokens must have those fields only.
      const { tokenize } = await import(pathToFileURL(join(dirname(args.path), 'tokenize.js')).href);
      for (const t of tokenize('a\u6f22\u{1f600}e\u0301\u001b[31m\u2500\u001b[39m'))
        if (t.type === 'char' && Object.keys(t).join() !== 'type,value,fullWidth')
          throw new Error(`build/ink-caches.mjs: ansi-tokenize's characters are now {${Object.keys(t)}}: look at styledCharsFromTokens again`);
      const contents = patch(args.path, text, [
        ['...token,', 'type: token.type, value: token.value, fullWidth: token.fullWidth,'],
        ['let codes = [];', 'let codes = [];\n    let shared;'],
        ['codes = reduceAnsiCodesIncremental(codes, [token]);', 'codes = reduceAnsiCodesIncremental(codes, [token]);\n            shared = undefined;'],
        ['styles: [...codes],', 'styles: (shared ??= [...codes]),'],
        [
          'ret += ansiCodesToString(diffAnsiCodes(chars[i - 1].styles, char.styles));',
          'if (!sameStyles(chars[i - 1].styles, char.styles)) ret += ansiCodesToString(diffAnsiCodes(chars[i - 1].styles, char.styles));',
        ],
        ['ret += ansiCodesToString(diffAnsiCodes(char.styles, []));', 'if (char.styles.length) ret += ansiCodesToString(diffAnsiCodes(char.styles, []));'],
      ]);
      return { contents: contents + SAME_STYLES, loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]yoga-layout[\\/]dist[\\/]binaries[\\/]yoga-wasm-base64-esm\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(NO_FETCH_FROM)) throw new Error(`build/ink-caches.mjs: ${args.path} no longer has '${NO_FETCH_FROM}': look at how Yoga loads its WebAssembly again`);
      return { contents: text.replaceAll(NO_FETCH_FROM, 'true'), loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]ink[\\/]build[\\/]output\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const contents = patch(args.path, text, [
        [OUTPUT_FROM, OUTPUT_TO],
        [SLICE_FROM, SLICE_TO],
        [GRID_FROM, GRID_TO],
        [PLACE_FROM, PLACE_TO],
        [ROWS_FROM, ROWS_TO],
      ]);
      return { contents: contents + OUTPUT_SHARED, loader: 'js' };
    });
  },
};
