import type { Instance } from '../../inventory/index.js';
import type { Plan, StepIO } from '../core/plan.js';
import { CommandError } from '../remote/shell.js';
import { OpsError } from '../core/errors.js';
import { shellFor, type Deps } from '../deps/deps.js';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';

/** One entry of a tree: type (f file, l symlink, d directory), mode, size, and sha256 or link target. */
export interface Entry {
  type: string;
  mode: string;
  size: number;
  /** sha256 of a file, target of a link, '' for a directory. */
  sum: string;
}
export type Listing = Map<string, Entry>;

/** Excluded when an instance sets none: caches, temp files, uploads, logs, the maintenance page. */
export const DEFAULT_EXCLUDES = ['cache', 'tmp', 'temp', 'uploads', 'sessions', '*.log', 'maintenance.html'];

// The sha256 of every regular file, a separator, then the metadata of every entry (type, mode,
// size; link targets): all NUL-terminated, so no file name can break the framing. One walk of the
// tree writes the metadata (-fprintf, one file shared by the three) and hands the file names round-
// robin to one sha256sum worker per core of the host (GNU split; plain xargs where split lacks
// --filter). Each worker writes a file of its own: workers sharing one pipe would interleave
// mid-record. One round trip, everything computed on the host.
// The host prints the sha256 of that listing first, and the listing itself only when that differs
// from the one given ($2, the baseline's): an unchanged tree of 100,000 files then costs the jump box
// one line instead of 10 MB to receive and parse. Its order is fixed for an unchanged tree (find's
// walk, split's round robin, the workers' files in name order), so the same tree gives the same bytes.
const SCRIPT = [
  'cd -- "$1" || exit 2',
  'known=$2',
  'shift 2',
  'tmp=$(mktemp -d) || exit 5',
  'trap \'rm -rf "$tmp"\' EXIT',
  'n=$(nproc 2>/dev/null) || n=1',
  'if [ "$n" -gt 1 ] && split --help 2>/dev/null | grep -q -e --filter; then',
  '  hash() { split -t "\\0" -n "r/$n" --filter=\'exec xargs -0 -r sha256sum -z > "$FILE"\' - "$tmp/h."; }',
  'else',
  '  hash() { xargs -0 -r sha256sum -z > "$tmp/h.0"; }',
  'fi',
  // "$@" is the prune expression built from the excludes (find operands, never evaluated by sh).
  '{ find . \\( "$@" \\) -prune -o \\( -type f -fprintf "$tmp/meta" "f %m %s %P\\0" -print0 -o -type l -fprintf "$tmp/meta" "l %m %s %P\\0%l\\0" -o -type d -fprintf "$tmp/meta" "d %m 0 %P\\0" \\) || echo failed > "$tmp/err"; } | hash || exit 4',
  'if [ -e "$tmp/err" ]; then exit 3; fi',
  'listing() {',
  '  for f in "$tmp"/h.*; do if [ -e "$f" ]; then cat -- "$f" || return 1; fi; done',
  '  printf "\\0--meta--\\0"',
  '  cat -- "$tmp/meta"',
  '}',
  'sum=$(listing | sha256sum) || exit 6',
  'sum=${sum%% *}',
  'echo "$sum"',
  'if [ "$sum" != "$known" ]; then listing || exit 6; fi',
].join('\n');

function pruneArgs(excludes: string[]): string[] {
  const args: string[] = [];
  for (const [i, ex] of excludes.entries()) {
    if (i) args.push('-o');
    // A pattern with a slash is a path from the instance root; without, a name anywhere.
    if (ex.includes('/')) args.push('-path', `./${ex.replace(/^\.?\//, '')}`);
    else args.push('-name', ex);
  }
  return args.length ? args : ['-false'];
}

