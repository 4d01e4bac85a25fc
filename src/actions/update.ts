import type { Backup, Instance } from '../../inventory/index.js';
import type { Plan, Step, StepContext } from '../core/plan.js';
import { UsageError } from '../core/errors.js';
import { parseAge } from '../core/format.js';
import { checkRef } from '../../inventory/validate.js';
import { gitCheckout, gitFetch, gitLog, gitLogIfKnown, gitRemoteRef, gitResolve, gitState, maintenanceOff, maintenanceOn, requireHealthy, runHook } from './app.js';
import { takeBackup } from './backup.js';
import { shellFor, type Deps } from '../deps/deps.js';
import { loadDatabase } from './restore.js';
import { putCodeBack } from './restore-tree.js';
import { rebaselineStep } from './watch.js';
import {
  adoptShared,
  buildRelease,
  listReleases,
  liveRelease,
  previousRelease,
  pruneReleases,
  releaseId,
  reload,
  removeRelease,
  schemaHash,
  switchTo,
  writeReleaseMeta,
  releasesDir,
  unshare,
} from './releases.js';
import { refuseRestoreLeftovers } from './release-restore.js';
import { backToReleases, convertToInPlace, convertToReleases, finishInPlace, revertHalfConversion, undoConversion, type Conversion } from './release-conversion.js';

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
  /** --lag: the newest commit of the branch at least this old (e.g. 3d) is deployed, never an older one than is live. */
  lag?: string;
  /** With --lag, when the commit it names is already deployed (or older): nothing changes. */
  upToDate?: boolean;
  /** Release mode: the release live before, the one built, what converting did. */
  release?: {
    live?: string;
    next?: string;
    conversion?: Conversion;
    adopted?: string[];
    switched?: boolean;
    /** The previous-release record before the switch, put back by its undo. */
    previous?: string | null;
    schema?: string | null;
    removed?: string[];
  };
  /** Back to in place (--releases 0 on a release-mode instance): the release whose directory came back to the path. */
  inPlace?: { id: string; restored: string[] };
}

export interface UpdateResult {
  instance: string;
  from: string;
  to: string;
  commits: number;
  /** The backup taken first; null when --lag found nothing newer to deploy. */
  backup: string | null;
  /** Release mode: the release now live. */
  release?: string;
  upToDate?: boolean;
}

/**
 * update (tip of the instance's branch) and upgrade (--to REF) are one plan: backup; maintenance on;
 * check out; migrate; maintenance off; health check. A failure undoes the done steps: the health
 * check failing puts the site back in maintenance, the database and the code back to the backup,
 * and takes it out of maintenance again, on the old version.
 */
