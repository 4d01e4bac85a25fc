import { randomBytes } from 'node:crypto';
import type { Backup, Instance, Manifest } from '../../inventory/index.js';
import { dumpArgv } from '../databases/postgres.js';
import type { Plan, StepContext } from '../engine/plan.js';
import { CommandError, run } from '../remote/shell.js';
import { OpsError } from '../util/errors.js';
import { dbFor, shellFor, type Deps } from './deps.js';
import { CopyCounter, Meter, TarScanner } from './meter.js';
import { relay } from './relay.js';

export function newBackupId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '');
  return `${t}-${randomBytes(2).toString('hex')}`;
}

export const streamFile = (instance: string, stream: 'code' | 'db') => `${instance}.${stream === 'code' ? 'code.tar' : 'db.sql'}`;

/** Streams the code tree from the host into the store as one tar snapshot. */
export async function backupCode(deps: Deps, inst: Instance, id: string, ctx: StepContext<unknown>, totalHint?: number): Promise<NonNullable<Manifest['code']>> {
  const shell = shellFor(deps, inst);
  const tar = new TarScanner();
  const meter = new Meter({ tar, onBytes: (n) => ctx.progress(n, totalHint) });
  const argv = ['tar', '--numeric-owner', '-C', inst.path, '-cf', '-', '.'];
  const snap = await guardTagged(deps, id, () =>
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
  ctx.log(`code: ${tar.files} files, ${d.bytes} bytes, ${snap.dataAdded} new bytes stored`);
  return { snapshot: snap.snapshotId, bytes: d.bytes, sha256: d.sha256, files: tar.files, dirs: tar.dirs, symlinks: tar.symlinks };
}

/** Streams pg_dump from the host into the store; the password reaches pg_dump on its stdin. */
export async function backupDatabase(deps: Deps, inst: Instance, id: string, ctx: StepContext<unknown>): Promise<NonNullable<Manifest['db']>> {
  const db = dbFor(deps, inst)!;
  const shell = shellFor(deps, inst);
  const rows = new CopyCounter();
  const meter = new Meter({ sql: rows, onBytes: (n) => ctx.progress(n) });
  const argv = dumpArgv(db.target);
  const snap = await guardTagged(deps, id, () =>
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
  ctx.log(`database: ${Object.keys(rows.tables).length} tables, ${d.bytes} bytes, ${snap.dataAdded} new bytes stored`);
  return { kind: 'postgres', snapshot: snap.snapshotId, bytes: d.bytes, sha256: d.sha256, tables: rows.tables };
}

/** On any failure, whatever restic stored under this backup's tag is dropped before the error goes on. */
async function guardTagged<T>(deps: Deps, id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    await deps.store.discardTagged(`backup=${id}`).catch(() => {});
    throw err;
  }
}

/** Sizes the tree (for the progress bar) and checks the instance is there. */
export async function inspectInstance(deps: Deps, inst: Instance): Promise<{ bytes: number }> {
  const shell = shellFor(deps, inst);
  const res = await shell.exec(['du', '-sb', '--', inst.path]);
  if (res.code !== 0) {
    throw new OpsError(`the code tree ${inst.path} of ${inst.name} cannot be read on host ${inst.host}: ${res.stderr.trim()}`, 1, `check the path with: opsdeck instance show ${inst.name}`);
  }
  return { bytes: Number(res.stdout.split(/\s/)[0]) || 0 };
}

export interface BackupState {
  id: string;
  manifest: Manifest;
  sizeHint?: number;
  backup?: Backup;
}

export function backupSteps(deps: Deps, inst: Instance, kind: Backup['kind']) {
  type S = BackupState;
  const steps: Plan<S>['steps'] = [
    {
      name: 'inspect',
      title: `Connect to ${inst.host} and size ${inst.path}`,
      explain: 'Checks the host key, logs in and measures the code tree. If it fails, check the host with `opsdeck host check`.',
      run: async (ctx) => {
        ctx.state.sizeHint = (await inspectInstance(deps, inst)).bytes;
      },
    },
    {
      name: 'code',
      title: 'Back up the code tree',
      explain: 'Streams a tar of the code tree into the store, hashing it on the way.',
      run: async (ctx) => {
        ctx.state.manifest.code = await backupCode(deps, inst, ctx.state.id, ctx as StepContext<unknown>, ctx.state.sizeHint);
      },
      undo: async (ctx) => deps.store.discardTagged(`backup=${ctx.state.id}`),
    },
  ];
  if (inst.dbUrl) {
    steps.push({
      name: 'database',
      title: 'Back up the database',
      explain: 'Streams pg_dump into the store and counts the rows of every table.',
      run: async (ctx) => {
        ctx.state.manifest.db = await backupDatabase(deps, inst, ctx.state.id, ctx as StepContext<unknown>);
      },
      undo: async (ctx) => deps.store.discardTagged(`backup=${ctx.state.id}`),
    });
  }
  steps.push({
    name: 'record',
    title: 'Record the backup and its manifest',
    run: async (ctx) => {
      const b: Backup = { id: ctx.state.id, instance: inst.name, kind, createdAt: new Date().toISOString(), manifest: ctx.state.manifest, verifiedAt: null, runId: null };
      deps.inv.addBackup(b);
      ctx.state.backup = b;
    },
    undo: async (ctx) => deps.inv.removeBackup(ctx.state.id),
  });
  return steps;
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
