import type { InstanceRole, Relation } from '../../inventory/relations.js';
import type { Plan, Step } from '../core/plan.js';
import { UsageError } from '../core/errors.js';
import type { Deps } from '../deps/deps.js';
import { runHook } from './app.js';
import { clonePlan } from './clone.js';
import type { RestoreState } from './restore.js';

export interface PromoteOptions {
  /** Copy production's data as it is now, host to host, instead of its newest backup. */
  live?: boolean;
}

export interface PromoteState extends RestoreState {
  /** The two instances' environments, URLs and relations before the swap, for its undo. */
  before?: { roles: InstanceRole[]; relations: Relation[] };
}

export interface PromoteResult {
  /** The instance that is production now (the staging one). */
  production: string;
  /** The old production: kept, held, the staging of the new one. */
  previous: string;
  env: string;
  url: string | null;
  backup: string | null;
  safetyBackup: string | null;
}

/**
 * promote STAGING: the staging instance becomes the production one (the production machine failed,
 * or a new stack is ready). Its data is brought up to date from production (its newest backup, or
 * live with --live; the staging code stays), then in the inventory the two swap environments and
 * URLs, the old production becomes the staging of the new one and is held (nothing copies onto it
 * or removes it until released), and the new production's `promote` hook runs (DNS, proxy). Every
 * step is undone on failure, the inventory swap included. The run is on the production instance:
 * its environment's rights and four eyes apply.
 */
export function promotePlan(deps: Deps, name: string, opts: PromoteOptions = {}): Plan<PromoteState, PromoteResult> {
  const staging = deps.inv.requireInstance(name);
  const rel = deps.inv.relations.get(staging.name);
  if (rel.kind !== 'staging' || !rel.of) {
    throw new UsageError(`${name} is not the staging instance of another`, `say whose: opsdeck instance set ${name} --staging-of PRODUCTION`);
  }
  const prod = deps.inv.getInstance(rel.of);
  if (!prod)
    throw new UsageError(
      `${name} is the staging of ${rel.of}, which is no longer in the inventory`,
      `there is nothing to promote it over; relate it to another with: opsdeck instance set ${name} --staging-of NAME`,
    );
  const clone = clonePlan(deps, prod.name, staging.name, { dataOnly: true, fromBackup: !opts.live });
  const state: PromoteState = clone.state;

  const roles: Step<PromoteState> = {
    name: 'roles',
    title: `Swap roles in the inventory: ${staging.name} takes ${prod.name}'s environment (${prod.env}) and URL; ${prod.name} becomes the staging of ${staging.name}, held`,
    explain: 'One transaction in the inventory; its undo puts both instances back exactly as they were.',
    run: async (ctx) => {
      const s = deps.inv.requireInstance(staging.name);
      const p = deps.inv.requireInstance(prod.name);
      const sRel = deps.inv.relations.get(s.name);
      const pRel = deps.inv.relations.get(p.name);
      ctx.state.before = { roles: [s, p].map((i) => ({ name: i.name, env: i.env, url: i.url })), relations: [sRel, pRel] };
      deps.inv.relations.setRoles([
        { name: s.name, env: p.env, url: p.url },
        { name: p.name, env: s.env, url: s.url },
      ]);
      const when = new Date().toISOString();
      deps.inv.relations.set(s.name, { kind: null, of: null, redact: null, held: null });
      deps.inv.relations.set(p.name, {
        kind: 'staging',
        of: s.name,
        redact: sRel.redact,
        held: `it was production until ${s.name} was promoted over it at ${when}${ctx.runId ? ` (run ${ctx.runId})` : ''}; kept as it was`,
      });
      ctx.log(`${s.name} is in ${p.env} at ${p.url ?? '(no URL)'}; ${p.name} is in ${s.env} at ${s.url ?? '(no URL)'}, held`);
    },
    undo: async (ctx) => {
      const b = ctx.state.before;
      if (!b) return;
      deps.inv.relations.setRoles(b.roles);
      deps.inv.relations.restore(b.relations);
    },
  };
  const hook: Step<PromoteState> = {
    name: 'promote-hook',
    title: `Run ${staging.name}'s promote hook (DNS, proxy)`,
    explain: "Runs the instance's promote hook in its directory, now that it holds production's URL; without one, point DNS or the proxy at it yourself.",
    run: async (ctx) => {
      const inst = deps.inv.requireInstance(staging.name);
      if (!(await runHook(deps, inst, 'promote', ctx))) ctx.log(`no promote hook: point ${inst.url ?? "production's address"} at ${inst.host} yourself`, 'warn');
    },
  };
  return {
    command: 'promote',
    params: { instance: staging.name, production: prod.name, live: !!opts.live },
    // Production's environment is what changes hands: its rights and four eyes apply.
    instance: prod.name,
    reads: [staging.name],
    state,
    steps: [...clone.steps, roles, hook],
    undoFailed: clone.undoFailed,
    finally: clone.finally,
    result: (s) => ({ production: staging.name, previous: prod.name, env: prod.env, url: prod.url, backup: s.from.backup?.id ?? null, safetyBackup: s.safety?.id ?? null }),
    preview: async () => [
      `would bring ${staging.name}'s data up to date from ${prod.name} (${opts.live ? 'live, host to host' : 'its newest backup'}); its code stays`,
      `then ${staging.name} takes environment ${prod.env} and URL ${prod.url ?? '-'}; ${prod.name} moves to ${staging.env} (URL ${staging.url ?? '-'}), becomes the staging of ${staging.name}, and is held, kept as it is`,
      `then ${staging.name}'s promote hook runs${staging.hooks.promote ? `: ${staging.hooks.promote.join(' ')}` : ' (none set)'}`,
    ],
  };
}
