import { createHash } from 'node:crypto';
import { basename, dirname } from 'node:path';
import type { Instance } from '../../inventory/index.js';
import type { StepIO } from '../core/plan.js';
import { OpsError, UsageError } from '../core/errors.js';
import { CommandError, run } from '../remote/shell.js';
import { dbFor, shellFor, type Deps } from '../deps/deps.js';
import { runHook } from './app.js';

/**
 * Release directories (issue 13, item 1): the instance path is a symlink to one of
 * `PATH.releases/<timestamp>-<rev>`; what lives across releases (local files, --shared dirs) is in
 * `PATH.shared/` and linked into each release. Beside the path rather than under it, because the
 * path itself is what the web server serves and what every other operation reads.
 */
export const releasesDir = (path: string) => `${path}.releases`;
export const sharedDir = (path: string) => `${path}.shared`;

/** What opsdeck records beside each release (`PATH.releases/ID.json`), read by rollback. */
export interface ReleaseMeta {
  id: string;
  revision: string;
  /** When it went live (first switch to it). */
  at: string;
  /** The backup taken just before this release's migrations: the database as the release before it had it. */
  backup: string | null;
  /** sha256 of the database schema while this release was live (after its migrations). */
  schema: string | null;
  /** The release live when this one was built (its `backup` holds the database as that one ran with it). */
  from?: string;
  /** A restored release: the previous-release record before its switch, which an undo puts back. */
  previousBefore?: string | null;
}

export interface Release {
  id: string;
  meta?: ReleaseMeta;
  live: boolean;
}

/** `<timestamp>-<rev>`, or `<timestamp>-restored` for a tree a restore put back as a release. */
export const RELEASE_ID = /^\d{8}T\d{6}Z-(?:[0-9a-f]{4,40}|restored)$/;

/**
 * The top-level name a backup's code tar holds `PATH.shared/` under, beside the live release's tree
 * (`./`): one stream, so the manifest's sha256, size and file count cover the shared files too.
 */
export const SHARED_IN_TAR = '.opsdeck-shared';

/** The file beside the releases naming the release that was live before the current one (rollback's default). */
export const previousFile = (path: string) => `${releasesDir(path)}/.previous`;

/** The time a release id's stamp names, in ms. */
const stampOf = (id: string) => Date.parse(id.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-.*$/, '$1-$2-$3T$4:$5:$6Z'));

/**
 * A release id: when it was built (UTC, to the second) and the revision it holds; never one already
 * taken, and later than every taken one's stamp. Ids sort as releases were made (rollback's "the one
 * before", pruning's "the oldest"): two made within one second (a conversion and the update right
 * after it, on a fast machine) would otherwise sort by their revisions, and so would any made after
 * the host's clock went back.
 */
export function releaseId(revision: string, taken: Iterable<string>, at = Date.now()): string {
  const used = new Set(taken);
  const newest = Math.max(-Infinity, ...[...used].filter((id) => RELEASE_ID.test(id)).map(stampOf));
  for (let t = Math.max(at, newest + 1000); ; t += 1000) {
    const stamp = new Date(t)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const id = `${stamp}-${revision.slice(0, 10)}`;
    if (!used.has(id)) return id;
  }
}

/** Every path the instance keeps across releases: its local files and its shared directories. */
export function sharedPathsOf(inst: Instance): string[] {
  return [...new Set([...inst.localPaths, ...(inst.sharedPaths ?? [])])];
}

/** The link a release holds for shared path `p`: relative, so moving the parent directory keeps it right. */
export function sharedLinkTarget(inst: Instance, p: string): string {
  const depth = p.split('/').length - 1;
  return `${'../'.repeat(depth + 2)}${basename(inst.path)}.shared/${p}`;
}

export const sh = (deps: Deps, inst: Instance, script: string, args: string[], signal?: AbortSignal) => run(shellFor(deps, inst), ['sh', '-c', script, 'sh', ...args], { signal });

