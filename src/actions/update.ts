import type { Backup, Instance } from '../../inventory/index.js';
import type { Plan } from '../core/plan.js';
import { UsageError } from '../core/errors.js';
import { checkRef } from '../../inventory/validate.js';
import { gitCheckout, gitFetch, gitLog, gitLogIfKnown, gitRemoteRef, gitResolve, gitState, maintenanceOff, maintenanceOn, requireHealthy, runHook } from './app.js';
import { takeBackup } from './backup.js';
import type { Deps } from '../deps/deps.js';
import { loadDatabase, putCodeBack } from './restore.js';
import { rebaselineStep } from './watch.js';

export interface UpdateState {
  inst: Instance;
  /** The ref asked for: the branch for update, a tag or revision for upgrade. */
  ref: string;
  branch: string | null;
  from?: string;
  to?: string;
  commits: string[];
  backup?: Backup;
  migrated: boolean;
}

export interface UpdateResult {
  instance: string;
  from: string;
  to: string;
  commits: number;
  backup: string;
}

/**
 * update (tip of the instance's branch) and upgrade (--to REF) are one plan: backup; maintenance on;
 * check out; migrate; maintenance off; health check. A failure undoes the done steps: the health
 * check failing puts the site back in maintenance, the database and the code back to the backup,
 * and takes it out of maintenance again, on the old version.
 */
