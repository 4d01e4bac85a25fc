import { createHash } from 'node:crypto';
import { basename, dirname } from 'node:path';
import type { Instance } from '../../inventory/index.js';
import type { StepIO } from '../core/plan.js';
import { OpsError, UsageError } from '../core/errors.js';
import { CommandError, run } from '../remote/shell.js';
import { dbFor, shellFor, type Deps } from '../deps/deps.js';
import { MAINTENANCE_FILE, runHook } from './app.js';

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

/** A release id: when it was built (UTC, to the second) and the revision it holds; never one already taken. */
export function releaseId(revision: string, taken: Iterable<string>, at = Date.now()): string {
  const used = new Set(taken);
  for (let t = at; ; t += 1000) {
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
const LINKED_FN = 'linked() { r=$1; rest=$2; while :; do case $rest in */*) c2=${rest%%/*}; rest=${rest#*/}; r=$r/$c2; if [ -L "$r" ]; then return 0; fi ;; *) return 1 ;; esac; done; }; ';

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

/** Where a restore as release ID builds the incoming shared/, and where it keeps the one it replaces until the run is done. */
export const incomingShared = (path: string, id: string) => `${sharedDir(path)}.opsdeck-incoming-${id}`;
export const previousShared = (path: string, id: string) => `${sharedDir(path)}.opsdeck-previous-${id}`;

/** What a restore onto a release-mode instance did, for its undo and its cleanup. */
export interface RestoredRelease {
  live: string;
  id?: string;
  /** Where shared/ as it was waits until the run is done (undefined: shared/ was not replaced). */
  oldShared?: string;
  /** The previous-release record the switch found, put back by the undo. */
  previous?: string | null;
  switched?: boolean;
  /**
   * The maintenance page (carried into the restored release, so a site in maintenance stays so) was
   * removed from the release live before: maintenance is the instance's, and a later rollback to that
   * release must not bring back a page the run since took down. The undo puts it back.
   */
  maintenanceMoved?: boolean;
}

/** What a release-mode restore cut short (kill -9, a crash, an undo that failed) left beside the instance. */
export interface RestoreLeftover {
  /** The release that restore made: its incoming shared/ and the shared/ it replaced are named after it. */
  id: string;
  /** The link points at it: the switch was done, only the clean-up was left. */
  switched: boolean;
  /** What the instance path links to now ('' when it is no link). */
  link: string;
  /** What was recorded of it (the release live before, the previous-release record), when it got that far. */
  meta?: ReleaseMeta;
}

/**
 * The leftovers of release-mode restores cut short, from the names beside shared/ (one round trip):
 * `PATH.shared.opsdeck-previous-ID` (shared/ as it was, moved aside by the first rename) and
 * `PATH.shared.opsdeck-incoming-ID` (the backup's, not yet moved in). Each may hold the only copy of
 * one shared/, so nothing else runs a restore over them: recover settles them (settleRestoredRelease).
 */
export async function restoreLeftovers(deps: Deps, inst: Instance): Promise<RestoreLeftover[]> {
  const out = (
    await sh(
      deps,
      inst,
      'p=$1; s=$2; r=$3; printf "L %s\\n" "$(readlink -- "$p" 2>/dev/null)"; ' +
        'for d in "$s".opsdeck-previous-* "$s".opsdeck-incoming-*; do if [ -e "$d" ] || [ -L "$d" ]; then i=${d#"$s".opsdeck-previous-}; i=${i#"$s".opsdeck-incoming-}; printf "X %s\\n" "$i"; ' +
        'if [ -f "$r/$i.json" ] && ! [ -L "$r/$i.json" ]; then printf "M %s " "$i"; tr -d "\\n" < "$r/$i.json"; printf "\\n"; fi; fi; done',
      [inst.path, sharedDir(inst.path), releasesDir(inst.path)],
    )
  ).stdout;
  const target = /^L (.*)$/m.exec(out)?.[1] ?? '';
  const ids = [...new Set([...out.matchAll(/^X (.*)$/gm)].map((m) => m[1]))].filter((id) => RELEASE_ID.test(id) && id.endsWith('-restored')).sort();
  return ids.map((id) => {
    let meta: ReleaseMeta | undefined;
    const line = out.split('\n').find((l) => l.startsWith(`M ${id} `));
    try {
      meta = line ? (JSON.parse(line.slice(id.length + 3)) as ReleaseMeta) : undefined;
    } catch {
      meta = undefined;
    }
    return { id, switched: target === `${basename(inst.path)}.releases/${id}`, link: target, meta };
  });
}

/**
 * What a restore cut short left may be the only copy of shared/ as it was (and shared/ itself may be
 * missing): a restore, update or rollback over it refuses until recover settled it.
 */
export async function refuseRestoreLeftovers(deps: Deps, inst: Instance): Promise<void> {
  const left = await restoreLeftovers(deps, inst);
  if (left.length)
    throw new OpsError(
      `a restore of ${inst.name} as release ${left.map((l) => l.id).join(', ')} was cut short: ${previousShared(inst.path, left[0].id)} or ${incomingShared(inst.path, left[0].id)} is still on ${inst.host}`,
      1,
      `put it right with: opsdeck recover ${inst.name}, then run again`,
    );
}

/**
 * Puts shared/ back as it was before restore ID: the incoming one (in place after both renames) moves
 * aside first and the kept one back in, so a kill anywhere in it leaves each side whole under one of
 * the three names, and running it again goes on from there. The incoming one goes last (it is the
 * backup's, in the store).
 */
const SHARED_BACK =
  'if [ -e "$2" ] || [ -L "$2" ]; then if [ -e "$1" ] || [ -L "$1" ]; then ' +
  // shared/ beside a whole incoming one is not the incoming one (made since): kept under a name of its own, never deleted.
  'if [ -e "$3" ] || [ -L "$3" ]; then if [ -e "$4" ] || [ -L "$4" ]; then echo "taken $4"; exit 1; fi; mv -T -- "$1" "$4" && printf "displaced %s\\n" "$4" || exit 1; ' +
  'else mv -T -- "$1" "$3" || exit 1; fi; fi; mv -T -- "$2" "$1" || exit 1; fi; rm -rf -- "$3"';

/** Where SHARED_BACK keeps a shared/ it found beside a whole incoming one: not its to delete. */
export const displacedShared = (path: string, id: string) => `${sharedDir(path)}.opsdeck-displaced-${id}`;

/** Runs SHARED_BACK for restore `id`, saying where a displaced shared/ was kept. */
async function sharedBack(deps: Deps, inst: Instance, id: string, ctx: StepIO): Promise<void> {
  const res = await sh(deps, inst, SHARED_BACK, [sharedDir(inst.path), previousShared(inst.path, id), incomingShared(inst.path, id), displacedShared(inst.path, id)], ctx.signal);
  const kept = /^displaced (.*)$/m.exec(res.stdout)?.[1];
  if (kept) ctx.log(`${sharedDir(inst.path)} was not the one restore ${id} brought in: kept as ${kept} (look at it; opsdeck deletes nothing of it)`, 'warn');
}

/**
 * Settles a release-mode restore cut short, from what is on the host. Switched: it is finished (the
 * incoming shared/ in place if it is not yet, the replaced one removed). Not switched: it is undone
 * (shared/ back, the restored release removed). `undo` also turns a switched one back (the link to
 * the release live before it, its previous-release record back): recover does so when the database
 * goes back too. shared/ is never left missing: a finish with no incoming shared/ keeps the old one.
 */
export async function settleRestoredRelease(deps: Deps, inst: Instance, left: RestoreLeftover, action: 'finish' | 'undo', ctx: StepIO): Promise<void> {
  const shared = sharedDir(inst.path);
  const incoming = incomingShared(inst.path, left.id);
  const old = previousShared(inst.path, left.id);
  if (action === 'finish') {
    await sh(
      deps,
      inst,
      'if ! { [ -e "$1" ] || [ -L "$1" ]; } && [ -e "$3" ]; then mv -T -- "$3" "$1" || exit 1; fi; ' +
        'if ! { [ -e "$1" ] || [ -L "$1" ]; } && [ -e "$2" ]; then mv -T -- "$2" "$1" || exit 1; fi; rm -rf -- "$2" "$3"',
      [shared, old, incoming],
      ctx.signal,
    );
    ctx.log(`restore as release ${left.id} finished: ${shared} is the backup's, the one it replaced is removed`);
    return;
  }
  if (left.switched) {
    const from = left.meta?.from;
    if (!from || !RELEASE_ID.test(from))
      throw new OpsError(
        `${inst.path} on ${inst.host} serves release ${left.id} of a restore cut short, and which release was live before it is not recorded`,
        1,
        `switch back by hand with: opsdeck rollback ${inst.name} --to RELEASE (${old} is shared/ as it was), then run recover again`,
      );
    await switchTo(deps, inst, from, ctx, left.meta?.previousBefore ?? null);
  } else {
    // Not switched is undone only while nothing moved since: the link still at the release live before
    // it, or the incoming shared/ still there (the second rename never happened). Otherwise shared/ may
    // be one in use since (the link moved: a rollback, --releases 0): nothing is changed, it is said.
    const from = left.meta?.from;
    const atFrom = !!from && RELEASE_ID.test(from) && left.link === `${basename(inst.path)}.releases/${from}`;
    const has = await sh(deps, inst, 'if [ -e "$1" ] || [ -L "$1" ]; then echo incoming; fi', [incoming], ctx.signal);
    if (!atFrom && !has.stdout.includes('incoming'))
      throw new OpsError(
        `${inst.path} on ${inst.host} ${left.link ? `links to ${left.link}` : 'is no link'}, not to release ${from ?? '(not recorded)'} live before the restore as release ${left.id} cut short, and ${incoming} is gone: ${shared} may be in use since, and ${old} is shared/ as it was before that restore`,
        1,
        `look at both on the host, keep what is needed in ${shared}, move ${old} away, then run recover again`,
      );
    // A kill inside the switch after the previous-release record was written leaves it naming the live release.
    if (atFrom && left.meta && left.meta.previousBefore !== undefined)
      await sh(
        deps,
        inst,
        'if [ -n "$2" ]; then printf "%s\\n" "$2" > "$1.tmp" && mv -f -- "$1.tmp" "$1"; else rm -f -- "$1"; fi',
        [previousFile(inst.path), left.meta.previousBefore ?? ''],
        ctx.signal,
      );
  }
  await sharedBack(deps, inst, left.id, ctx);
  await removeRelease(deps, inst, left.id);
  ctx.log(`restore as release ${left.id} undone: ${shared} is as it was before it`);
}

/**
 * Puts a staged tree (a restore of this instance's backup) in as a new release, `<timestamp>-restored`:
 * shared/ becomes the backup's (SHARED_IN_TAR; from a backup without it, the tree's own copies of the
 * shared paths, the rest copied from shared/ as it is), the tree gets links to it, then one switch of
 * the link. `st` is filled as it goes, so the undo (undoRestoredRelease) puts back exactly what was done.
 */
export async function restoreAsRelease(
  deps: Deps,
  inst: Instance,
  staging: string,
  st: RestoredRelease,
  meta: Pick<ReleaseMeta, 'backup' | 'schema'>,
  withShared: boolean,
  ctx: StepIO,
  copy?: { sourcePaths: string[]; keep: string[] },
): Promise<void> {
  const shared = sharedDir(inst.path);
  // Leftovers of a restore cut short were refused by the restore's check step (refuseRestoreLeftovers).
  // The id first: every name this restore makes beside the instance carries it, so what a kill leaves is found.
  const taken = (await listReleases(deps, inst)).map((r) => r.id);
  const id = releaseId('restored', taken);
  st.id = id;
  const incoming = incomingShared(inst.path, id);
  if (copy) {
    // Another instance's tree (a clone, a restore --to): its shared/ holds the source's shared paths,
    // not this instance's. Its files go in place of its links (the tree is then whole, as one in place
    // is), then the paths this instance shares are taken from that tree below; the files the target
    // keeps as its own (its local files, already carried in as links to its shared/) are left out.
    const filled = await materializeShared(
      deps,
      inst,
      staging,
      copy.sourcePaths.filter((p) => !copy.keep.includes(p)),
      withShared,
    );
    if (filled.length) ctx.log(`the source's shared ${filled.join(', ')} copied in place of its links`);
  }
  // shared/ from the tar only when the backup's manifest says the tar holds it, and never through a link.
  const fromTar = await sh(
    deps,
    inst,
    'rm -rf -- "$2" && if [ "$3" = yes ] && [ -d "$1/' + SHARED_IN_TAR + '" ] && ! [ -L "$1/' + SHARED_IN_TAR + '" ]; then mv -T -- "$1/' + SHARED_IN_TAR + '" "$2" && echo tar; fi',
    [staging, incoming, withShared && !copy ? 'yes' : 'no'],
  );
  if (!fromTar.stdout.includes('tar')) {
    const res = await sh(
      deps,
      inst,
      'd=$1; n=$2; c=$3; shift 3; mkdir -- "$n" || exit 1; ' +
        LINKED_FN +
        'for p; do if linked "$d" "$p"; then continue; fi; ' +
        'if [ -e "$d/$p" ] && ! [ -L "$d/$p" ]; then mkdir -p -- "$(dirname -- "$n/$p")" && mv -T -- "$d/$p" "$n/$p" && printf "tree %s\\n" "$p" || exit 1; ' +
        'elif [ -e "$c/$p" ] || [ -L "$c/$p" ]; then mkdir -p -- "$(dirname -- "$n/$p")" && cp -a -- "$c/$p" "$n/$p" && printf "kept %s\\n" "$p" || exit 1; fi; done',
      [staging, incoming, shared, ...sharedPathsOf(inst)],
    );
    const kept = res.stdout
      .split('\n')
      .filter((l) => l.startsWith('kept '))
      .map((l) => l.slice(5));
    if (kept.length && copy) ctx.log(`kept ${inst.name}'s own shared ${kept.join(', ')}`);
    else if (kept.length) ctx.log(`the backup holds no shared/ (taken before backups held it): ${kept.join(', ')} kept as ${shared} has them now`, 'warn');
    // Its own copies moved out: links in their place. (A tree from the tar keeps its links exactly as backed up.)
    await linkShared(deps, inst, staging);
  }
  await sh(deps, inst, 'mv -T -- "$1" "$2"', [staging, `${releasesDir(inst.path)}/${id}`]);
  const rev = await shellFor(deps, inst).exec(['git', '-C', `${releasesDir(inst.path)}/${id}`, 'rev-parse', 'HEAD']);
  st.previous = (await previousRelease(deps, inst)) ?? null;
  // What an undo from the host needs (recover, after a kill): the release to switch back to, and the record to put back.
  await writeReleaseMeta(deps, inst, { id, revision: rev.code === 0 ? rev.stdout.trim() : '', at: new Date().toISOString(), from: st.live, previousBefore: st.previous, ...meta });
  // Named for this restore, never an earlier one's: a kept .opsdeck-previous may be the only copy of
  // shared/ as it was (a run killed after the rename), so nothing here deletes one.
  const old = previousShared(inst.path, id);
  const free = await sh(deps, inst, 'if [ -e "$1" ] || [ -L "$1" ]; then echo taken; fi', [old]);
  if (free.stdout.includes('taken')) throw new OpsError(`${old} already exists on ${inst.host}`, 1, `it may be the only copy of ${shared} as it was: look at it, move it away, then run again`);
  // Recorded before the renames: a run killed between them is put back by the undo (shared/ missing, the old one waiting).
  st.oldShared = old;
  await sh(deps, inst, 'mv -T -- "$1" "$3" && mv -T -- "$2" "$1"', [shared, incoming, old]);
  st.switched = true;
  await switchTo(deps, inst, id, ctx);
  const page = await sh(deps, inst, 'if [ -f "$1/$3" ] && [ -f "$2/$3" ]; then rm -f -- "$1/$3" && echo moved; fi', [
    `${releasesDir(inst.path)}/${st.live}`,
    `${releasesDir(inst.path)}/${id}`,
    MAINTENANCE_FILE,
  ]);
  st.maintenanceMoved = page.stdout.includes('moved');
  ctx.log(`restored as release ${id}; ${shared} is the backup's (the one before waits in ${st.oldShared} until the run is done)`);
}

/** The undo of restoreAsRelease: the link back to the release live before, shared/ as it was, the restored release gone. */
export async function undoRestoredRelease(deps: Deps, inst: Instance, st: RestoredRelease, ctx: StepIO): Promise<void> {
  if (st.maintenanceMoved && st.id)
    await sh(deps, inst, 'if [ -f "$2/$3" ] && ! [ -e "$1/$3" ]; then cp -p -- "$2/$3" "$1/$3"; fi', [`${releasesDir(inst.path)}/${st.live}`, `${releasesDir(inst.path)}/${st.id}`, MAINTENANCE_FILE]);
  st.maintenanceMoved = false;
  if (st.switched) await switchTo(deps, inst, st.live, ctx, st.previous ?? null);
  st.switched = false;
  if (!st.id) return;
  // shared/ moves back only when this run moved it: before that, a name it found taken is not its own to move in.
  if (st.oldShared) await sharedBack(deps, inst, st.id, ctx);
  else await run(shellFor(deps, inst), ['rm', '-rf', '--', incomingShared(inst.path, st.id)]);
  st.oldShared = undefined;
  await removeRelease(deps, inst, st.id);
  st.id = undefined;
}

/**
 * The run is done: the replaced shared/ goes. Renamed out of the leftovers' names first (restoreLeftovers
 * would take it for a cut-short restore's), then deleted in the background: it decides nothing.
 */
export async function dropOldShared(deps: Deps, inst: Instance, oldShared: string): Promise<void> {
  await sh(deps, inst, 'if [ -e "$1" ]; then rm -rf -- "$1.gone" && mv -T -- "$1" "$1.gone" && { nohup rm -rf -- "$1.gone" >/dev/null 2>&1 </dev/null & }; fi', [oldShared]);
}
