/** A restore's state and the checks it makes before anything changes: which backup, room on the host, who will own the files. */
import { dirname } from 'node:path';
import type { Backup, Instance } from '../../inventory/index.js';
import { run } from '../remote/shell.js';
import { OpsError, UsageError } from '../core/errors.js';
import { shellFor, type Deps } from '../deps/deps.js';
import type { RestoredRelease } from './release-restore.js';
import type { ReadAhead } from './restore-data.js';

export interface RestoreState {
  /** Redaction statements run on the loaded copy before it commits (clone --redact, refresh). */
  redact?: string[];
  /** What is put in place: a stored backup, or (a live clone) another instance as it is now, streamed host to host. */
  from: { backup: Backup; live?: undefined } | { live: Instance; backup?: undefined };
  target: Instance;
  staging: string;
  old: string;
  safety?: Backup;
  dbCommitted: boolean;
  /** The load's COMMIT went out: the database may hold the new data even if the load then failed. */
  commitSent?: boolean;
  /**
   * What the database load kept aside for an undo, as its engine says (an engine that swaps tables
   * in keeps the old ones until the run is done); undefined: an undo loads the safety backup again.
   */
  dbKept?: string;
  swapped: boolean;
  /** The swapped-out tree's delete began: the swap can no longer be undone. */
  oldDeleting?: boolean;
  /** The run whose critical section is recorded in the inventory (see half_restored). */
  runId?: number;
  /** Which parts to put in place (clone --data-only / --code-only choose one). */
  parts: { code: boolean; db: boolean };
  /**
   * Whether the safety backup holds the code tree too. Within the run the tree is safe anyway (it is
   * renamed aside, not overwritten); the stored copy is for going back later. Clones onto unprotected
   * targets skip it: a staging tree of 300 MB need not be stored each time it is refreshed.
   */
  safetyCode: boolean;
  /** A restore onto a release-mode instance: the tree comes back as a new release (restoreAsRelease). */
  release?: RestoredRelease;
  /**
   * The data step runs right after the check step (a restore; not a clone, whose maintenance step
   * comes between): the check step then also asks what the safety backup needs of the tree (`tree`)
   * and starts reading the backup's streams from the store (`ahead`, see ReadAhead), which the plan
   * drops in its finally when no step took them (dropReadAheads).
   */
  dataFollows?: boolean;
  ahead?: { code?: ReadAhead; db?: ReadAhead };
  /** The staged tree's listing below its top, for its fingerprint once swapped in (see listStaged in restore.ts). */
  stagedList?: Promise<string | undefined>;
  /** What the check step found of the target's tree: whether it is there, and whether it has shared/ beside it (hasSharedDir). */
  tree?: { exists: boolean; shared?: boolean };
}

/** Stops the streams read ahead that no step took, and waits for their restic to end. */
export async function dropReadAheads(s: RestoreState): Promise<void> {
  await Promise.all([s.ahead?.code?.drop(), s.ahead?.db?.drop()]);
  s.ahead = undefined;
}

export const hasCode = (s: RestoreState) => s.parts.code && (s.from.live ? true : !!s.from.backup.manifest.code);
export const hasDb = (s: RestoreState) => s.parts.db && (s.from.live ? !!s.from.live.dbUrl : !!s.from.backup.manifest.db);
/** A backup of another instance must not bring its own local files (its database config, say). */
export const keepsLocal = (s: RestoreState) => (s.from.live ? s.from.live.name : s.from.backup.instance) !== s.target.name && s.target.localPaths.length > 0;

/**
 * The backup to restore: the one asked for, or the newest manual one whose last verification did
 * not fail. One that failed verification is restored only when asked for by id and allowed.
 */
export function pickBackup(deps: Deps, instance: string, id?: string, opts: { allowFailed?: boolean } = {}): Backup {
  if (id) {
    const b = deps.inv.requireBackup(id);
    if (b.instance !== instance) throw new UsageError(`backup ${id} belongs to ${b.instance}, not ${instance}`, `run: opsdeck restore ${b.instance} --backup ${id} --to ${instance}`);
    if (b.verifyFailed && !opts.allowFailed) {
      throw new UsageError(
        `backup ${id} of ${instance} failed its last verification: it does not match its manifest, so a restore of it may bring back damaged files or data`,
        `pick another (opsdeck backups ${instance}); verify it again (opsdeck backups verify ${id}: a pass clears the mark); or restore it anyway with --allow-failed-backup`,
      );
    }
    return b;
  }
  const b = deps.inv.latestBackup(instance);
  if (!b) {
    const failed = deps.inv.latestBackup(instance, ['manual'], { includeFailed: true });
    if (failed)
      throw new UsageError(`every backup of ${instance} failed its last verification`, `take a new one (opsdeck backup ${instance}), or restore one anyway with --backup ID --allow-failed-backup`);
    throw new UsageError(`instance ${instance} has no backup yet`, `take one with: opsdeck backup ${instance}`);
  }
  return b;
}

