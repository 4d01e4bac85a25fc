import { randomBytes } from 'node:crypto';
import type { Backup, Instance, Manifest } from '../../inventory/index.js';
import type { Plan, StepContext, StepIO } from '../core/plan.js';
import { backupSnapshots, copyToAll } from './store.js';
import { CommandError, run } from '../remote/shell.js';
import { errorMessage, OpsError } from '../core/errors.js';
import { formatBytes } from '../core/format.js';
import { dbFor, loginShellFor, shellFor, type Deps } from '../deps/deps.js';
import { Meter, TarScanner } from './meter.js';
import { listTree, mirrorBackup, pendingBytes, recordList, snapshotOfList, storeHasSnapshot, type TreeList } from '../store/tree-mirror.js';
import { isMirrored, treeMirrorsOn } from '../store/tree-readback.js';
import { NotMirrorable, RACY_MARK, RACY_SINCE, TREE_KEY_LINE, treeKeyOf } from '../store/tree-index.js';
import { progressSum, relay, together } from './relay.js';
import { codeTarArgv, hasSharedDir, sharedDir } from './releases.js';

export function newBackupId(): string {
  const t = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '');
  return `${t}-${randomBytes(2).toString('hex')}`;
}

export const streamFile = (instance: string, stream: 'code' | 'db') => `${instance}.${stream === 'code' ? 'code.tar' : 'db.sql'}`;

/** Where a backup's stream sits in the store: its snapshot and the file name inside it. */
export function storedStream(b: Backup, stream: 'code' | 'db'): { snapshot: string; file: string } {
  const m = stream === 'code' ? b.manifest.code : b.manifest.db;
  if (!m) throw new OpsError(`backup ${b.id} has no ${stream === 'code' ? 'code tree' : 'database'}`);
  return { snapshot: m.snapshot, file: m.file ?? streamFile(b.instance, stream) };
}

/**
 * A fingerprint of the tree's stat data, computed on the host: any change to a file's content, mode,
 * name or link changes its ctime, which no user can set back. Undefined where find lacks -printf.
 */
export async function treeKey(deps: Deps, inst: Instance, signal?: AbortSignal, withShared = false): Promise<string | undefined> {
  // No pipefail in sh: the listing is captured first so a failing find cannot yield a hash. In release
  // mode shared/ is in the backup too, so it is in the fingerprint (its lines marked apart).
  // Racy files marked (RACY_MARK): a tree listed while a file may still change unseen gives a key no later listing gives.
  const script = `${RACY_SINCE}; cd -- "$1" && list=$(find . ${RACY_MARK} -printf "${TREE_KEY_LINE}") && if [ -n "$2" ]; then cd -- "$2" && list="$list\n$(find . ${RACY_MARK} -printf "S ${TREE_KEY_LINE}")" || exit 1; fi && printf "%s" "$list" | LC_ALL=C sort | sha256sum`;
  const res = await shellFor(deps, inst).exec(['sh', '-c', script, 'sh', inst.path, withShared ? sharedDir(inst.path) : ''], { signal });
  const key = res.stdout.split(' ')[0];
  return res.code === 0 && /^[0-9a-f]{64}$/.test(key) ? key : undefined;
}

/**
 * Streams the code tree from the host into the store as one tar snapshot. With `reuse`, a tree whose
 * stat fingerprint matches a stored backup's is not streamed again: that snapshot already holds it
 * (restic skips unchanged files by the same kind of stat data).
 */
