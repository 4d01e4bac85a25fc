import type { HookKind, Instance } from '../../inventory/index.js';
import type { StepIO } from '../core/plan.js';
import { withSecretFromStdin } from '../remote/quote.js';
import { CommandError, run } from '../remote/shell.js';
import { OpsError, UsageError } from '../core/errors.js';
import { checkRef } from '../../inventory/validate.js';
import { dbFor, shellFor, type Deps } from '../deps/deps.js';
import { checkHealth, type HealthResult } from '../health/http.js';
export { checkHealth, type HealthResult };

/** The page the default maintenance mode puts in place; the web server answers 503 with it. */
export const MAINTENANCE_FILE = 'maintenance.html';
const MAINTENANCE_PAGE = '<!doctype html><html><head><title>Down for maintenance</title></head><body><h1>Down for maintenance</h1><p>We will be back shortly.</p></body></html>\n';

/**
 * Runs one of the instance's hooks in its directory on its host. The database's coordinates reach it
 * in its engine's client variables (PostgreSQL: PG*; the password on stdin, never in argv), so a
 * migrate script can just call psql.
 * Returns false when the instance has no such hook.
 */
export async function runHook(deps: Deps, inst: Instance, kind: HookKind, ctx: StepIO): Promise<boolean> {
  const argv = inst.hooks[kind];
  if (!argv?.length) return false;
  const db = dbFor(deps, inst);
  const { env, passwordVar } = db ? db.engine.hookEnv(db.target) : { env: [], passwordVar: 'PGPASSWORD' };
  const full = withSecretFromStdin(passwordVar, ['sh', '-c', 'cd -- "$1" && shift && exec "$@"', 'sh', inst.path, 'env', ...env, ...argv]);
  const shell = shellFor(deps, inst);
  const res = await shell.exec(full, {
    secretLine: db?.password ?? '',
    signal: ctx.signal,
    onStderr: (s) =>
      s
        .split('\n')
        .filter(Boolean)
        .forEach((l) => ctx.log(`${kind}: ${l}`)),
  });
  res.stdout
    .split('\n')
    .filter(Boolean)
    .slice(-20)
    .forEach((l) => ctx.log(`${kind}: ${l}`));
  if (res.code !== 0) {
    const tail = res.stderr.trim().split('\n').slice(-3).join(' | ');
    throw new OpsError(`the ${kind} hook of ${inst.name} failed (exit status ${res.code})${tail ? `: ${tail}` : ''}`, 1, `run it by hand on ${inst.host} in ${inst.path}: ${argv.join(' ')}`);
  }
  return true;
}

export async function maintenanceOn(deps: Deps, inst: Instance, ctx: StepIO): Promise<void> {
  if (!(await runHook(deps, inst, 'maintenance-on', ctx))) {
    // The temp name is removed first: a symlink planted under it (the tree may come from anywhere)
    // would make cat write through it, outside the instance. mv replaces a link, never its target.
    await run(shellFor(deps, inst), ['sh', '-c', 'rm -f -- "$1/$2.opsdeck-tmp" && cat > "$1/$2.opsdeck-tmp" && mv -f -- "$1/$2.opsdeck-tmp" "$1/$2"', 'sh', inst.path, MAINTENANCE_FILE], {
      stdin: MAINTENANCE_PAGE,
    });
  }
  deps.inv.updateInstance(inst.name, { maintenanceSince: new Date().toISOString() });
  ctx.log(`${inst.name} is in maintenance`);
}

export async function maintenanceOff(deps: Deps, inst: Instance, ctx: StepIO): Promise<void> {
  if (!(await runHook(deps, inst, 'maintenance-off', ctx))) {
    await run(shellFor(deps, inst), ['rm', '-f', '--', `${inst.path}/${MAINTENANCE_FILE}`]);
  }
  deps.inv.updateInstance(inst.name, { maintenanceSince: null });
  ctx.log(`${inst.name} is out of maintenance`);
}

/** Health with a few tries: an app just restarted may need a moment to answer. */
export async function requireHealthy(inst: Instance, ctx: StepIO, waitMs = 5000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const last = await checkHealth(inst);
    if (last.ok) {
      ctx.log(last.url ? `health: ${last.url} answered ${last.status} in ${last.ms} ms` : 'health: no health check configured');
      return;
    }
    const waited = Date.now() - t0;
    if (waited >= waitMs)
      throw new OpsError(
        `health check of ${inst.name} failed: ${last.url} ${last.reason} (asked for ${Math.round(waited / 1000)} s)`,
        1,
        `check the site and its logs; set the check with: opsdeck instance set ${inst.name} --health-url URL; a site that needs longer to start: opsdeck settings healthWait 60s`,
      );
    await new Promise((r) => setTimeout(r, Math.min(1000, waitMs - waited)));
  }
}