/**
 * The release the instance path points to now; undefined when the path is a plain directory (or,
 * unless `strict`, a link opsdeck did not make: a tree kept on another disk, say).
 */
export async function liveRelease(deps: Deps, inst: Instance, strict = true): Promise<string | undefined> {
  const res = await shellFor(deps, inst).exec(['readlink', '--', inst.path]);
  if (res.code !== 0) return undefined;
  const target = res.stdout.trim();
  const id = basename(target);
  const ours = RELEASE_ID.test(id) && target === `${basename(inst.path)}.releases/${id}`;
  if (!ours && !strict) return undefined;
  if (!ours) throw new OpsError(`${inst.path} on ${inst.host} is a link to ${target}, not to one of opsdeck's releases`, 1, `point it back at a directory in ${releasesDir(inst.path)}`);
  return id;
}

/**
 * Whether release `id` is one a restore made at or after `since` (an ISO time: when that run's
 * critical section began). Its id's stamp is when it was made, to the second.
 */
export function restoredSince(id: string, since: string): boolean {
  const stamp = since.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return RELEASE_ID.test(id) && id.endsWith('-restored') && id.slice(0, 16) >= stamp.slice(0, 16);
}

/** The releases on the host, oldest first, each with what was recorded of it. */
export async function listReleases(deps: Deps, inst: Instance): Promise<Release[]> {
  const script =
    'cd -- "$1" 2>/dev/null || exit 0; for d in *; do if [ -d "$d" ] && [ ! -L "$d" ]; then printf "D %s\\n" "$d"; fi; done; ' +
    'for f in *.json; do if [ -f "$f" ]; then printf "M %s " "${f%.json}"; tr -d "\\n" < "$f"; printf "\\n"; fi; done';
  const out = (await sh(deps, inst, script, [releasesDir(inst.path)])).stdout;
  const live = await liveRelease(deps, inst).catch(() => undefined);
  const ids: string[] = [];
  const metas = new Map<string, ReleaseMeta>();
  for (const line of out.split('\n')) {
    if (line.startsWith('D ') && RELEASE_ID.test(line.slice(2))) ids.push(line.slice(2));
    const m = /^M (\S+) (.*)$/.exec(line);
    if (m && RELEASE_ID.test(m[1])) {
      try {
        metas.set(m[1], JSON.parse(m[2]) as ReleaseMeta);
      } catch {
        // A damaged record only loses what rollback knows of that release, not the release.
      }
    }
  }
  return ids.sort().map((id) => ({ id, meta: metas.get(id), live: id === live }));
}

export async function writeReleaseMeta(deps: Deps, inst: Instance, meta: ReleaseMeta): Promise<void> {
  // A link planted under the name would make cat write through it: removed first, then written beside and renamed.
  await run(shellFor(deps, inst), ['sh', '-c', 'rm -f -- "$1.tmp" && cat > "$1.tmp" && mv -f -- "$1.tmp" "$1"', 'sh', `${releasesDir(inst.path)}/${meta.id}.json`], {
    stdin: JSON.stringify(meta) + '\n',
  });
}

/** sha256 of the instance's database schema as its engine writes it; null without a database. */
export async function schemaHash(deps: Deps, inst: Instance): Promise<string | null> {
  const db = dbFor(deps, inst);
  if (!db) return null;
  return createHash('sha256')
    .update(await db.engine.schema(shellFor(deps, inst), db))
    .digest('hex');
}

/**
 * Points the instance path at a release atomically: a new link beside it, renamed over the old one
 * (rename(2) through `mv -T`), so every request finds either the old release or the new one.
 */
