import { forgetMirror } from '../store/tree-mirror.js';
import { dirname } from 'node:path';
import type { Backup, HealthCheck, Hooks, Instance } from '../../inventory/index.js';
import { dbAt } from '../databases/index.js';
import type { Plan } from '../core/plan.js';
import { CommandError, run } from '../remote/shell.js';
import { errorMessage, OpsError, UsageError } from '../core/errors.js';
import { checkRef } from '../../inventory/validate.js';
import { gitState, runHook } from './app.js';
import { takeBackup } from './backup.js';
import { dbFor, shellFor, type Deps } from '../deps/deps.js';

export interface MakeParams {
  name: string;
  host: string;
  path: string;
  env: string;
  repo: string;
  ref: string;
  url: string | null;
  dbUrl: string | null;
  dbPassword?: string;
  hooks: Hooks;
  health: HealthCheck | null;
  localPaths: string[];
}

interface MakeState {
  inst: Instance;
  cloned: boolean;
  createdDb: boolean;
  registered: boolean;
}

/**
 * instance make: the code at REF from the repository, an empty database (created when missing), the
 * install and migrate hooks, then registered. Every step undoes itself: a failed make leaves nothing
 * on the host or in the inventory.
 */
export function makePlan(deps: Deps, p: MakeParams): Plan<MakeState, Instance> {
  checkRef(p.ref);
  if (deps.inv.getInstance(p.name)) throw new UsageError(`instance ${p.name} already exists`, `see it with: opsdeck instance show ${p.name}`);
  deps.inv.requireHost(p.host);
  deps.inv.requireEnv(p.env);
  if (!/^(?:[a-z][a-z0-9+.-]*:\/\/|\/)[^\s\0'"`$;&|<>\\]*$|^[\w.-]+@[\w.-]+:[\w./~-]+$/i.test(p.repo) || p.repo.startsWith('-')) {
    throw new UsageError(`invalid repository ${JSON.stringify(p.repo)}`, 'give a URL (https://, ssh://, file://), user@host:path, or an absolute path on the host');
  }
  // A transient instance, for the host-side helpers; it reaches the inventory only in the last step.
  const inst: Instance = {
    name: p.name,
    host: p.host,
    path: p.path,
    env: p.env,
    url: p.url,
    dbUrl: p.dbUrl,
    hasDbPassword: !!p.dbPassword,
    branch: null,
    createdAt: '',
    hooks: p.hooks,
    health: p.health,
    localPaths: p.localPaths,
    revision: null,
    maintenanceSince: null,
    watchExcludes: null,
    metrics: [],
  };
  const db = () => (p.dbUrl ? dbAt(p.dbUrl, p.dbPassword ?? '') : undefined);
  return {
    command: 'instance make',
    params: { ...p, dbPassword: undefined },
    instance: p.name,
    state: { inst, cloned: false, createdDb: false, registered: false },
    steps: [
      {
        name: 'check',
        title: `Check ${p.host}:${p.path} is free`,
        run: async () => {
          const shell = shellFor(deps, inst);
          if ((await shell.exec(['test', '-e', p.path])).code === 0)
            throw new UsageError(`${p.path} already exists on ${p.host}`, `take it over with: opsdeck instance add ${p.name} --host ${p.host} --path ${p.path} ...`);
          if ((await shell.exec(['test', '-d', dirname(p.path)])).code !== 0)
            throw new UsageError(`the parent directory ${dirname(p.path)} does not exist on ${p.host}`, 'create it on the host first');
        },
      },
      {
        name: 'code',
        title: `Clone ${p.ref} of ${p.repo}`,
        run: async (ctx) => {
          ctx.state.cloned = true;
          const shell = shellFor(deps, inst);
          const argv = ['git', 'clone', '--quiet', '--branch', p.ref, '--', p.repo, p.path];
          const res = await shell.exec(argv, { signal: ctx.signal });
          if (res.code !== 0) throw new CommandError(shell.label, argv, res);
          const git = await gitState(deps, inst);
          ctx.state.inst = { ...inst, branch: git?.branch ?? null, revision: git?.revision ?? null };
          ctx.log(`code at ${git?.describe ?? p.ref}`);
        },
        undo: async (ctx) => {
          if (ctx.state.cloned) await run(shellFor(deps, inst), ['rm', '-rf', '--', p.path]);
        },
      },
      {
        name: 'database',
        title: 'Make sure the database exists and is empty',
        run: async (ctx) => {
          const d = db();
          if (!d) return ctx.log('no database');
          const shell = shellFor(deps, inst);
          const state = await d.engine.emptiness(shell, d);
          if (state === 'not-empty') throw new UsageError(`database ${d.target.database} is not empty`, 'give an empty database, or take the instance over with: opsdeck instance add');
          if (state === 'empty') return ctx.log(`database ${d.target.database} exists and is empty`);
          await d.engine.createDatabase(shell, d);
          ctx.state.createdDb = true;
          ctx.log(`database ${d.target.database} created`);
        },
        undo: async (ctx) => {
          const d = db();
          if (!d || !ctx.state.createdDb) return;
          await d.engine.dropDatabase(shellFor(deps, inst), d);
        },
      },
      {
        name: 'register',
        // Before the hooks: they read the database password from the inventory. Undone on failure.
        title: `Add ${p.name} to the inventory`,
        run: async (ctx) => {
          const i = ctx.state.inst;
          deps.inv.addInstance({ ...i, dbPassword: p.dbPassword });
          ctx.state.registered = true;
        },
        undo: async (ctx) => {
          if (ctx.state.registered) deps.inv.removeInstance(p.name);
        },
      },
      {
        name: 'install',
        title: 'Run the install and migrate hooks',
        run: async (ctx) => {
          const ran = [await runHook(deps, deps.inv.requireInstance(p.name), 'install', ctx), await runHook(deps, deps.inv.requireInstance(p.name), 'migrate', ctx)];
          if (!ran.some(Boolean)) ctx.log('no install or migrate hook');
        },
      },
    ],
    result: () => deps.inv.requireInstance(p.name),
    preview: async () => [`would clone ${p.ref} of ${p.repo} into ${p.host}:${p.path}${p.dbUrl ? `, use (or create) database ${p.dbUrl}` : ''}, run its hooks and register ${p.name}`],
  };
}

/**
 * instance remove --purge: a last backup, then the code tree and the database are deleted and the
 * instance leaves the inventory. Its backups stay in the store.
 */
export function purgePlan(deps: Deps, name: string): Plan<{ backup?: Backup }, { removed: string; finalBackup: string }> {
  const inst = deps.inv.requireInstance(name);
  return {
    command: 'instance remove --purge',
    params: { instance: name },
    instance: name,
    state: {},
    steps: [
      {
        name: 'backup',
        title: 'Take a last backup',
        run: async (ctx) => {
          ctx.state.backup = await takeBackup(deps, inst, ctx);
        },
      },
      {
        name: 'database',
        title: 'Drop the database',
        run: async (ctx) => {
          const d = dbFor(deps, inst);
          if (!d) return;
          try {
            await d.engine.dropDatabase(shellFor(deps, inst), d);
          } catch (err) {
            throw new OpsError(errorMessage(err), 1, `drop it by hand; the last backup is ${ctx.state.backup?.id}`);
          }
        },
      },
      {
        name: 'code',
        title: `Delete ${inst.path}`,
        run: async () => {
          await run(shellFor(deps, inst), ['rm', '-rf', '--', inst.path]);
        },
      },
      {
        name: 'forget',
        title: 'Remove it from the inventory',
        run: async () => {
          deps.inv.removeInstance(name);
          forgetMirror(deps.store.home, name);
        },
      },
    ],
    result: (s) => ({ removed: name, finalBackup: s.backup!.id }),
  };
}
