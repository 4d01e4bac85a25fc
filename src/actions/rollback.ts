import type { Backup, Instance } from '../../inventory/index.js';
import type { Plan } from '../core/plan.js';
import { UsageError } from '../core/errors.js';
import type { Deps } from '../deps/deps.js';
import { requireHealthy } from './app.js';
import { takeBackup } from './backup.js';
import { listReleases, previousRelease, RELEASE_ID, reload, schemaHash, switchTo, type Release } from './releases.js';
import { refuseRestoreLeftovers } from './release-restore.js';
import { loadDatabase } from './restore.js';
import { rebaselineStep } from './watch.js';

export interface RollbackState {
  inst: Instance;
  live?: Release;
  target?: Release;
  /** The backup to load when the target release's schema differs from the database's now. */
  restoreFrom?: Backup;
  safety?: Backup;
  switched: boolean;
  /** The previous-release record before the switch, put back by its undo. */
  previous?: string | null;
  loaded: boolean;
}

export interface RollbackResult {
  instance: string;
  from: string;
  to: string;
  revision: string | null;
  /** The backup loaded into the database (its schema differed), or null when the database stayed. */
  database: string | null;
  safetyBackup: string | null;
}

/**
 * What a rollback to `to` (default: the release live before the current one) would do: which release, and
 * whether the database goes back too. The database a release ran with is the backup taken just before
 * the release after it migrated; it is loaded only when the schema now differs from the one recorded
 * for the target, so a rollback over releases that changed no schema loses no data.
 */
export async function decideRollback(deps: Deps, inst: Instance, to?: string): Promise<{ live: Release; target: Release; restoreFrom?: Backup; note: string }> {
  const [all] = await Promise.all([listReleases(deps, inst), refuseRestoreLeftovers(deps, inst)]);
  const live = all.find((r) => r.live);
  if (!live)
    throw new UsageError(
      `${inst.name} is not in release mode (its path is not a link to a release)`,
      `turn it on with: opsdeck instance set ${inst.name} --releases 5; it converts at the next update`,
    );
  // By default the release that was live before this one (recorded at each switch); without a record
  // (releases made before it was kept), the one built before it.
  const previous = to === undefined ? await previousRelease(deps, inst) : undefined;
  const back = previous !== undefined && previous !== live.id ? all.findIndex((r) => r.id === previous) : -1;
  const i = to !== undefined ? all.findIndex((r) => r.id === to) : back >= 0 ? back : all.indexOf(live) - 1;
  const target = all[i];
  if (!target) {
    const ids = all.map((r) => `${r.id}${r.live ? ' (live)' : ''}`).join(', ');
    throw new UsageError(to === undefined ? `${inst.name} has no release live before the current one (${live.id})` : `${inst.name} has no release ${to}`, `its releases: ${ids}; pick one with --to`);
  }
  if (target.live) throw new UsageError(`release ${target.id} is the live one already`, 'pick another with --to');
  if (!inst.dbUrl) return { live, target, note: 'no database: only the code changes' };
  const now = await schemaHash(deps, inst);
  if (target.meta?.schema && target.meta.schema === now) return { live, target, note: 'the database schema is the one this release ran with: the database stays as it is' };
  // The database it ran with: the newest backup taken while it was live, before a release built on
  // it migrated; for releases recorded without `from`, the one built right after it.
  const builtOn = all.filter((r) => r.meta?.from === target.id && r.meta.backup).pop();
  const id = (builtOn ?? all[i + 1])?.meta?.backup;
  const backup = id ? deps.inv.getBackup(id) : undefined;
  if (!backup?.manifest.db)
    throw new UsageError(
      `the database schema differs from the one release ${target.id} ran with, and no backup of that database is recorded`,
      `restore one by hand (opsdeck backups ${inst.name}; opsdeck restore ${inst.name} --backup ID), or roll back to another release with --to`,
    );
  return { live, target, restoreFrom: backup, note: `the database schema differs from the one release ${target.id} ran with: backup ${backup.id} (taken before the next release migrated) is loaded` };
}

/**
 * rollback INSTANCE [--to RELEASE]: one switch of the link back to an earlier release, with its
 * database when the schema differs (a safety backup first, so that is undone too), the reload hook and
 * a health check. Any failure switches forward again.
 */