export async function switchTo(deps: Deps, inst: Instance, id: string, ctx: StepIO, previous?: string | null): Promise<string | null> {
  // The release live until now is recorded as the previous one (rollback goes back to it), unless the
  // caller names what to record: an undo puts back the record it found. Written before the switch, so
  // a switch that fails leaves at worst a record naming the live release, which rollback skips.
  const res = await sh(
    deps,
    inst,
    'old=$(cat -- "$3" 2>/dev/null); if [ "$4" = keep ]; then prev=$(basename -- "$(readlink -- "$1")"); else prev=$5; fi; ' +
      'if [ -n "$prev" ]; then printf "%s\\n" "$prev" > "$3.tmp" && mv -f -- "$3.tmp" "$3" || exit 1; else rm -f -- "$3"; fi; printf "%s\\n" "$old"; ' +
      'rm -f -- "$1.opsdeck-link" && ln -s -- "$2" "$1.opsdeck-link" && mv -T -f -- "$1.opsdeck-link" "$1"',
    [inst.path, `${basename(inst.path)}.releases/${id}`, previousFile(inst.path), previous === undefined ? 'keep' : 'set', previous ?? ''],
    ctx.signal,
  );
  ctx.log(`${inst.name} now serves release ${id}`);
  return res.stdout.trim() || null;
}

/** The release recorded as live before the current one, if any. */
export async function previousRelease(deps: Deps, inst: Instance): Promise<string | undefined> {
  const res = await shellFor(deps, inst).exec(['cat', '--', previousFile(inst.path)]);
  const id = res.code === 0 ? res.stdout.trim() : '';
  return RELEASE_ID.test(id) ? id : undefined;
}

/** Shell function: true when a directory on the way from $1 down to $1/$2 (not $2's last name) is a symlink. */
export const LINKED_FN = 'linked() { r=$1; rest=$2; while :; do case $rest in */*) c2=${rest%%/*}; rest=${rest#*/}; r=$r/$c2; if [ -L "$r" ]; then return 0; fi ;; *) return 1 ;; esac; done; }; ';

/**
 * Links each shared path into a release (what git put there under that name gives way). Every path
 * is checked before any changes: a tree whose commit holds a link on the way to a shared path
 * (`config -> ../../other/config`) would have rm and ln act outside the release.
 */
export async function linkShared(deps: Deps, inst: Instance, dir: string): Promise<void> {
  const paths = sharedPathsOf(inst);
  if (!paths.length) return;
  const args = paths.flatMap((p) => [p, sharedLinkTarget(inst, p)]);
  const res = await sh(
    deps,
    inst,
    LINKED_FN +
      'd=$1; shift; n=0; for a; do n=$((n+1)); if [ $((n % 2)) = 1 ] && linked "$d" "$a"; then printf "linked %s\\n" "$a"; exit 0; fi; done; ' +
      'while [ $# -gt 0 ]; do rm -rf -- "$d/$1" && mkdir -p -- "$(dirname -- "$d/$1")" && ln -s -- "$2" "$d/$1" || exit 1; shift 2; done',
    [dir, ...args],
  );
  const linked = /^linked (.*)$/m.exec(res.stdout)?.[1];
  if (linked) {
    const comp = linked.split('/');
    throw new OpsError(
      `shared path ${linked} of ${inst.name} goes through a symbolic link in the tree (${dir}/${comp.slice(0, -1).join('/')} or a directory above it is one): linking it would change files outside the release; nothing was changed`,
      1,
      `make that directory a real one in the repository (or drop ${linked} from the instance's local/shared paths), then run again`,
    );
  }
}

/**
 * Shared paths set after the conversion are not in shared/ yet: a local file the live release holds
 * is copied there (copied, not moved: the live release keeps serving with its own), a shared
 * directory nobody has is made empty. Returns what it added, for the undo (unshare).
 */
export async function adoptShared(deps: Deps, inst: Instance, live: string): Promise<string[]> {
  const local = new Set(inst.localPaths);
  const adopted: string[] = [];
  for (const p of sharedPathsOf(inst)) {
    const res = await sh(
      deps,
      inst,
      'if [ -e "$1" ] || [ -L "$1" ]; then exit 0; fi; ' +
        'if [ -e "$2" ] && [ ! -L "$2" ]; then mkdir -p -- "$(dirname -- "$1")" && cp -a -- "$2" "$1" && echo added; ' +
        'elif [ "$3" = dir ]; then mkdir -p -- "$1" && echo added; fi',
      [`${sharedDir(inst.path)}/${p}`, `${releasesDir(inst.path)}/${live}/${p}`, local.has(p) ? 'file' : 'dir'],
    );
    if (res.stdout.includes('added')) adopted.push(p);
  }
  return adopted;
}