/** A scan as the host sent it: the listing's sha256, and the listing unless it was the one known. */
interface RawScan {
  digest: string;
  /** The listing's bytes; undefined when its digest was the one given (the host sent no more). */
  raw?: Buffer;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Runs the scan on the instance's host; `known` is the digest whose listing need not be sent. */
async function scanRaw(deps: Deps, inst: Instance, excludes: string[], known: string, signal?: AbortSignal): Promise<RawScan> {
  const shell = shellFor(deps, inst);
  const argv = ['sh', '-c', SCRIPT, 'sh', inst.path, known, ...pruneArgs(excludes)];
  // Kept as the bytes that came: the digest is of those, and they are what the baseline stores.
  const chunks: Buffer[] = [];
  let size = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      chunks.push(chunk);
      cb(size > 1 << 30 ? new OpsError(`the scan of ${inst.name} sent more than 1 GiB`) : null);
    },
  });
  const res = await shell.exec(argv, { signal, stdout: sink });
  if (res.code !== 0) throw new CommandError(shell.label, ['find/sha256sum'], res);
  const out = Buffer.concat(chunks, size);
  const digest = out.toString('latin1', 0, 64);
  if (!/^[0-9a-f]{64}$/.test(digest) || out[64] !== 0x0a) throw new OpsError(`unexpected output from the scan of ${inst.name}`);
  if (out.length === 65) {
    if (digest !== known) throw new OpsError(`unexpected output from the scan of ${inst.name}: no listing`);
    return { digest };
  }
  const raw = out.subarray(65);
  // The digest stored with a baseline must be of the bytes stored: checked here, not taken on trust.
  if (sha256(raw) !== digest) throw new OpsError(`the scan of ${inst.name} sent a listing that does not match its sha256`);
  return { digest, raw };
}

/** The host's listing as entries by path. */
function parseListing(raw: Buffer, what: string): Listing {
  const [hashes, meta] = raw.toString('utf8').split('\0--meta--\0');
  if (meta === undefined) throw new OpsError(`unexpected output from the scan of ${what}`);
  const out: Listing = new Map();
  const parts = meta.split('\0');
  for (let i = 0; i < parts.length; i++) {
    const rec = parts[i];
    if (!rec) continue;
    // "T MODE SIZE PATH", read by hand: a regular expression per entry costs a noticeable part of
    // a 100,000-file scan on the jump box.
    const type = rec[0];
    const a = rec.indexOf(' ', 2);
    const b = a < 0 ? -1 : rec.indexOf(' ', a + 1);
    if ((type !== 'f' && type !== 'l' && type !== 'd') || rec[1] !== ' ' || b < 0) continue;
    const path = rec.slice(b + 1);
    const target = type === 'l' ? parts[++i] : '';
    if (path === '') continue; // the instance directory itself
    out.set(path, { type, mode: rec.slice(2, a), size: Number(rec.slice(a + 1, b)), sum: target });
  }
  for (const line of hashes.split('\0')) {
    if (!line) continue;
    // "<64 hex>  ./path"
    const sum = line.slice(0, 64);
    const path = line.startsWith('./', 66) ? line.slice(68) : line.slice(66);
    const e = out.get(path);
    if (e) e.sum = sum;
  }
  return out;
}

const countFiles = (l: Listing) => {
  let n = 0;
  for (const e of l.values()) if (e.type === 'f') n++;
  return n;
};

/** Lists the instance's tree with a sha256 of every file, computed on its host. */
export async function scanTree(deps: Deps, inst: Instance, excludes: string[], signal?: AbortSignal): Promise<Listing> {
  const { raw } = await scanRaw(deps, inst, excludes, '', signal);
  return parseListing(raw!, inst.name);
}

// A stored baseline: this line, a JSON line (the listing's sha256, its count of files), then the
// host's listing as it came, gzipped. Baselines from before it are a gzipped JSON array of entries.
const BASELINE_MAGIC = 'opsdeck watch baseline 2\n';

interface Baseline {
  /** The sha256 of the stored listing; null for a baseline of the older form (no listing kept). */
  digest: string | null;
  files: number;
  listing(): Listing;
}

function encodeBaseline(scan: { digest: string; raw: Buffer }, files: number): Buffer {
  return Buffer.concat([Buffer.from(`${BASELINE_MAGIC}${JSON.stringify({ digest: scan.digest, files })}\n`), gzipSync(scan.raw)]);
}

function decodeBaseline(stored: Uint8Array, what: string): Baseline {
  // A team inventory's rows come from its worker thread, where a Buffer arrives as a plain Uint8Array.
  const data = Buffer.isBuffer(stored) ? stored : Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  // A roomy output chunk: with zlib's 16 KiB default, unpacking 10 MB costs several times more.
  const gunzip = (b: Buffer) => gunzipSync(b, { chunkSize: Math.min(64 << 20, Math.max(64 << 10, b.length * 4)) });
  if (data.subarray(0, BASELINE_MAGIC.length).toString('latin1') !== BASELINE_MAGIC) {
    const listing: Listing = new Map(JSON.parse(gunzip(data).toString('utf8')) as [string, Entry][]);
    return { digest: null, files: countFiles(listing), listing: () => listing };
  }
  const nl = data.indexOf(0x0a, BASELINE_MAGIC.length);
  const head = JSON.parse(data.toString('utf8', BASELINE_MAGIC.length, nl)) as { digest: string; files: number };
  return { digest: head.digest, files: head.files, listing: () => parseListing(gunzip(data.subarray(nl + 1)), what) };
}