// ---- git on the host

async function git(deps: Deps, inst: Instance, args: string[], signal?: AbortSignal): Promise<string> {
  const shell = shellFor(deps, inst);
  const argv = ['git', '-C', inst.path, ...args];
  const res = await shell.exec(argv, { signal });
  if (res.code !== 0) throw new CommandError(shell.label, argv, res);
  return res.stdout.trim();
}

export async function gitState(deps: Deps, inst: Pick<Instance, 'host' | 'path'>): Promise<{ revision: string; branch: string | null; describe: string | null } | undefined> {
  const shell = shellFor(deps, inst);
  const rev = await shell.exec(['git', '-C', inst.path, 'rev-parse', 'HEAD']);
  if (rev.code !== 0) return undefined;
  const br = await shell.exec(['git', '-C', inst.path, 'symbolic-ref', '--quiet', '--short', 'HEAD']);
  const desc = await shell.exec(['git', '-C', inst.path, 'describe', '--tags', '--always']);
  return { revision: rev.stdout.trim(), branch: br.code === 0 ? br.stdout.trim() : null, describe: desc.code === 0 ? desc.stdout.trim() : null };
}

export async function gitFetch(deps: Deps, inst: Instance, signal?: AbortSignal): Promise<void> {
  await git(deps, inst, ['fetch', '--quiet', '--tags', '--force', 'origin'], signal);
}

/** The commit `ref` names on the host (a tag, a branch of origin, or a revision). */
export async function gitResolve(deps: Deps, inst: Instance, ref: string): Promise<string> {
  checkRef(ref);
  const shell = shellFor(deps, inst);
  for (const candidate of [`refs/tags/${ref}`, `refs/remotes/origin/${ref}`, ref]) {
    const res = await shell.exec(['git', '-C', inst.path, 'rev-parse', '--verify', '--quiet', `${candidate}^{commit}`]);
    if (res.code === 0) return res.stdout.trim();
  }
  throw new UsageError(`${ref} is not a tag, branch or revision of ${inst.name}'s repository`, `list its tags on the host with: git -C ${inst.path} tag`);
}

/**
 * What `ref` names in the origin repository, asked without fetching (read-only): a tag, else a branch.
 * Undefined when origin has no such ref, or the ref is a bare revision (resolved after fetching).
 */
export async function gitRemoteRef(deps: Deps, inst: Instance, ref: string): Promise<string | undefined> {
  checkRef(ref);
  const out = await git(deps, inst, ['ls-remote', 'origin', `refs/tags/${ref}`, `refs/tags/${ref}^{}`, `refs/heads/${ref}`]);
  const lines = out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
  // An annotated tag lists the tag object and, with ^{}, the commit it points to: take the commit.
  const pick = lines.find((l) => l[1] === `refs/tags/${ref}^{}`) ?? lines.find((l) => l[1] === `refs/tags/${ref}`) ?? lines.find((l) => l[1] === `refs/heads/${ref}`);
  return pick?.[0];
}

/** The origin repository's tags, newest version first (read-only: git ls-remote). */
export async function gitRemoteTags(deps: Deps, inst: Instance): Promise<string[]> {
  const out = await git(deps, inst, ['ls-remote', '--tags', '--refs', 'origin']);
  const tags = out
    .split('\n')
    .map((l) => l.split('\t')[1]?.replace(/^refs\/tags\//, ''))
    .filter((t): t is string => !!t);
  return tags.sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
}

/** Commits between two revisions, or undefined while `to` is not in the local repository yet. */
export async function gitLogIfKnown(deps: Deps, inst: Instance, from: string, to: string): Promise<string[] | undefined> {
  const has = await shellFor(deps, inst).exec(['git', '-C', inst.path, 'cat-file', '-e', `${to}^{commit}`]);
  return has.code === 0 ? gitLog(deps, inst, from, to) : undefined;
}

export async function gitLog(deps: Deps, inst: Instance, from: string, to: string): Promise<string[]> {
  const out = await git(deps, inst, ['log', '--oneline', '--no-decorate', `${from}..${to}`]);
  return out ? out.split('\n') : [];
}

/**
 * Checks out an exact commit: on `branch` (update follows a branch) or detached (upgrade to a tag).
 * Local edits to tracked files make git refuse, which the plan reports and undoes.
 */
export async function gitCheckout(deps: Deps, inst: Instance, revision: string, branch?: string | null, signal?: AbortSignal): Promise<void> {
  if (branch) await git(deps, inst, ['checkout', '--quiet', '-B', checkRef(branch), revision], signal);
  else await git(deps, inst, ['checkout', '--quiet', '--detach', revision], signal);
}