export async function backupCode(
  deps: Deps,
  inst: Instance,
  id: string,
  ctx: StepIO,
  reuse = false,
  shared?: boolean,
  /** The host's list, started by the inspect step (treeMirrors on); undefined in it: a tree whose path is a link. */
  known?: Promise<TreeList | undefined>,
): Promise<NonNullable<Manifest['code']>> {
  const shell = shellFor(deps, inst);
  // Release mode: the live release and shared/ in one tar (SHARED_IN_TAR); a mirror holds one tree only.
  const withShared = shared ?? (await hasSharedDir(deps, inst, ctx.signal));
  let list: TreeList | undefined;
  if (withShared && treeMirrorsOn(deps.store)) ctx.log('code: streamed whole, not through the mirror: a release and its shared/ are two trees');
  else if (treeMirrorsOn(deps.store)) {
    try {
      list = (await known) ?? (await listTree(shell, inst.path, ctx.signal, (n) => ctx.progress(n)));
    } catch (err) {
      throw err instanceof CommandError ? unreadable(inst, err.result.stderr.trim()) : err;
    }
  }
  // The list came from the inspect step: the database's dump starts first, before the mirror's work here.
  if (known && list) await new Promise(setImmediate);
  if (list) {
    // The host's list is byte for byte the one a stored snapshot was made from: no file changed, so
    // that snapshot is this backup's tree too (restic would make the same one after reading every
    // file's stat); neither the list is parsed nor the mirror walked.
    const snapshot = snapshotOfList(deps.store, inst.name, mirrorSource(inst), list);
    const same =
      snapshot &&
      (await reusableTree(
        deps,
        deps.inv.listBackups(inst.name).find((b) => b.manifest.code?.snapshot === snapshot && !b.copiesOnlySince),
      ));
    if (same) return reusedTree(same, ctx);
    try {
      void list.entries;
    } catch (err) {
      if (!(err instanceof NotMirrorable)) throw err;
      ctx.log(`code: streamed whole, not through the mirror: ${err.message}`, 'warn');
      list = undefined;
    }
  }
  // Through a mirror, the fingerprint comes from the host's list: no second pass over the tree.
  const listed = list && (list.key ??= treeKeyOf(list.entries));
  const key = listed ?? (await treeKey(deps, inst, ctx.signal, withShared));
  if (list && listed) {
    // The bar's share of the tree, known now: the list and the files that will be fetched.
    if (known) ctx.progress(list.wire, list.wire + pendingBytes(deps.store, inst.name, mirrorSource(inst), list));
    // A tree the store holds by its fingerprint (one a restore just put in place, say): reused as
    // above, and its list recorded so the next backup knows it without parsing.
    const same = await reusableTree(deps, deps.inv.backupForTree(inst.name, listed));
    if (same) {
      recordList(deps.store, inst.name, mirrorSource(inst), list, same.manifest.code!.snapshot);
      return reusedTree(same, ctx);
    }
    return await backupCodeByMirror(deps, inst, id, ctx, listed, list);
  }
  if (reuse && key) {
    const same = deps.inv.backupForTree(inst.name, key);
    if (same) {
      ctx.log(`code tree unchanged since backup ${same.id}: its snapshot is reused`);
      // Its key covered shared/ only if its tar held it too (both follow withShared): said for backups from before the flag.
      return { ...same.manifest.code!, ...(withShared && { sharedDir: true }) };
    }
  }
  const tar = new TarScanner();
  const meter = new Meter({ tar, onBytes: (n) => ctx.progress(n) });
  // As the host's become user when it has one (shellFor): it can read the whole tree.
  const argv = codeTarArgv(inst.path, withShared);
  // The tar starts only once restic can lock the store: held back on its stdout it would hold the host's ssh channel.
  await deps.store.waitUntilUnlocked(ctx.signal);
  const snap = await guardTagged(deps, id, ctx, () =>
    relay(
      meter,
      async (sink, signal) => {
        const res = await shell.exec(argv, { stdout: sink, signal });
        if (res.code !== 0) throw new CommandError(shell.label, argv, res);
      },
      (src, signal) => deps.store.backup(src, streamFile(inst.name, 'code'), [`instance=${inst.name}`, `backup=${id}`, 'stream=code'], signal),
      { signal: ctx.signal },
    ),
  );
  const d = meter.digest();
  ctx.log(`code: ${tar.files} files, ${formatBytes(d.bytes)}, ${formatBytes(snap.dataAdded)} new stored`);
  const owners = [...tar.owners].sort((a, b) => b[1] - a[1]).map(([o]) => o);
  return {
    snapshot: snap.snapshotId,
    file: streamFile(inst.name, 'code'),
    bytes: d.bytes,
    sha256: d.sha256,
    files: tar.files,
    dirs: tar.dirs,
    symlinks: tar.symlinks,
    owners,
    ...(key && { treeKey: key }),
    // The tar holds shared/ as SHARED_IN_TAR: what a restore takes for shared files (old backups: none).
    ...(withShared && { sharedDir: true }),
  };
}