export async function unshare(deps: Deps, inst: Instance, paths: string[]): Promise<void> {
  if (paths.length) await run(shellFor(deps, inst), ['rm', '-rf', '--', ...paths.map((p) => `${sharedDir(inst.path)}/${p}`)]);
}

/**
 * Builds a release beside the live one: a clone of origin (objects borrowed from the live release,
 * then copied, so removing that one later breaks nothing), the revision checked out, shared paths
 * linked, the install hook run in it. Undone by removing the directory.
 */
export async function buildRelease(deps: Deps, inst: Instance, id: string, live: string, revision: string, branch: string | null, ctx: StepIO): Promise<void> {
  const shell = shellFor(deps, inst);
  const rel = releasesDir(inst.path);
  const dir = `${rel}/${id}`;
  const from = `${rel}/${live}`;
  const has = await shell.exec(['git', '-C', from, 'remote', 'get-url', 'origin']);
  if (has.code !== 0 || !has.stdout.trim()) throw new UsageError(`release ${live} of ${inst.name} has no origin repository`, `set it on the host: git -C ${from} remote add origin URL`);
  // The URL is read on the host, never put in argv: deploy URLs often carry a token, and argv is
  // logged (the command log, --verbose) and seen in ps.
  const clone = ['sh', '-c', 'exec git clone --quiet --no-checkout --reference "$1" --dissociate -- "$(git -C "$1" remote get-url origin)" "$2"', 'sh', from, dir];
  const res = await shell.exec(clone, { signal: ctx.signal });
  if (res.code !== 0) throw new CommandError(shell.label, clone, res);
  const checkout = branch ? ['git', '-C', dir, 'checkout', '--quiet', '-B', branch, revision] : ['git', '-C', dir, 'checkout', '--quiet', '--detach', revision];
  await run(shell, checkout, { signal: ctx.signal });
  await linkShared(deps, inst, dir);
  if (await runHook(deps, { ...inst, path: dir }, 'install', ctx)) ctx.log(`install hook ran in release ${id}`);
  ctx.log(`release ${id} built at ${revision.slice(0, 10)}`);
}

export async function removeRelease(deps: Deps, inst: Instance, id: string): Promise<void> {
  if (!RELEASE_ID.test(id)) throw new OpsError(`not a release id: ${id}`);
  const dir = `${releasesDir(inst.path)}/${id}`;
  await run(shellFor(deps, inst), ['rm', '-rf', '--', dir, `${dir}.json`]);
}

/**
 * Keeps the newest `keep` releases, and always the live one and the one live before it (what a plain
 * rollback goes back to, however old); returns the ids removed.
 */
export async function pruneReleases(deps: Deps, inst: Instance, keep: number, ctx: StepIO): Promise<string[]> {
  const all = await listReleases(deps, inst);
  const previous = await previousRelease(deps, inst);
  const old = all.filter((r) => !r.live && r.id !== previous).slice(0, Math.max(0, all.length - keep));
  for (const r of old) await removeRelease(deps, inst, r.id);
  if (old.length) ctx.log(`older releases removed (keeping ${keep}): ${old.map((r) => r.id).join(', ')}`);
  return old.map((r) => r.id);
}

/** The reload hook (PHP-FPM, opcache) after a switch; nothing when the instance has none. */
export async function reload(deps: Deps, inst: Instance, ctx: StepIO): Promise<void> {
  if (!(await runHook(deps, inst, 'reload', ctx))) ctx.log('no reload hook');
}

