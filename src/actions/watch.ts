import type { Instance } from '../../inventory/index.js';
import type { Plan, StepIO } from '../core/plan.js';
import { CommandError } from '../remote/shell.js';
import { OpsError } from '../core/errors.js';
import { shellFor, type Deps } from '../deps/deps.js';

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
const SCRIPT = [
  'cd -- "$1" || exit 2',
  'shift',
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
  'find "$tmp" -name "h.*" -exec cat -- {} +',
  'printf "\\0--meta--\\0"',
  'cat "$tmp/meta"',
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

/** Lists the instance's tree with a sha256 of every file, computed on its host. */
export async function scanTree(deps: Deps, inst: Instance, excludes: string[], signal?: AbortSignal): Promise<Listing> {
  const shell = shellFor(deps, inst);
  const argv = ['sh', '-c', SCRIPT, 'sh', inst.path, ...pruneArgs(excludes)];
  const res = await shell.exec(argv, { signal, maxBuffer: 1 << 30 });
  if (res.code !== 0) throw new CommandError(shell.label, ['find/sha256sum'], res);
  const [hashes, meta] = res.stdout.split('\0--meta--\0');
  if (meta === undefined) throw new OpsError(`unexpected output from the scan of ${inst.name}`);
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
  const listing = await scanTree(deps, inst, inst.watchExcludes ?? DEFAULT_EXCLUDES, ctx?.signal);
  deps.inv.setWatchBaseline(inst.name, [...listing]);
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
          const scan = scanTree(deps, inst, inst.watchExcludes ?? DEFAULT_EXCLUDES, ctx.signal);
          // Awaited below; meanwhile a failed read of the baseline must not leave it unhandled.
          scan.catch(() => {});
          // Read and unpacked while the host hashes, not after: a baseline of 100,000 files takes a moment.
          const base = deps.inv.getWatchBaseline<Entry>(name);
          const now = await scan;
          const files = [...now.values()].filter((e) => e.type === 'f').length;
          if (!base || opts.accept) {
            deps.inv.setWatchBaseline(name, [...now]);
            ctx.state.report = { instance: name, baselineAt: new Date().toISOString(), added: [], removed: [], changed: [], files, baselined: true };
            return;
          }
          const d = diffListings(new Map(base.entries), now);
          ctx.state.report = { instance: name, baselineAt: base.takenAt, ...d, files, baselined: false };
          deps.inv.recordWatchCheck(name, d.added.length + d.removed.length + d.changed.length);
        },
      },
    ],
    result: (s) => s.report!,
  };
}

export const watchChanged = (r: WatchReport) => r.added.length + r.removed.length + r.changed.length > 0;