/**
 * The tree through the instance's mirror on the jump box (setting treeMirrors): the host lists its
 * files, only changed ones travel, restic stores the mirror with the host's file index beside it.
 */
async function backupCodeByMirror(deps: Deps, inst: Instance, id: string, ctx: StepIO, key: string, list: TreeList): Promise<NonNullable<Manifest['code']>> {
  // The newest recorded backup stored from this mirror: restic's parent, found without reading every snapshot of the store.
  // (One only a copy store keeps is not in this store.)
  const parent = deps.inv.listBackups(inst.name).find((b) => b.manifest.code && isMirrored(b.manifest.code) && !b.copiesOnlySince)?.manifest.code?.snapshot;
  const r = await guardTagged(deps, id, ctx, () =>
    mirrorBackup(deps.store, shellFor(deps, inst), {
      instance: inst.name,
      source: mirrorSource(inst),
      path: inst.path,
      tags: [`instance=${inst.name}`, `backup=${id}`, 'stream=code'],
      list,
      parent,
      signal: ctx.signal,
      progress: (n) => ctx.progress(n),
      log: (line) => ctx.log(line),
    }),
  );
  ctx.log(`code: ${r.tree.files} files, ${formatBytes(r.tree.bytes)}; ${r.fetched} changed, ${formatBytes(r.wire)} over the wire, ${formatBytes(r.dataAdded)} new stored`);
  return { ...r.tree, treeKey: key };
}

/**
 * `b`, when its tree snapshot may be named by a new backup: the store holds it (not only a copy
 * store; not forgotten behind opsdeck's back) and no backup naming it failed verification.
 * Retention keeps a snapshot while any kept backup names it.
 */
async function reusableTree(deps: Deps, b: Backup | undefined): Promise<Backup | undefined> {
  const snapshot = b?.manifest.code?.snapshot;
  if (!b || !snapshot || b.copiesOnlySince) return undefined;
  if (deps.inv.listBackups(b.instance).some((x) => x.verifyFailed && x.manifest.code?.snapshot === snapshot)) return undefined;
  return (await storeHasSnapshot(deps.store, snapshot)) ? b : undefined;
}

function reusedTree(same: Backup, ctx: StepIO): NonNullable<Manifest['code']> {
  ctx.log(`code tree unchanged since backup ${same.id}: its snapshot is reused`);
  return { ...same.manifest.code! };
}

/** What an instance's mirror is of: another host or path starts it afresh. */
const mirrorSource = (inst: Instance) => `${inst.host}:${inst.path}`;

/** Streams the database's dump from the host into the store; the password reaches the dump on its stdin. */
export async function backupDatabase(deps: Deps, inst: Instance, id: string, ctx: StepIO): Promise<NonNullable<Manifest['db']>> {
  const db = dbFor(deps, inst)!;
  const shell = loginShellFor(deps, inst);
  const rows = db.engine.rowCounter();
  const meter = new Meter({ sql: rows, onBytes: (n) => ctx.progress(n) });
  const argv = db.engine.dumpArgv(db.target);
  // The dump starts only once restic can lock the store: held back on its stdout, mariadb-dump loses
  // its server (net_write_timeout) and pg_dump holds its snapshot and locks meanwhile.
  await deps.store.waitUntilUnlocked(ctx.signal);
  const snap = await guardTagged(deps, id, ctx, () =>
    relay(
      meter,
      async (sink, signal) => {
        const res = await shell.exec(argv, { stdout: sink, secretLine: db.password, signal });
        if (res.code !== 0) throw new CommandError(shell.label, argv, res);
      },
      (src, signal) => deps.store.backup(src, streamFile(inst.name, 'db'), [`instance=${inst.name}`, `backup=${id}`, 'stream=db'], signal),
      { signal: ctx.signal },
    ),
  );
  const d = meter.digest();
  ctx.log(`database: ${Object.keys(rows.tables).length} tables, ${formatBytes(d.bytes)}, ${formatBytes(snap.dataAdded)} new stored`);
  return { kind: db.engine.kind, snapshot: snap.snapshotId, file: streamFile(inst.name, 'db'), bytes: d.bytes, sha256: d.sha256, tables: rows.tables, role: db.target.user };
}