export function updatePlan(deps: Deps, name: string, opts: { to?: string } = {}): Plan<UpdateState, UpdateResult> {
  const inst = deps.inv.requireInstance(name);
  const upgrade = opts.to !== undefined;
  const branch = upgrade ? null : inst.branch;
  if (!upgrade && !branch)
    throw new UsageError(`${name} follows no branch, so there is nothing to update to`, `set one with: opsdeck instance set ${name} --branch main, or upgrade to a tag with --to`);
  const ref = upgrade ? checkRef(opts.to!) : checkRef(branch!);
  const state: UpdateState = { inst, ref, branch, commits: [], migrated: false };

  /** Read-only: what is deployed, and what the ref names in origin (no fetch, so dry runs change nothing). */
  const resolveTarget = async () => {
    const cur = await gitState(deps, inst);
    if (!cur) throw new UsageError(`${inst.path} on ${inst.host} is not a git checkout`, 'update and upgrade work on instances deployed from git');
    const remote = await gitRemoteRef(deps, inst, ref);
    const to = remote ?? (/^[0-9a-f]{7,40}$/.test(ref) ? ref : undefined);
    if (!to) throw new UsageError(`the repository of ${name} has no tag or branch ${ref}`, `list tags on the host with: git -C ${inst.path} ls-remote --tags origin`);
    return { from: cur.revision, to, commits: await gitLogIfKnown(deps, inst, cur.revision, to) };
  };

  return {
    command: upgrade ? 'upgrade' : 'update',
    params: { instance: name, to: ref },
    instance: name,
    state,
    steps: [
      {
        name: 'resolve',
        title: `Find ${upgrade ? ref : `the tip of ${ref}`} in the repository`,
        explain: 'Asks the origin repository what the target revision is (git ls-remote); nothing changes yet.',
        run: async (ctx) => {
          const t = await resolveTarget();
          Object.assign(ctx.state, { from: t.from, to: t.to, commits: t.commits ?? [] });
          ctx.log(`${t.from.slice(0, 10)} -> ${t.to.slice(0, 10)}`);
        },
      },
      {
        name: 'backup',
        title: 'Back up the instance',
        explain: 'A full backup (code tree with its .git, and database) that any later failure is undone to.',
        run: async (ctx) => {
          ctx.state.backup = await takeBackup(deps, inst, ctx);
          ctx.log(`backup ${ctx.state.backup.id} taken`);
        },
      },
      {
        name: 'maintenance-on',
        title: 'Put the site in maintenance',
        run: async (ctx) => maintenanceOn(deps, inst, ctx),
        undo: async (ctx) => maintenanceOff(deps, deps.inv.requireInstance(inst.name), ctx),
      },
      {
        name: 'checkout',
        title: 'Fetch and check out the new code',
        run: async (ctx) => {
          await gitFetch(deps, inst, ctx.signal);
          const to = await gitResolve(deps, inst, ctx.state.to!);
          ctx.state.commits = await gitLog(deps, inst, ctx.state.from!, to);
          ctx.log(`${ctx.state.commits.length} commits: ${ctx.state.commits.slice(0, 5).join('; ')}${ctx.state.commits.length > 5 ? '; ...' : ''}`);
          await gitCheckout(deps, inst, to, ctx.state.branch, ctx.signal);
          ctx.state.to = to;
          deps.inv.updateInstance(inst.name, { revision: to });
        },
        undo: async (ctx) => {
          // The tree exactly as backed up (.git and untracked files too), not just the old commit.
          await putCodeBack(deps, ctx.state.backup!, deps.inv.requireInstance(inst.name), ctx);
          deps.inv.updateInstance(inst.name, { revision: ctx.state.from! });
        },
      },
      {
        name: 'migrate',
        title: 'Run the migrations',
        explain: "Runs the instance's migrate hook with the database's PG* settings.",
        run: async (ctx) => {
          ctx.state.migrated = true;
          if (!(await runHook(deps, inst, 'migrate', ctx))) ctx.log('no migrate hook: nothing to run');
        },
        undo: async (ctx) => {
          if (ctx.state.migrated && ctx.state.backup?.manifest.db) await loadDatabase(deps, ctx.state.backup, inst, ctx);
        },
      },
      {
        name: 'maintenance-off',
        title: 'Take the site out of maintenance',
        run: async (ctx) => maintenanceOff(deps, inst, ctx),
        // Rolling back happens behind the maintenance page again.
        undo: async (ctx) => maintenanceOn(deps, inst, ctx),
      },
      {
        name: 'health',
        title: 'Check the site answers',
        explain: 'Asks the health URL; if it does not answer as expected, everything above is undone.',
        run: async (ctx) => requireHealthy(deps.inv.requireInstance(inst.name), ctx),
      },
      rebaselineStep<UpdateState>(deps, name),
    ],
    result: (s) => ({ instance: name, from: s.from!, to: s.to!, commits: s.commits.length, backup: s.backup!.id }),
    preview: async () => {
      const t = await resolveTarget();
      return [
        `${upgrade ? 'upgrade' : 'update'} ${name} on ${inst.host} from ${t.from.slice(0, 10)} to ${t.to.slice(0, 10)} (${ref}): ${t.commits ? `${t.commits.length} commits` : 'commits not fetched yet (a dry run fetches nothing)'}`,
        ...(t.commits ?? []).map((c) => `  ${c}`),
        inst.hooks.migrate ? `then run: ${inst.hooks.migrate.join(' ')}` : 'no migrate hook is set',
      ];
    },
  };
}

/** maintenance INSTANCE on|off as a plan of one step, so it is locked and audited like the rest. */
export function maintenancePlan(deps: Deps, name: string, mode: string): Plan<{ inst: Instance }, { instance: string; maintenance: boolean }> {
  const inst = deps.inv.requireInstance(name);
  if (mode !== 'on' && mode !== 'off') throw new UsageError(`maintenance takes on or off, not ${JSON.stringify(mode)}`, `run: opsdeck maintenance ${name} on`);
  return {
    command: 'maintenance',
    params: { instance: name, mode },
    instance: name,
    // The site can go behind its maintenance page while it is half-restored, and come out after.
    whileHalfRestored: true,
    state: { inst },
    steps: [
      {
        name: `maintenance-${mode}`,
        title: mode === 'on' ? 'Put the site in maintenance' : 'Take the site out of maintenance',
        run: async (ctx) => (mode === 'on' ? maintenanceOn(deps, inst, ctx) : maintenanceOff(deps, inst, ctx)),
      },
    ],
    result: () => ({ instance: name, maintenance: mode === 'on' }),
  };
}
