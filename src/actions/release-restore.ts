import { basename } from 'node:path';
import type { Instance } from '../../inventory/index.js';
import type { StepIO } from '../core/plan.js';
import { OpsError } from '../core/errors.js';
import { run } from '../remote/shell.js';
import { shellFor, type Deps } from '../deps/deps.js';
import { MAINTENANCE_FILE } from './app.js';
import {
  LINKED_FN,
  RELEASE_ID,
  type ReleaseMeta,
  SHARED_IN_TAR,
  linkShared,
  listReleases,
  materializeShared,
  previousFile,
  previousRelease,
  releaseId,
  releasesDir,
  removeRelease,
  sh,
  sharedDir,
  sharedPathsOf,
  switchTo,
  writeReleaseMeta,
} from './releases.js';

/**
 * A restore onto a release-mode instance (issue 13, item 1): the backup's tree comes back as a new
 * release with its shared/ in one switch of the link; its undo, its cleanup, and what recover reads
 * on the host when a run was cut short between its renames of shared/. Release directories
 * themselves are releases.ts.
 */
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
