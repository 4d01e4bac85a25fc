import { dirname } from 'node:path';
import type { Backup, HalfRestored, Instance } from '../../inventory/index.js';
import { LoadStopped, engineFor } from '../databases/index.js';
import { formatBytes } from '../core/events.js';
import type { Plan, Step, StepContext, StepIO } from '../core/plan.js';
import { run } from '../remote/shell.js';
import { OpsError, UsageError } from '../core/errors.js';
import { newBackupId, recordBackup, snapshotInstance } from './backup.js';
import { dbFor, loginShellFor, shellFor, type Deps } from '../deps/deps.js';
import { progressSum, together } from './relay.js';
import { MAINTENANCE_FILE } from './app.js';
import { rebaselineStep } from './watch.js';
import { hasSharedDir, liveRelease, materializeShared, schemaHash, sharedPathsOf } from './releases.js';
import { dropOldShared, refuseRestoreLeftovers, restoreAsRelease, undoRestoredRelease } from './release-restore.js';
import { backupChoiceNotes, checkTreeUser, dropReadAheads, freeSpace, hasCode, hasDb, keepsLocal, pickBackup, treeSize, type RestoreState } from './restore-checks.js';
import { loadDatabase, loadDatabaseFrom, readAheadOf, stageCode, stageCodeFrom, WHOLE_READ_AHEAD_MAX } from './restore-data.js';
import { listStaged, oldOf, removeLater, stagingOf, swapIn, swappedTreeKey } from './restore-tree.js';

// The checks and the data path live beside the steps; importers keep using restore.js.
export { backupChoiceNotes, dropReadAheads, freeSpace, pickBackup, type RestoreState } from './restore-checks.js';
export { loadDatabase, loadDatabaseFrom, stageCode, stageCodeFrom } from './restore-data.js';

/**
 * Carries paths ($3...) from the tree in place ($1) into the staged one ($2), printing "kept I" or
 * "skip I SIDE DEPTH" for the I-th path. A path with a symlink on the way (config -> /etc, in either
 * tree) is skipped: mkdir -p, rm -rf and cp would act on the link's target, outside the instance
 * (a restore replaced a file outside the target that way). The path itself may be a link: cp -a
 * copies it as a link and rm -rf removes only the link.
 */
const CARRY_SCRIPT = [
  'src=$1; dst=$2; shift 2; i=0',
  // linked ROOT REL: prints how many leading components of REL lead to a symlink below ROOT (exit 0), or exits 1.
  'linked() { r=$1; rest=$2; n=0; while :; do case $rest in */*) c=${rest%%/*}; rest=${rest#*/}; r=$r/$c; n=$((n+1)); if [ -L "$r" ]; then echo $n; return 0; fi ;; *) return 1 ;; esac; done; }',
  'for p in "$@"; do',
  '  if n=$(linked "$src" "$p"); then echo "skip $i src $n"',
  '  elif n=$(linked "$dst" "$p"); then echo "skip $i dst $n"',
  '  elif [ -e "$src/$p" ] || [ -L "$src/$p" ]; then mkdir -p -- "$(dirname -- "$dst/$p")" && rm -rf -- "$dst/$p" && cp -a -- "$src/$p" "$dst/$p" && echo "kept $i" || exit 1',
  '  fi',
  '  i=$((i+1))',
  'done',
].join('\n');

export interface RestoreResult {
  backup: string;
  instance: string;
  target: string;
  safetyBackup: string | null;
}

/** A restore's steps by name, for clone and drill to compose; `inOrder` is the order a restore runs them. */
export interface RestoreSteps {
  check: Step<RestoreState>;
  data: Step<RestoreState>;
  swap: Step<RestoreState>;
  cleanup: Step<RestoreState>;
}

export const inOrder = (s: RestoreSteps): Step<RestoreState>[] => [s.check, s.data, s.swap, s.cleanup];