/** On any failure, whatever restic stored under this backup's tag is dropped before the error goes on. */
async function guardTagged<T>(deps: Deps, id: string, ctx: StepIO, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    await deps.store.discardTagged(`backup=${id}`).catch((e: unknown) => {
      // The first error is the one to report; the leftover is said, and backups prune drops it.
      ctx.log(`could not drop what the failed backup ${id} left in the store (${errorMessage(e)}): backups prune drops it later`, 'warn');
    });
    throw err;
  }
}

/**
 * Streams the code tree and the database into the store side by side: they share nothing but the
 * SSH connection, so together they take about as long as the code tree alone.
 */
export async function snapshotInstance(
  deps: Deps,
  inst: Instance,
  id: string,
  ctx: StepIO,
  sizeHint?: number,
  withCode = true,
  reuse = false,
  /** Whether the tree has shared/ beside it, when the caller asked already (hasSharedDir). */
  knownShared?: boolean,
  /** The host's list of the tree, when the caller started it already (inspectInstance, with treeMirrors on). */
  listing?: Promise<TreeList | undefined>,
): Promise<Manifest> {
  // The tree's share of the bar may come only once its list is in (taken beside the dump): the code stream says it.
  let treeTotal = 0;
  const slot = progressSum((n) => ctx.progress(n, sizeHint === undefined ? undefined : sizeHint + treeTotal));
  const codeProgress = (n: number, total?: number) => {
    if (total !== undefined) treeTotal = total;
    slot(0)(n);
  };
  const sub = (i: number, signal: AbortSignal): StepIO => ({ ...ctx, signal, progress: i === 0 ? codeProgress : slot(i) });
  // Asked before the streams start: its refusal (a tree with its own .opsdeck-shared) then stops nothing half-way.
  const shared = withCode ? (knownShared ?? (await hasSharedDir(deps, inst, ctx.signal))) : false;
  const [code, db] = await together<[Manifest['code'] | undefined, Manifest['db'] | undefined]>(ctx.signal, [
    async (signal) => (withCode ? backupCode(deps, inst, id, sub(0, signal), reuse, shared, listing) : undefined),
    async (signal) => (inst.dbUrl ? backupDatabase(deps, inst, id, sub(1, signal)) : undefined),
  ]);
  return { ...(code && { code }), ...(db && { db }) };
}

/** Records a backup whose streams are in the store; only then does it count as one. */
export function recordBackup(deps: Deps, instance: string, kind: Backup['kind'], id: string, manifest: Manifest): Backup {
  const b: Backup = { id, instance, kind, createdAt: new Date().toISOString(), manifest, verifiedAt: null, runId: null };
  deps.inv.addBackup(b);
  return b;
}

/** A full backup of an instance (an unchanged tree reuses its stored snapshot), recorded. */
export async function takeBackup(deps: Deps, inst: Instance, ctx: StepIO, kind: Backup['kind'] = 'manual'): Promise<Backup> {
  const id = newBackupId();
  return recordBackup(deps, inst.name, kind, id, await snapshotInstance(deps, inst, id, ctx, undefined, true, true));
}

const unreadable = (inst: Instance, why: string) =>
  new OpsError(`the code tree ${inst.path} of ${inst.name} cannot be read on host ${inst.host}: ${why}`, 1, `check the path with: opsdeck instance show ${inst.name}`);

/**
 * Sizes what the backup will send (for the progress bar) and checks the instance is there; says
 * whether shared/ goes with it. With treeMirrors on, the host's list of the tree is started here,
 * side by side with the shared/ question, and the streams step awaits it beside the database's dump
 * (which so waits for no walk of the tree): it tells what will travel, and the tree's share of the
 * bar comes with it. A tree that cannot be read is said there.
 */