export function updatePlan(deps: Deps, name: string, opts: { to?: string; lag?: string } = {}): Plan<UpdateState, UpdateResult> {
  const inst = deps.inv.requireInstance(name);
  const upgrade = opts.to !== undefined;
  if (opts.lag !== undefined && upgrade) throw new UsageError('--lag picks a commit of the branch update follows; upgrade --to names its own', 'use one or the other');
  const lagMs = opts.lag !== undefined ? parseAge(opts.lag) : undefined;
  const branch = upgrade ? null : inst.branch;
  if (!upgrade && !branch)
    throw new UsageError(`${name} follows no branch, so there is nothing to update to`, `set one with: opsdeck instance set ${name} --branch main, or upgrade to a tag with --to`);
  const ref = upgrade ? checkRef(opts.to!) : checkRef(branch!);
  const state: UpdateState = { inst, ref, branch, commits: [], migrated: false, ...(opts.lag !== undefined && { lag: opts.lag }) };
  const releases = (inst.releases ?? 0) > 0;
  // The maintenance page lives in the live release's tree: a new release would go live without it.
  if (releases && inst.maintenanceSince)
    throw new UsageError(
      `${name} is in maintenance (since ${inst.maintenanceSince}): in release mode the new release would switch the site live`,
      `turn it off first: opsdeck maintenance ${name} off`,
    );

  /** Read-only: what is deployed, and what the ref names in origin (no fetch, so dry runs change nothing). */
  const resolveTarget = async () => {
    const cur = await gitState(deps, inst);
    if (!cur) throw new UsageError(`${inst.path} on ${inst.host} is not a git checkout`, 'update and upgrade work on instances deployed from git');
    if (lagMs !== undefined) {
      const to = await gitLagged(deps, inst, ref, lagMs, opts.lag!);
      // Never backwards: a lagged commit the live one already contains leaves the instance as it is.
      const behind = (await shellFor(deps, inst).exec(['git', '-C', inst.path, 'merge-base', '--is-ancestor', to, cur.revision])).code === 0;
      return { from: cur.revision, to: behind ? cur.revision : to, upToDate: behind, commits: behind ? [] : await gitLogIfKnown(deps, inst, cur.revision, to) };
    }
    const remote = await gitRemoteRef(deps, inst, ref);
    const to = remote ?? (/^[0-9a-f]{7,40}$/.test(ref) ? ref : undefined);
    if (!to) throw new UsageError(`the repository of ${name} has no tag or branch ${ref}`, `list tags on the host with: git -C ${inst.path} ls-remote --tags origin`);
    return { from: cur.revision, to, upToDate: false, commits: await gitLogIfKnown(deps, inst, cur.revision, to) };
  };
  const skip = (s: UpdateState) => s.upToDate === true;

  const backupStep: Step<UpdateState> = {
    name: 'backup',
    title: 'Back up the instance',
    explain: 'A full backup (code tree with its .git, and database) that any later failure is undone to.',
    run: async (ctx) => {
      ctx.state.backup = await takeBackup(deps, inst, ctx);
      ctx.log(`backup ${ctx.state.backup.id} taken`);
    },
  };

  const health: Step<UpdateState> = {
    name: 'health',
    title: 'Check the site answers',
    explain: 'Asks the health URL; if it does not answer as expected, everything above is undone.',
    run: async (ctx) => requireHealthy(deps.inv.requireInstance(inst.name), ctx, deps.healthWaitMs),
  };

  // An instance set back to --releases 0 becomes a directory again before the in-place update; the
  // other releases and shared/ go only once it succeeded.
  const backToInPlaceStep: Step<UpdateState> = {
    name: 'in-place',
    title: 'Check the instance path is a directory (in place)',
    explain: 'When release mode was turned off (--releases 0) and the path is still a link to a release: that release moves back to the path, its shared files back inside it.',
    run: async (ctx) => {
      ctx.state.inPlace = await convertToInPlace(deps, inst, ctx);
      if (!ctx.state.inPlace) ctx.log(`${inst.path} is a directory: nothing to convert`);
    },
    undo: async (ctx) => {
      if (ctx.state.inPlace) await backToReleases(deps, inst, ctx.state.inPlace);
    },
  };

  const inPlaceSteps: Step<UpdateState>[] = [
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
        if (!ctx.state.migrated || !ctx.state.backup?.manifest.db) return;
        ctx.log(`the site kept serving during the migrations: what it wrote after backup ${ctx.state.backup.id} (${ctx.state.backup.createdAt}) is not in the database loaded back`, 'warn');
        await loadDatabase(deps, ctx.state.backup, inst, ctx);
      },
    },
    {
      name: 'maintenance-off',
      title: 'Take the site out of maintenance',
      run: async (ctx) => maintenanceOff(deps, inst, ctx),
      // Rolling back happens behind the maintenance page again.
      undo: async (ctx) => maintenanceOn(deps, inst, ctx),
    },
    health,
    rebaselineStep<UpdateState>(deps, name),
    {
      name: 'releases-gone',
      title: 'Remove the releases left from release mode',
      final: true,
      run: async (ctx) => {
        if (ctx.state.inPlace) await finishInPlace(deps, inst, ctx);
      },
    },
  ];

  // Release mode: the new code is built beside the live release and switched in by one rename; the
  // site keeps serving the old release meanwhile, with no maintenance page.
  const releaseSteps: Step<UpdateState>[] = [
    {
      name: 'convert',
      title: 'Make the instance path a link to its first release',
      explain: 'Only on the first update in release mode: the directory becomes the first release, its local and shared paths move to shared/.',
      run: async (ctx) => {
        const rel: NonNullable<UpdateState['release']> = (ctx.state.release = {});
        // A conversion an earlier run left half-done is undone first: the tree is then as before it.
        await revertHalfConversion(deps, inst, ctx);
        await refuseRestoreLeftovers(deps, inst);
        const live = await liveRelease(deps, inst);
        if (live) return void Object.assign(rel, { live });
        // In the state as it goes: if a step of it fails, this step's undo finds what it did.
        const conversion = await convertToReleases(deps, inst, ctx.state.from!, ctx, (c) => (rel.conversion = c));
        rel.live = conversion.id;
      },
      undo: async (ctx) => {
        const c = ctx.state.release?.conversion;
        if (c) await undoConversion(deps, inst, c, ctx);
      },
    },
    {
      name: 'build',
      title: 'Build the new release beside the live one',
      explain: 'Clones the repository into a new release directory, checks out the target, links the shared paths and runs the install hook there; the live release is untouched.',
      run: async (ctx) => {
        const rel = ctx.state.release!;
        const taken = (await listReleases(deps, inst)).map((r) => r.id);
        rel.next = releaseId(ctx.state.to!, taken);
        rel.adopted = await adoptShared(deps, inst, rel.live!);
        await buildRelease(deps, inst, rel.next, rel.live!, ctx.state.to!, ctx.state.branch, ctx);
        const dir = { ...inst, path: `${releasesDir(inst.path)}/${rel.next}` };
        ctx.state.to = await gitResolve(deps, dir, ctx.state.to!);
        ctx.state.commits = await gitLog(deps, dir, ctx.state.from!, ctx.state.to).catch(() => []);
        ctx.log(`${ctx.state.commits.length} commits: ${ctx.state.commits.slice(0, 5).join('; ')}${ctx.state.commits.length > 5 ? '; ...' : ''}`);
      },
      undo: async (ctx) => {
        const next = ctx.state.release?.next;
        if (next) await removeRelease(deps, inst, next);
        await unshare(deps, inst, ctx.state.release?.adopted ?? []);
      },
    },
    {
      name: 'migrate',
      title: 'Run the migrations of the new release',
      explain: "Runs the migrate hook in the new release's directory while the live one keeps serving; undone by loading the backup.",
      run: async (ctx) => {
        // Without a migrate hook nothing here changes the database: an undo then leaves it alone,
        // and the writes the live site took meanwhile stay.
        ctx.state.migrated = !!inst.hooks.migrate?.length;
        const dir = { ...inst, path: `${releasesDir(inst.path)}/${ctx.state.release!.next}` };
        if (!(await runHook(deps, dir, 'migrate', ctx))) ctx.log('no migrate hook: nothing to run');
        ctx.state.release!.schema = await schemaHash(deps, inst);
      },
      undo: async (ctx) => {
        if (!ctx.state.migrated || !ctx.state.backup?.manifest.db) return;
        ctx.log(`the site kept serving during the migrations: what it wrote after backup ${ctx.state.backup.id} (${ctx.state.backup.createdAt}) is not in the database loaded back`, 'warn');
        await loadDatabase(deps, ctx.state.backup, inst, ctx);
      },
    },
    {
      name: 'switch',
      title: 'Switch the instance to the new release',
      explain: 'A new link renamed over the old one: every request is answered by the old release or the new one, never neither.',
      run: async (ctx) => {
        const rel = ctx.state.release!;
        await writeReleaseMeta(deps, inst, { id: rel.next!, revision: ctx.state.to!, at: new Date().toISOString(), backup: ctx.state.backup?.id ?? null, schema: rel.schema ?? null, from: rel.live! });
        rel.previous = (await previousRelease(deps, inst)) ?? null;
        rel.switched = true;
        await switchTo(deps, inst, rel.next!, ctx);
        deps.inv.updateInstance(inst.name, { revision: ctx.state.to! });
      },
      undo: async (ctx) => {
        const rel = ctx.state.release;
        if (!rel?.switched) return;
        await switchTo(deps, inst, rel.live!, ctx, rel.previous ?? null);
        deps.inv.updateInstance(inst.name, { revision: ctx.state.from! });
        // The old code is served again: caches of the new one (opcache) must go too.
        await reload(deps, inst, ctx);
      },
    },
    {
      name: 'reload',
      title: 'Run the reload hook',
      explain: 'PHP-FPM, opcache: what serves the code picks up the new release.',
      run: async (ctx) => reload(deps, inst, ctx),
    },
    health,
    rebaselineStep<UpdateState>(deps, name),
    {
      name: 'prune-releases',
      title: `Keep the newest ${inst.releases ?? 0} releases`,
      final: true,
      run: async (ctx) => {
        ctx.state.release!.removed = await pruneReleases(deps, inst, inst.releases ?? 1, ctx);
      },
    },
  ];

  /** With --lag, when the lagged commit is already deployed, every step after resolve says so and does nothing. */
  const unlessUpToDate = (step: Step<UpdateState>): Step<UpdateState> => {
    const undo = step.undo?.bind(step);
    return {
      ...step,
      run: async (ctx) => (skip(ctx.state) ? undefined : step.run(ctx)),
      ...(undo && { undo: async (ctx: StepContext<UpdateState>) => (skip(ctx.state) ? undefined : undo(ctx)) }),
    };
  };

  const resolveStep: Step<UpdateState> = {
    name: 'resolve',
    title: lagMs !== undefined ? `Find the newest commit of ${ref} at least ${opts.lag} old` : `Find ${upgrade ? ref : `the tip of ${ref}`} in the repository`,
    explain: 'Asks the origin repository what the target revision is (git ls-remote); nothing changes yet.',
    run: async (ctx) => {
      // --lag reads commit dates, so the branch is fetched first (the plain update asks origin without fetching).
      if (lagMs !== undefined) await gitFetch(deps, inst, ctx.signal);
      const t = await resolveTarget();
      Object.assign(ctx.state, { from: t.from, to: t.to, commits: t.commits ?? [], upToDate: t.upToDate });
      ctx.log(t.upToDate ? `the newest commit of ${ref} at least ${opts.lag} old is already deployed (${t.from.slice(0, 10)}): nothing to do` : `${t.from.slice(0, 10)} -> ${t.to.slice(0, 10)}`);
    },
  };

  return {
    command: upgrade ? 'upgrade' : 'update',
    params: { instance: name, to: ref, ...(opts.lag !== undefined && { lag: opts.lag }) },
    instance: name,
    state,
    // In release mode the backup comes right before the migrations: the site serves (and writes) until
    // then, so the database an undo loads back is as close to the live one as it can be.
    steps: [resolveStep, ...(releases ? [...releaseSteps.slice(0, 2), backupStep, ...releaseSteps.slice(2)] : [backToInPlaceStep, backupStep, ...inPlaceSteps])].map((step) =>
      step.name === 'resolve' ? step : unlessUpToDate(step),
    ),
    result: (s) => ({
      instance: name,
      from: s.from!,
      to: s.to!,
      commits: s.commits.length,
      backup: s.backup?.id ?? null,
      ...(s.release?.next && { release: s.release.next }),
      ...(s.upToDate && { upToDate: true }),
    }),
    preview: async () => {
      const t = await resolveTarget();
      return [
        `${upgrade ? 'upgrade' : 'update'} ${name} on ${inst.host} from ${t.from.slice(0, 10)} to ${t.to.slice(0, 10)} (${ref}): ${t.commits ? `${t.commits.length} commits` : 'commits not fetched yet (a dry run fetches nothing)'}`,
        ...(t.commits ?? []).map((c) => `  ${c}`),
        inst.hooks.migrate ? `then run: ${inst.hooks.migrate.join(' ')}` : 'no migrate hook is set',
        ...(releases ? [`release mode: built beside the live release in ${releasesDir(inst.path)}, switched by one rename, ${inst.releases} releases kept`] : []),
        ...(t.upToDate ? [`the newest commit of ${ref} at least ${opts.lag} old is already deployed: nothing would change`] : []),
      ];
    },
  };
}

/**
 * update --lag: the newest commit of origin's `branch` whose commit date is at least `lagMs` old, as
 * the host's repository last fetched it (git log --before on the host).
 */
async function gitLagged(deps: Deps, inst: Instance, branch: string, lagMs: number, lag: string): Promise<string> {
  const before = new Date(Date.now() - lagMs).toISOString();
  const argv = ['git', '-C', inst.path, 'log', '-1', '--format=%H', `--before=${before}`, `refs/remotes/origin/${checkRef(branch)}`, '--'];
  const res = await shellFor(deps, inst).exec(argv);
  const rev = res.stdout.trim();
  if (res.code !== 0 || !/^[0-9a-f]{40}$/.test(rev))
    throw new UsageError(`no commit of ${branch} in ${inst.name}'s repository is at least ${lag} old`, `update to its tip with: opsdeck update ${inst.name} (without --lag)`);
  return rev;
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