/** A restore's state before it starts: nothing committed, swapped or staged yet. */
export function restoreState<F extends RestoreState['from']>(from: F, target: Instance, opts: { parts?: RestoreState['parts']; safetyCode: boolean }): RestoreState & { from: F } {
  return { from, target, staging: stagingOf(target.path), old: oldOf(target.path), dbCommitted: false, swapped: false, parts: opts.parts ?? { code: true, db: true }, safetyCode: opts.safetyCode };
}

/**
 * The data step's explanation, in the words of the target's database engine (how it loads; whether
 * that goes beside the safety backup or after it); neutral words without a target.
 */
function dataExplain(target?: Instance): string {
  const engine = target?.dbUrl ? engineFor(target.dbUrl) : undefined;
  const load = engine ? `${engine.loadsBeside ? 'meanwhile' : 'then'} ${engine.loadWords}` : 'then loads the database so that nothing changes unless all of it loaded';
  return (
    `Saves the target as it is now, so it can be put back if anything after this fails; ${load}, while the stored code tree streams into a scratch ` +
    'directory next to the target and its checksum is checked. The code tree in place is not touched yet.'
  );
}

/**
 * The check step's run with `ask`, which starts a check whose answer is judged later (each is a round
 * trip to the host: asked side by side, they cost one round trip's wait). A failure is thrown where
 * it is awaited, and when the step fails, every check asked has ended before it does (MariaDB's tries
 * its rights by creating and dropping two empty databases, which must not be cut half-way).
 */
function askingAhead(check: (ctx: StepContext<RestoreState>, ask: <T>(p: Promise<T>) => Promise<T>) => Promise<void>): (ctx: StepContext<RestoreState>) => Promise<void> {
  return async (ctx) => {
    const asked: Promise<unknown>[] = [];
    const ask = <T>(p: Promise<T>): Promise<T> => {
      p.catch(() => {});
      asked.push(p);
      return p;
    };
    try {
      await check(ctx, ask);
    } catch (err) {
      await Promise.allSettled(asked);
      throw err;
    }
  };
}