export async function inspectInstance(deps: Deps, inst: Instance, signal?: AbortSignal): Promise<{ bytes: number; shared: boolean; listing?: Promise<TreeList | undefined> }> {
  const shell = shellFor(deps, inst);
  if (treeMirrorsOn(deps.store)) {
    // A tree whose path is a link (release mode) is not listed: its backup streams whole.
    const listing = listTree(shell, inst.path, signal, undefined, true);
    // Awaited by the streams step; a failure before then is not left unhandled.
    listing.catch(() => undefined);
    const shared = await hasSharedDir(deps, inst, signal).catch(async (err: unknown) => {
      await listing.catch(() => undefined);
      throw err;
    });
    if (!shared) return { bytes: 0, shared: false, listing };
    await listing.catch(() => undefined);
  }
  const shared = await hasSharedDir(deps, inst, signal);
  // Into /dev/null GNU tar reads no file's data, yet counts exactly the bytes the backup's tar will send
  // (LC_ALL=C: the count is read from its English words).
  const [, ...tar] = codeTarArgv(inst.path, shared, '/dev/null');
  const res = await shell.exec(['env', 'LC_ALL=C', 'tar', '--totals', ...tar], { signal });
  if (res.code !== 0) throw unreadable(inst, res.stderr.trim());
  return { bytes: Number(/Total bytes written: (\d+)/.exec(res.stderr)?.[1] ?? 0), shared };
}

export interface BackupState {
  id: string;
  manifest: Manifest;
  sizeHint?: number;
  /** Whether shared/ goes with the tree (release mode), as the inspect step found. */
  shared?: boolean;
  /** The host's list of the tree (treeMirrors on), as the inspect step started it. */
  listing?: Promise<TreeList | undefined>;
  backup?: Backup;
}

export function backupSteps(deps: Deps, inst: Instance, kind: Backup['kind']) {
  type S = BackupState;
  return [
    {
      name: 'inspect',
      title: `Connect to ${inst.host} and size ${inst.path}`,
      explain: 'Checks the host key, logs in and measures the code tree. If it fails, check the host with `opsdeck host check`.',
      run: async (ctx) => {
        const { bytes: tree, shared, listing } = await inspectInstance(deps, inst, ctx.signal);
        ctx.state.shared = shared;
        ctx.state.listing = listing;
        // The bar's total is all that will flow: the tree, and a dump the size of the last one; without one it is unknown.
        const dump = inst.dbUrl ? deps.inv.listBackups(inst.name).find((b) => b.manifest.db)?.manifest.db?.bytes : 0;
        ctx.state.sizeHint = dump === undefined ? undefined : tree + dump;
      },
    },
    {
      name: 'streams',
      title: inst.dbUrl ? 'Back up the code tree and the database' : 'Back up the code tree',
      explain: 'Streams a tar of the code tree and a dump of the database into the store side by side, hashing both and counting rows.',
      run: async (ctx) => {
        ctx.state.manifest = await snapshotInstance(deps, inst, ctx.state.id, ctx, ctx.state.sizeHint, true, false, ctx.state.shared, ctx.state.listing);
      },
      undo: async (ctx) => deps.store.discardTagged(`backup=${ctx.state.id}`),
    },
    {
      name: 'record',
      title: 'Record the backup and its manifest',
      run: async (ctx) => {
        ctx.state.backup = recordBackup(deps, inst.name, kind, ctx.state.id, ctx.state.manifest);
      },
      undo: async (ctx) => deps.inv.removeBackup(ctx.state.id),
    },
    // The copy stores (settings storeCopies): a copy that fails is a warning; backups copy catches up.
    ...(deps.store.copies.length
      ? [{ name: 'copy', title: 'Copy the backup into the copy stores', run: async (ctx: StepContext<S>) => void (await copyToAll(deps.store, backupSnapshots([ctx.state.backup!]), ctx)) }]
      : []),
  ] satisfies Plan<S>['steps'];
}

export function backupPlan(deps: Deps, instanceName: string): Plan<BackupState, Backup> {
  const inst = deps.inv.requireInstance(instanceName);
  const state: BackupState = { id: newBackupId(), manifest: {} };
  return {
    command: 'backup',
    params: { instance: inst.name },
    instance: inst.name,
    state,
    steps: backupSteps(deps, inst, 'manual'),
    result: (s) => s.backup!,
    preview: async () => [`would back up ${inst.path} on ${inst.host}${inst.dbUrl ? ` and database ${inst.dbUrl}` : ''} into ${deps.store.repository}`],
  };
}

/** Runs `argv` on the instance's host and returns stdout, throwing on a non-zero exit. */
export async function onHost(deps: Deps, inst: Instance, argv: string[]): Promise<string> {
  return (await run(shellFor(deps, inst), argv)).stdout;
}