/** A sed regex matching `s` literally (GNU basic regular expressions; `,` is the delimiter used). */
const literal = (s: string) => s.replace(/[.[*^$\\,]/g, '\\$&');

/**
 * The tar of an instance's code as its backups store it: the tree at the path and, in release mode,
 * `PATH.shared/` under SHARED_IN_TAR (the live release alone holds only links into it). `out` is
 * where tar writes (`-` for stdout). Owners as numbers: a restore as root gives back exactly these.
 */
export function codeTarArgv(path: string, withShared: boolean, out = '-'): string[] {
  const argv = ['tar', '--numeric-owner', '-C', path, '-cf', out, '.'];
  if (!withShared) return argv;
  const shared = basename(sharedDir(path));
  // Named without ./ (unlike the tree's members), so the anchored rename touches only them; S: link targets stay.
  return [...argv, '-C', dirname(path), `--transform=s,^${literal(shared)},./${SHARED_IN_TAR},S`, shared];
}

/**
 * Whether the instance is in release mode on the host with a shared/ directory its backups must hold.
 * Refuses a tree with its own SHARED_IN_TAR entry (a git commit can add a link named so): a restore
 * would take it for the backup's shared/ and follow it out of the instance.
 */
export async function hasSharedDir(deps: Deps, inst: Instance, signal?: AbortSignal): Promise<boolean> {
  // One round trip: every backup asks.
  const res = await shellFor(deps, inst).exec(
    ['sh', '-c', 'if [ -e "$1/$3" ] || [ -L "$1/$3" ]; then echo own; exit 3; fi; t=$(readlink -- "$1") && [ -d "$2" ] && printf "%s" "$t"', 'sh', inst.path, sharedDir(inst.path), SHARED_IN_TAR],
    { signal },
  );
  if (res.code === 3 && res.stdout.trim() === 'own')
    throw new UsageError(
      `${inst.path}/${SHARED_IN_TAR} on ${inst.host} is in ${inst.name}'s tree: opsdeck's backups use that name for shared/, so a restore would take it for shared files`,
      `remove it from the tree (and from the repository, if a commit added it), then back up again`,
    );
  const target = res.code === 0 ? res.stdout : '';
  return RELEASE_ID.test(basename(target)) && target === `${basename(inst.path)}.releases/${basename(target)}`;
}

/**
 * A tree unpacked from a release-mode instance's backup (or copied live from one) onto an instance in
 * place: each of the source's shared paths the tree holds as a link (or not at all) gets the shared
 * content instead, and SHARED_IN_TAR goes. Without this the copy keeps links into the source's
 * shared/ (`../../src.shared/...`), which resolve to nothing, or to another instance's files.
 * Returns the paths filled in.
 */
export async function materializeShared(deps: Deps, target: Instance, dir: string, sourcePaths: string[], withShared: boolean): Promise<string[]> {
  // Only a tar that holds shared/ (its manifest says so) has one: anything else by that name is the tree's own.
  if (!withShared) return [];
  const res = await sh(
    deps,
    target,
    'd=$1; s=$1/' +
      SHARED_IN_TAR +
      // A link by that name is never shared/: following it would take another directory's files.
      '; shift; { [ -d "$s" ] && ! [ -L "$s" ]; } || exit 0; ' +
      // A path with a link on the way (config -> /etc) is not followed out of the tree.
      'linked() { r=$1; rest=$2; while :; do case $rest in */*) c=${rest%%/*}; rest=${rest#*/}; r=$r/$c; if [ -L "$r" ]; then return 0; fi ;; *) return 1 ;; esac; done; }; ' +
      'for p; do if linked "$d" "$p" || linked "$s" "$p"; then continue; fi; ' +
      'if { [ -e "$s/$p" ] || [ -L "$s/$p" ]; } && { [ -L "$d/$p" ] || ! [ -e "$d/$p" ]; }; then rm -f -- "$d/$p" && mkdir -p -- "$(dirname -- "$d/$p")" && mv -T -- "$s/$p" "$d/$p" && printf "%s\\n" "$p" || exit 1; fi; done; ' +
      'rm -rf -- "$s"',
    [dir, ...sourcePaths],
  );
  return res.stdout.split('\n').filter(Boolean);
}