/** Why this backup and not a newer one, for the run's log: newer ones that failed verification. */
export function backupChoiceNotes(deps: Deps, b: Backup): string[] {
  if (b.verifyFailed) return [`backup ${b.id} failed its last verification; restoring it anyway, as --allow-failed-backup asked`];
  const skipped = deps.inv.listBackups(b.instance).filter((x) => x.kind === 'manual' && x.verifyFailed && x.createdAt > b.createdAt);
  return skipped.length ? [`backup ${b.id} (${b.createdAt}) chosen: the newer ${skipped.map((x) => `${x.id} (${x.createdAt})`).join(', ')} failed verification`] : [];
}

/**
 * Free space on the filesystem holding `dir` on the instance's host: bytes (df -Pk), inodes (df -Pi;
 * null where the filesystem has no fixed count, as btrfs) and its block size (stat -f).
 */
export async function freeSpace(deps: Deps, inst: Instance, dir: string): Promise<{ bytes: number; inodes: number | null; blockSize: number }> {
  const res = await run(shellFor(deps, inst), ['sh', '-c', 'df -Pk -- "$1" && df -Pi -- "$1" && stat -f -c %S -- "$1"', 'sh', dir]);
  const lines = res.stdout.trim().split('\n');
  const avail = Number(lines[1]?.split(/\s+/)[3]);
  const [inodes, ifree] = [Number(lines[3]?.split(/\s+/)[1]), Number(lines[3]?.split(/\s+/)[3])];
  const blockSize = Number(lines[4]);
  if (!Number.isFinite(avail) || !(blockSize > 0)) throw new OpsError(`cannot read free disk space on ${inst.host}: ${res.stdout.trim()}`);
  return { bytes: avail * 1024, inodes: inodes > 0 && Number.isFinite(ifree) ? ifree : null, blockSize };
}

/**
 * Who acts on the target's tree (the host's become user, else the login user), and whether that user
 * can do the swap (rename in the parent directory) and give every file back its owner: a non-root
 * user cannot. A restore of an instance onto itself through --become is refused then (it would not
 * be exact; --become root is); elsewhere the files belong to that user, and the log says so.
 */
export async function checkTreeUser(deps: Deps, s: RestoreState, log: (line: string, level?: 'warn') => void): Promise<void> {
  const { target } = s;
  const backup = s.from.backup;
  const host = deps.inv.requireHost(target.host);
  const parent = dirname(target.path);
  const res = await run(shellFor(deps, target), ['sh', '-c', 'id -un && id -u && id -g && if [ -w "$1" ] && [ -x "$1" ]; then echo writable; else echo read-only; fi', 'sh', parent]);
  const [user, uid, gid, access] = res.stdout.trim().split('\n');
  if (access !== 'writable') {
    throw new OpsError(
      `${user} cannot write ${parent} on ${target.host}, where the restore renames ${target.path} aside and puts the restored tree in its place`,
      1,
      host.become
        ? `let ${user} write ${parent} (on the host: chown ${user} ${parent}, or keep the tree in a directory ${user} owns), or act as root: opsdeck host set ${host.name} --become root`
        : `let ${user} write ${parent} on the host, or act as a user who can: opsdeck host set ${host.name} --become USER`,
    );
  }
  const owners = hasCode(s) ? backup?.manifest.code?.owners : undefined;
  if (!backup || !owners?.length) return;
  if (uid === '0') {
    if (host.become) log(`unpacking as root: every file gets back its owner and group (${owners.slice(0, 5).join(', ')}${owners.length > 5 ? ', ...' : ''})`);
    return;
  }
  const self = `${uid}:${gid}`;
  const foreign = owners.filter((o) => o !== self);
  if (!foreign.length) return;
  const what = `backup ${backup.id} holds files owned by ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ` and ${foreign.length - 5} more` : ''} (uid:gid), and ${user} (${self}), who unpacks them on ${target.host}, can only create files it owns`;
  if (host.become && backup.instance === target.name) {
    throw new OpsError(
      `${what}: the restore would not give them back their owners`,
      1,
      `unpack as root, which keeps every owner: opsdeck host set ${host.name} --become root (sudoers on the host: ${host.user} ALL=(root) NOPASSWD: ALL)`,
    );
  }
  log(`${what}: they will belong to ${user} (${self})`, 'warn');
}

/** Bytes and entries (files, directories, links) of a live instance's tree, for a clone's disk check. */
export async function treeSize(deps: Deps, inst: Instance): Promise<{ bytes: number; entries: number }> {
  const res = await shellFor(deps, inst).exec(['sh', '-c', 'du -sb -- "$1" | cut -f1 && find "$1" -printf . | wc -c', 'sh', inst.path]);
  const [bytes, entries] = res.stdout.trim().split('\n').map(Number);
  if (res.code !== 0 || !Number.isFinite(bytes) || !Number.isFinite(entries)) {
    throw new OpsError(`the code tree ${inst.path} of ${inst.name} cannot be read on host ${inst.host}: ${res.stderr.trim()}`, 1, `check the path with: opsdeck instance show ${inst.name}`);
  }
  return { bytes, entries };
}