export interface WatchReport {
  instance: string;
  baselineAt: string | null;
  added: string[];
  removed: string[];
  changed: { path: string; what: string[] }[];
  files: number;
  /** True when this run recorded the baseline (first run, or --accept). */
  baselined: boolean;
}

export function diffListings(before: Listing, after: Listing): Pick<WatchReport, 'added' | 'removed' | 'changed'> {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: { path: string; what: string[] }[] = [];
  for (const [p, a] of after) {
    const b = before.get(p);
    if (!b) {
      added.push(p);
      continue;
    }
    const what: string[] = [];
    if (a.type !== b.type) what.push(`type ${b.type} -> ${a.type}`);
    else if (a.sum !== b.sum) what.push(a.type === 'l' ? `link ${b.sum} -> ${a.sum}` : 'content');
    if (a.mode !== b.mode) what.push(`mode ${b.mode} -> ${a.mode}`);
    if (what.length) changed.push({ path: p, what });
  }
  for (const p of before.keys()) if (!after.has(p)) removed.push(p);
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort((x, y) => x.path.localeCompare(y.path)) };
}

/** Records the tree as the instance's watch baseline. Used by watch and after opsdeck's own changes. */
export async function rebaseline(deps: Deps, inst: Instance, ctx?: StepIO): Promise<number> {
  const scan = await scanRaw(deps, inst, inst.watchExcludes ?? DEFAULT_EXCLUDES, '', ctx?.signal);
  const listing = parseListing(scan.raw!, inst.name);
  deps.inv.setWatchBaseline(inst.name, encodeBaseline({ digest: scan.digest, raw: scan.raw! }, countFiles(listing)));
  ctx?.log(`watch baseline recorded: ${listing.size} entries`);
  return listing.size;
}

/** A final step for plans that change an instance: its own changes are never reported as intrusions. */
export function rebaselineStep<S>(deps: Deps, name: string): Plan<S>['steps'][number] {
  return {
    name: 'rebaseline',
    title: 'Record the new file baseline for watch',
    explain: 'Only when the instance is watched: opsdeck changed its files, so the new tree is the new baseline.',
    run: async (ctx) => {
      const inst = deps.inv.requireInstance(name);
      if (deps.inv.hasWatchBaseline(name)) await rebaseline(deps, inst, ctx);
    },
  };
}

export function watchPlan(deps: Deps, name: string, opts: { accept?: boolean } = {}): Plan<{ report?: WatchReport }, WatchReport> {
  const inst = deps.inv.requireInstance(name);
  return {
    command: 'watch',
    params: { instance: name, accept: !!opts.accept },
    instance: name,
    state: {},
    steps: [
      {
        name: 'scan',
        title: `Hash every file of ${name} on ${inst.host} and compare with the baseline`,
        run: async (ctx) => {
          const row = opts.accept ? undefined : deps.inv.getWatchBaseline(name);
          const base = row && decodeBaseline(row.data, `the baseline of ${name}`);
          const scan = await scanRaw(deps, inst, inst.watchExcludes ?? DEFAULT_EXCLUDES, base?.digest ?? '', ctx.signal);
          if (row && base && !scan.raw) {
            // The host's listing has the stored one's sha256: the same bytes, so nothing changed.
            ctx.state.report = { instance: name, baselineAt: row.takenAt, added: [], removed: [], changed: [], files: base.files, baselined: false };
            deps.inv.recordWatchCheck(name, 0);
            return;
          }
          const raw = scan.raw!;
          const now = parseListing(raw, name);
          const files = countFiles(now);
          const stored = encodeBaseline({ digest: scan.digest, raw }, files);
          if (!row || !base) {
            deps.inv.setWatchBaseline(name, stored);
            ctx.state.report = { instance: name, baselineAt: new Date().toISOString(), added: [], removed: [], changed: [], files, baselined: true };
            return;
          }
          const d = diffListings(base.listing(), now);
          const changes = d.added.length + d.removed.length + d.changed.length;
          ctx.state.report = { instance: name, baselineAt: row.takenAt, ...d, files, baselined: false };
          // The same entries in other bytes (a baseline of the older form; the host's core count, so
          // its order, changed): stored again, as of when it was taken, so the next check is one line.
          if (changes === 0) deps.inv.setWatchBaseline(name, stored, row.takenAt);
          else deps.inv.recordWatchCheck(name, changes);
        },
      },
    ],
    result: (s) => s.report!,
  };
}

export const watchChanged = (r: WatchReport) => r.added.length + r.removed.length + r.changed.length > 0;