/** A restore's steps; `target` (when known) words the explanations for its database engine. */
export function restoreSteps(deps: Deps, target?: Instance): RestoreSteps {
  return {
    check: {
      name: 'check',
      title: 'Check the target and its free disk space',
      explain: 'Logs in to the target host and makes sure the restore fits on its disk. If it fails, free some space or pick another target.',
      run: askingAhead(async (ctx, ask) => {
        const { from, target } = ctx.state;
        if (from.backup) for (const note of backupChoiceNotes(deps, from.backup)) ctx.log(note, 'warn');
        const parent = dirname(target.path);
        const shell = shellFor(deps, target);
        const db = hasDb(ctx.state) ? dbFor(deps, target) : undefined;
        // Each check is a round trip to the host: all are asked at once, and judged in this order.
        const asked = {
          parent: ask(shell.exec(['test', '-d', parent])),
          user: ask(checkTreeUser(deps, ctx.state, (line, level) => ctx.log(line, level))),
          live: hasCode(ctx.state) ? ask(liveRelease(deps, target, false)) : undefined,
          // What a release-mode restore cut short left (maybe the only copy of shared/) is refused here,
          // before the safety backup and before a load swaps the database in, not at the swap.
          leftovers: hasCode(ctx.state) ? ask(refuseRestoreLeftovers(deps, target)) : undefined,
          load: db ? ask(db.engine.checkLoad(loginShellFor(deps, target), db, ctx.signal)) : undefined,
          tree: from.live ? ask(treeSize(deps, from.live)) : undefined,
          free: ask(freeSpace(deps, target, parent)),
          // For the data step's safety backup, when it comes right after: whether there is a tree to save, and shared/ beside it.
          exists: ctx.state.dataFollows ? ask(shell.exec(['test', '-d', target.path], { signal: ctx.signal })) : undefined,
          shared: ctx.state.dataFollows && ctx.state.safetyCode ? ask(hasSharedDir(deps, target, ctx.signal)) : undefined,
        };
        // The backup's streams start now, behind the checks' round trips (ReadAhead); dropped by the plan if never taken.
        if (ctx.state.dataFollows && from.backup && !ctx.state.ahead) {
          // The database's stream only for an engine that loads beside the safety backup; one that
          // waits for it (PostgreSQL) has its stream read in the data step, beside the safety backup.
          const beside = hasDb(ctx.state) && !!target.dbUrl && engineFor(target.dbUrl).loadsBeside;
          ctx.state.ahead = { code: hasCode(ctx.state) ? readAheadOf(deps, from.backup, 'code') : undefined, db: beside ? readAheadOf(deps, from.backup, 'db') : undefined };
        }
        const p = await asked.parent;
        if (p.code !== 0) throw new UsageError(`the parent directory ${parent} of ${target.path} does not exist on ${target.host}`, 'create it on the host first');
        await asked.user;
        // A release-mode path is a link: the tree (the instance's own backup, or another instance's)
        // comes back as a new release (restoreAsRelease), never a plain tree in place of the link.
        const live = await asked.live;
        if (live) ctx.state.release = { live };
        await asked.leftovers;
        await asked.load;
        const m = from.backup?.manifest.code;
        const tree = asked.tree ? await asked.tree : { bytes: m?.bytes ?? 0, entries: m ? (m.files ?? 0) + (m.dirs ?? 0) + (m.symlinks ?? 0) : 0 };
        const code = hasCode(ctx.state) ? tree : { bytes: 0, entries: 0 };
        const free = await asked.free;
        // Every file, directory and link takes an inode and up to one block more than its bytes (a
        // 1 KB file takes a 4 KB block): 3,000 small files need 12 MB, not the 4.6 MB of their tar.
        const need = Math.ceil((code.bytes + code.entries * free.blockSize + (hasDb(ctx.state) ? (from.backup?.manifest.db?.bytes ?? 0) : 0)) * 1.1);
        const inodes = code.entries + 1;
        ctx.log(`needs about ${formatBytes(need)} and ${inodes} inodes; ${formatBytes(free.bytes)} and ${free.inodes ?? 'unlimited'} inodes free on ${target.host}:${parent}`);
        if (free.bytes < need) {
          throw new OpsError(
            `not enough free disk on ${target.host} at ${parent}: the restore needs about ${formatBytes(need)} (${code.entries} files and directories in ${free.blockSize}-byte blocks), ${formatBytes(free.bytes)} is free`,
            1,
            'free some space on the host, then run the restore again',
          );
        }
        if (free.inodes !== null && free.inodes < inodes) {
          throw new OpsError(
            `not enough free inodes on ${target.host} at ${parent}: the restore needs ${inodes} (one per file, directory and link), ${free.inodes} are free`,
            1,
            'remove files on that filesystem (or give it more inodes), then run the restore again',
          );
        }
        if (asked.exists) {
          const exists = (await asked.exists).code === 0;
          ctx.state.tree = { exists, shared: exists ? await asked.shared : undefined };
        }
      }),
    },
    data: {
      name: 'data',
      title: 'Take a safety backup, load the database, unpack the code tree beside the target',
      explain: dataExplain(target),
      run: async (ctx) => {
        const { target, from, staging } = ctx.state;
        const exists = ctx.state.tree?.exists ?? (await shellFor(deps, target).exec(['test', '-d', target.path])).code === 0;
        const id = newBackupId();
        const slot = progressSum(ctx.progress, (from.backup?.manifest.code?.bytes ?? 0) + (from.backup?.manifest.db?.bytes ?? 0));
        const sub = (i: number, signal: AbortSignal): StepIO => ({ ...ctx, signal, progress: slot(i) });
        // The code tree unpacks beside the target the whole time. The database must be saved before
        // it is replaced: an engine whose load goes beside the target and changes it only after the
        // go-ahead (MariaDB: a scratch database, swapped in) loads while the safety backup reads the
        // target; one that replaces in place (PostgreSQL's one transaction) loads after it.
        // The load's COMMIT (the swap) waits until the code tree is staged and checked and the safety
        // backup is taken: a staging or safety backup that fails means the load never commits, and a
        // crash leaves the database and the code apart only for the commit and the two renames of the swap.
        const deferred = () => {
          let settle!: { ok: () => void; failed: (err: unknown) => void };
          const done = new Promise<void>((ok, failed) => (settle = { ok, failed }));
          done.catch(() => {});
          return { done, ...settle };
        };
        const staged = deferred();
        const saved = deferred();
        const beside = hasDb(ctx.state) && !!target.dbUrl && engineFor(target.dbUrl).loadsBeside;
        // A load that waits for the safety backup has its dump read meanwhile, when it is small enough
        // to be held in memory whole: a restic held back on its output would keep its store lock while
        // a failed safety backup's discard waits for it. Not in the check step: there its restic took
        // CPU from the checks (and the SSH handshake) that the code tree's stream waits for.
        if (hasDb(ctx.state) && !beside && from.backup && ctx.state.ahead && !ctx.state.ahead.db && (from.backup.manifest.db?.bytes ?? Infinity) <= WHOLE_READ_AHEAD_MAX)
          ctx.state.ahead.db = readAheadOf(deps, from.backup, 'db', true);
        const beforeCommit = async (signal: AbortSignal) => {
          await staged.done;
          await saved.done;
          if (signal.aborted) throw new OpsError('cancelled before the database load committed');
          // Recorded before the COMMIT leaves: a crash from here on is noticed by the next run.
          enterCriticalSection(deps, ctx, 'db-committing', true);
          ctx.state.commitSent = true;
        };
        // What the load keeps aside for its undo: in the state, and in the record of the critical
        // section once there is one (the loader waits for it before its swap's first change).
        const keep = (kept: string) => {
          ctx.state.dbKept = kept;
          if (ctx.state.runId !== undefined && !ctx.state.dbCommitted) deps.inv.setHalfRestored({ ...criticalRecord(ctx), phase: 'db-committing' });
        };
        await together<[void, void, void]>(ctx.signal, [
          async (signal) => {
            try {
              const manifest = await snapshotInstance(deps, target, id, sub(0, signal), undefined, exists && ctx.state.safetyCode, true, ctx.state.tree?.shared);
              ctx.state.safety = recordBackup(deps, target.name, 'safety', id, manifest);
              ctx.log(`safety backup ${id} taken${manifest.code ? '' : ' (database; the code tree is kept aside until the new one is in place)'}`);
              saved.ok();
            } catch (err) {
              saved.failed(err);
              throw err;
            }
          },
          async (signal) => {
            if (!hasDb(ctx.state)) return;
            // A load that replaces in place starts once the safety backup is taken; what it asks of the
            // target first (which roles are there) changes nothing and is asked meanwhile.
            const after = beside ? undefined : saved.done;
            try {
              if (from.live) await loadDatabaseFrom(deps, from.live, target, sub(2, signal), () => beforeCommit(signal), keep, ctx.state.redact, after);
              else await loadDatabase(deps, from.backup, target, sub(2, signal), () => beforeCommit(signal), keep, ctx.state.redact, ctx.state.ahead?.db, after);
            } catch (err) {
              // Stopped at a failed statement: the COMMIT never ran, there is nothing to put back.
              if (err instanceof LoadStopped) ctx.state.commitSent = false;
              throw err;
            }
            ctx.state.dbCommitted = true;
            enterCriticalSection(deps, ctx, 'db-committed', true);
          },
          async (signal) => {
            try {
              if (hasCode(ctx.state)) {
                await (from.live ? stageCodeFrom(deps, from.live, target, staging, sub(1, signal)) : stageCode(deps, from.backup, target, staging, sub(1, signal), ctx.state.ahead?.code));
                // The staged tree's listing for its fingerprint after the swap, taken meanwhile (the
                // load's commit and the swap's round trips): the swap then stats only the tree's top.
                if (from.backup && !ctx.state.release) ctx.state.stagedList = listStaged(deps, target, staging, ctx.signal);
              }
              staged.ok();
            } catch (err) {
              staged.failed(err);
              throw err;
            }
          },
        ]);
      },
      undo: async (ctx) => {
        const { safety, target, staging } = ctx.state;
        await run(shellFor(deps, target), ['rm', '-rf', '--', staging]);
        // Only a load whose COMMIT went out may have changed the database: put back what it kept aside,
        // else the safety copy over it.
        if (!(ctx.state.dbCommitted || ctx.state.commitSent)) return;
        const kept = ctx.state.dbKept;
        if (kept !== undefined) {
          const db = dbFor(deps, target)!;
          await db.engine.putBack(loginShellFor(deps, target), db, kept);
          ctx.state.dbKept = undefined;
        } else if (safety?.manifest.db) await loadDatabase(deps, safety, target, ctx);
      },
    },
    swap: {
      name: 'swap',
      title: 'Swap the restored code tree into place',
      explain: 'Renames the current tree aside and the restored one into its place: two renames on one filesystem.',
      run: async (ctx) => {
        const { target, staging, old } = ctx.state;
        if (!hasCode(ctx.state)) return;
        // Carried from the tree in place into the staged one: the target's own files (database config...)
        // when the backup is another instance's, and the maintenance page, so a site in maintenance stays so.
        const carry = [...(keepsLocal(ctx.state) ? target.localPaths : []), MAINTENANCE_FILE];
        const res = await run(shellFor(deps, target), ['sh', '-c', CARRY_SCRIPT, 'sh', target.path, staging, ...carry]);
        const carried: string[] = [];
        for (const line of res.stdout.split('\n')) {
          const [what, i, side, depth] = line.split(' ');
          const p = carry[Number(i)];
          if (what === 'kept' && p !== undefined) carried.push(p);
          else if (what === 'skip' && p !== undefined) {
            const link = p.split('/').slice(0, Number(depth)).join('/');
            ctx.log(
              `not carried: ${p}, because ${link} is a symlink in ${side === 'src' ? `${target.name}'s tree in place` : 'the restored tree'}: opsdeck follows no link out of the instance's directory`,
              'warn',
            );
          }
        }
        if (carried.length) ctx.log(`kept ${target.name}'s own ${carried.join(', ')}`);
        // The tar holds shared/ only when its manifest says so (a live source's is sent when it has one).
        const withShared = ctx.state.from.backup ? ctx.state.from.backup.manifest.code?.sharedDir === true : true;
        if (ctx.state.release) {
          // Release mode: no rename of trees, a new release and one switch of the link. Recorded first,
          // with or without a database: recover settles shared/ and the link from what is on the host.
          enterCriticalSection(deps, ctx, 'swapping', false);
          const source = ctx.state.from.live ?? deps.inv.getInstance(ctx.state.from.backup.instance);
          await restoreAsRelease(
            deps,
            target,
            staging,
            ctx.state.release,
            { backup: ctx.state.safety?.manifest.db ? ctx.state.safety.id : null, schema: await schemaHash(deps, target) },
            withShared,
            ctx,
            // Another instance's tree: its shared files in place of its links first; the target's own files stay.
            (ctx.state.from.live?.name ?? ctx.state.from.backup?.instance) === target.name
              ? undefined
              : { sourcePaths: source ? sharedPathsOf(source) : [], keep: keepsLocal(ctx.state) ? target.localPaths : [] },
          );
          // Switched: a run killed from here on is finished by recover (code and database both new).
          enterCriticalSection(deps, ctx, 'swapped', false);
          return;
        }
        // From a release-mode source: real files in place of the links into its shared/.
        const src = ctx.state.from.live ?? deps.inv.getInstance(ctx.state.from.backup.instance);
        const filled = await materializeShared(deps, target, staging, src ? sharedPathsOf(src) : [], withShared);
        if (filled.length) ctx.log(`the source's shared ${filled.join(', ')} copied in place of its links`);
        enterCriticalSection(deps, ctx, 'swapping', false);
        await swapIn(deps, target, staging, old);
        ctx.state.swapped = true;
        enterCriticalSection(deps, ctx, 'swapped', false);
        // The tree in place is now exactly the backup's (its checksum was checked on the way in):
        // remember its fingerprint, so the next safety backup of this target need not stream it.
        const stored = ctx.state.from.backup;
        const key = carried.length || filled.length || !stored ? undefined : await swappedTreeKey(deps, target, ctx.state.stagedList, ctx.signal);
        if (key && stored) deps.inv.rememberTree(target.name, key, stored.id);
      },
      undo: async (ctx) => {
        const { target, old } = ctx.state;
        if (ctx.state.release) {
          // Not "swapped" while the link and shared/ move back: recover would finish a run half undone.
          if (ctx.state.runId !== undefined) deps.inv.setHalfRestored({ ...criticalRecord(ctx), phase: 'swapping' });
          await undoRestoredRelease(deps, target, ctx.state.release, ctx);
          if (ctx.state.runId !== undefined) deps.inv.setHalfRestored({ ...criticalRecord(ctx), phase: 'db-committed' });
          return;
        }
        if (!ctx.state.swapped) return;
        // Moving back a tree that is being deleted would leave the instance empty.
        if (ctx.state.oldDeleting)
          throw new OpsError(
            `the previous code tree ${old} is already being deleted: it cannot be moved back`,
            1,
            ctx.state.safety?.manifest.code ? `put it back from safety backup ${ctx.state.safety.id}: opsdeck restore ${target.name} --backup ${ctx.state.safety.id}` : undefined,
          );
        // Between the two renames the record must not say "swapped" (recover would keep the new code).
        if (ctx.state.runId !== undefined) deps.inv.setHalfRestored({ ...criticalRecord(ctx), phase: 'swapping' });
        await run(shellFor(deps, target), ['sh', '-c', 'if [ -e "$2" ]; then rm -rf -- "$1" && mv -- "$2" "$1"; fi', 'sh', target.path, old]);
        ctx.state.swapped = false;
        // The code is the old one again: what is left apart is the database, if its COMMIT went out.
        if (ctx.state.runId !== undefined) deps.inv.setHalfRestored({ ...criticalRecord(ctx), phase: 'db-committed' });
      },
    },
    cleanup: {
      name: 'cleanup',
      title: 'Remove the previous code tree',
      explain: 'Deletes the tree that was swapped out, in the background on the host, once every other step succeeded: the restore is complete without waiting for it.',
      // The one step that cannot be undone: the engine runs it last, after every step that can fail.
      final: true,
      run: async (ctx) => {
        const kept = ctx.state.dbKept;
        // The run is done: what the load kept for an undo goes, beside the deletes of the old trees
        // (each is a round trip to the host, and neither decides anything for the other).
        const dropped =
          kept === undefined
            ? undefined
            : (async () => {
                const db = dbFor(deps, ctx.state.target)!;
                await db.engine.dropKept(loginShellFor(deps, ctx.state.target), db, kept);
                ctx.state.dbKept = undefined;
              })();
        dropped?.catch(() => {});
        try {
          const oldShared = ctx.state.release?.oldShared;
          if (oldShared) await dropOldShared(deps, ctx.state.target, oldShared);
          if (!ctx.state.swapped) return;
          ctx.state.oldDeleting = true;
          // Detached: deleting 20,000 files takes seconds and decides nothing. The next restore's swap
          // removes any leftover first.
          await removeLater(deps, ctx.state.target, ctx.state.old);
        } finally {
          await dropped;
        }
      },
    },
  };
}

/** A restore's state: always from a stored backup. */
export type RestoreFromBackup = RestoreState & { from: { backup: Backup } };

export function restorePlan(deps: Deps, instance: string, opts: { backup?: string; to?: string; allowFailedBackup?: boolean } = {}): Plan<RestoreFromBackup, RestoreResult> {
  deps.inv.requireInstance(instance);
  const backup = pickBackup(deps, instance, opts.backup, { allowFailed: opts.allowFailedBackup });
  const target = deps.inv.requireInstance(opts.to ?? instance);
  if (backup.manifest.db && !target.dbUrl) {
    throw new UsageError(`backup ${backup.id} holds a database but ${target.name} has no database configured`, 'give the target a database URL, or restore onto another instance');
  }
  const state: RestoreFromBackup = { ...restoreState({ backup }, target, { safetyCode: true }), dataFollows: true };
  return {
    command: 'restore',
    params: { instance, backup: backup.id, to: target.name },
    instance: target.name,
    state,
    steps: [...inOrder(restoreSteps(deps, target)), rebaselineStep<RestoreState>(deps, target.name)],
    undoFailed: (s) => restoreUndoFailed(deps, s),
    finally: async (s, status) => {
      leaveCriticalSection(deps, s, status);
      await dropReadAheads(s);
    },
    result: (s) => ({ backup: backup.id, instance, target: s.target.name, safetyBackup: s.safety?.id ?? null }),
    preview: async () => [
      `would restore backup ${backup.id} of ${instance} (taken ${backup.createdAt}) onto ${target.name} (${target.host}:${target.path})`,
      `the current state of ${target.name} would be saved first as a safety backup`,
    ],
  };
}

/** Where this run stands inside its critical section, recorded in the inventory (see HalfRestored). */
function criticalRecord(ctx: StepContext<RestoreState>) {
  const s = ctx.state;
  return {
    instance: s.target.name,
    runId: s.runId!,
    command: ctx.command ?? 'restore',
    safetyBackup: s.safety?.id ?? null,
    staging: s.staging,
    old: s.old,
    dbTouched: !!(s.commitSent || s.dbCommitted),
    dbKept: s.dbKept ?? null,
  };
}

function enterCriticalSection(deps: Deps, ctx: StepContext<RestoreState>, phase: HalfRestored['phase'], dbTouched: boolean): void {
  if (ctx.runId == null) return;
  ctx.state.runId = ctx.runId;
  deps.inv.setHalfRestored({ ...criticalRecord(ctx), phase, dbTouched: dbTouched || criticalRecord(ctx).dbTouched });
}

/**
 * For the plans' finally: a run that ended done or undone leaves its instance whole, so its record
 * goes; one whose undo failed keeps it (the instance is half-restored until opsdeck recover).
 */
export function leaveCriticalSection(deps: Deps, s: RestoreState, status: string): void {
  if (s.runId !== undefined && status !== 'undo-failed') deps.inv.clearHalfRestored(s.target.name, s.runId);
}

/** For Plan.undoFailed: what was left half-changed, and the one command that puts it right. */
export function restoreUndoFailed(deps: Deps, s: RestoreState): { message: string; hint: string } | undefined {
  if (s.runId === undefined || !deps.inv.getHalfRestored(s.target.name)) {
    return s.safety
      ? {
          message: `${s.target.name}'s state before this run is safety backup ${s.safety.id}`,
          hint: `check ${s.target.name}; to put that state back, run: opsdeck restore ${s.target.name} --backup ${s.safety.id}`,
        }
      : undefined;
  }
  return {
    message: `${s.target.name} IS LEFT HALF-RESTORED${s.safety ? `; its state before this run is safety backup ${s.safety.id}` : ''}`,
    hint: `when the host answers again, run: opsdeck recover ${s.target.name}`,
  };
}