export function rollbackPlan(deps: Deps, name: string, opts: { to?: string } = {}): Plan<RollbackState, RollbackResult> {
  const inst = deps.inv.requireInstance(name);
  if (inst.maintenanceSince)
    throw new UsageError(`${name} is in maintenance (since ${inst.maintenanceSince}): another release would switch the site live`, `turn it off first: opsdeck maintenance ${name} off`);
  if (opts.to !== undefined && !RELEASE_ID.test(opts.to))
    throw new UsageError(`invalid release ${JSON.stringify(opts.to)}`, `a release id like 20261130T001500Z-1a2b3c4d5e; list them with: opsdeck instance show ${name}`);
  return {
    command: 'rollback',
    params: { instance: name, to: opts.to ?? null },
    instance: name,
    state: { inst, switched: false, loaded: false },
    steps: [
      {
        name: 'check',
        title: opts.to ? `Find release ${opts.to}` : 'Find the release live before the current one',
        explain: 'Reads the releases on the host and compares the database schema with the one the target release ran with; nothing changes yet.',
        run: async (ctx) => {
          const d = await decideRollback(deps, inst, opts.to);
          Object.assign(ctx.state, { live: d.live, target: d.target, restoreFrom: d.restoreFrom });
          ctx.log(`${d.live.id} -> ${d.target.id}; ${d.note}`);
        },
      },
      {
        name: 'safety',
        title: 'Back up the database before it is replaced',
        explain: 'Only when the database goes back too: a safety backup the undo loads again.',
        run: async (ctx) => {
          if (!ctx.state.restoreFrom) return ctx.log('the database stays: no backup needed');
          ctx.state.safety = await takeBackup(deps, inst, ctx, 'safety');
          ctx.log(`safety backup ${ctx.state.safety.id} taken`);
        },
      },
      {
        name: 'switch',
        title: 'Switch the instance back to the release',
        explain: 'A new link renamed over the old one, in one step.',
        run: async (ctx) => {
          ctx.state.previous = (await previousRelease(deps, inst)) ?? null;
          ctx.state.switched = true;
          await switchTo(deps, inst, ctx.state.target!.id, ctx);
          const rev = ctx.state.target!.meta?.revision;
          if (rev) deps.inv.updateInstance(name, { revision: rev });
        },
        undo: async (ctx) => {
          if (!ctx.state.switched) return;
          await switchTo(deps, inst, ctx.state.live!.id, ctx, ctx.state.previous ?? null);
          const rev = ctx.state.live!.meta?.revision;
          if (rev) deps.inv.updateInstance(name, { revision: rev });
          await reload(deps, inst, ctx);
        },
      },
      {
        name: 'reload',
        title: 'Run the reload hook',
        run: async (ctx) => reload(deps, inst, ctx),
      },
      {
        name: 'database',
        title: 'Load the database the release ran with',
        explain: 'Only when the schema differs: the backup taken before the next release migrated, loaded so it commits only whole.',
        run: async (ctx) => {
          if (!ctx.state.restoreFrom) return ctx.log('the database stays as it is');
          ctx.state.loaded = true;
          await loadDatabase(deps, ctx.state.restoreFrom, inst, ctx);
        },
        undo: async (ctx) => {
          if (ctx.state.loaded && ctx.state.safety) await loadDatabase(deps, ctx.state.safety, inst, ctx);
        },
      },
      {
        name: 'health',
        title: 'Check the site answers',
        explain: 'Asks the health URL; if it does not answer as expected, the rollback is undone.',
        run: async (ctx) => requireHealthy(deps.inv.requireInstance(name), ctx, deps.healthWaitMs),
      },
      rebaselineStep<RollbackState>(deps, name),
    ],
    result: (s) => ({
      instance: name,
      from: s.live!.id,
      to: s.target!.id,
      revision: s.target!.meta?.revision ?? null,
      database: s.restoreFrom?.id ?? null,
      safetyBackup: s.safety?.id ?? null,
    }),
    preview: async () => {
      const d = await decideRollback(deps, inst, opts.to);
      return [`roll ${name} on ${inst.host} back from release ${d.live.id} to ${d.target.id}; ${d.note}`];
    },
    undoFailed: (s) =>
      s.safety ? { message: `${name}'s database before this run is safety backup ${s.safety.id}`, hint: `to put it back, run: opsdeck restore ${name} --backup ${s.safety.id}` } : undefined,
  };
}
