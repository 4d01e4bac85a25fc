import type { Inventory } from '../../inventory/index.js';
import type { ChangeRequest } from '../../inventory/changes.js';
import { UsageError } from '../core/errors.js';
import type { Plan } from '../core/plan.js';

/**
 * Before a run starts on a team inventory: refuses (exit 2, naming who may) an operation the
 * session's role may not run on the instance's environment. The database refuses the same writes
 * (inventory/pg-rights.ts); this says so before anything starts, in words. On SQLite: nothing.
 */
export function checkRights(inv: Inventory, plan: { command: string; instance: string | null }): void {
  if (!plan.instance || !inv.rights.team) return;
  const inst = inv.getInstance(plan.instance);
  // Not visible: the plan's own lookup already said "no instance named ...".
  if (!inst) return;
  inv.rights.check(plan.command, inst.name, inst.env, !!inv.getEnv(inst.env)?.protected);
}

/** What a change to a protected environment is, on a team inventory: these go to the change board first. */
export const FOUR_EYES = new Set(['update', 'upgrade', 'restore', 'clone', 'refresh', 'promote', 'instance remove', 'instance remove --purge']);

/** Flags of the asking command line that are not the operation's (change run gives its own). */
const NOT_THE_OPERATION = new Set(['--why', '--home', '--inventory', '--inventory-password-file']);
export function operationArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const flag = a.split('=')[0];
    if (NOT_THE_OPERATION.has(flag)) {
      if (!a.includes('=')) i++;
      continue;
    }
    if (a === '--json') continue;
    out.push(a);
  }
  return out;
}

/** The back-out of a plan, in words: what its undo does, newest first, and the safety backup it keeps. */
export function backoutOf(plan: { steps: { title: string; undo?: unknown }[] }): string {
  const undone = plan.steps.filter((s) => s.undo).map((s) => s.title);
  const safety = plan.steps.find((s) => /safety backup|back(ing)? up|backup of/i.test(s.title));
  return (
    (undone.length ? `any failure undoes, newest first: ${undone.reverse().join('; ')}` : 'nothing to undo: no step changes anything that can be put back') +
    (safety ? `. The state before it is kept: "${safety.title}"; to go back after it ended, restore that backup` : '')
  );
}

export type Gate = { go: true; change?: number } | { go: false; change: ChangeRequest };

/**
 * Four eyes (team inventory, protected environment, a change in FOUR_EYES): the run goes ahead
 * only under an approved change request (same command, instance and parameters, within its window;
 * or a standing change). Otherwise, with `why`, a change request is made instead (nothing runs);
 * without it, refused (exit 2) saying how to ask. Everything else goes ahead.
 */
export function fourEyes(
  inv: Inventory,
  plan: Pick<Plan<unknown, unknown>, 'command' | 'instance' | 'params'> & { steps: { title: string; undo?: unknown }[] },
  o: { why?: string; argv: string[] },
): Gate {
  if (!inv.changes.enabled || !plan.instance || !FOUR_EYES.has(plan.command)) return { go: true };
  const inst = inv.getInstance(plan.instance);
  if (!inst || !inv.getEnv(inst.env)?.protected) return { go: true };
  const approved = inv.changes.approvedFor(plan.command, inst.name, inst.env, plan.params);
  if (approved) return { go: true, change: approved.id };
  if (!o.why) {
    const waiting = inv.changes
      .list({ instance: inst.name })
      .find((c) => c.command === plan.command && JSON.stringify(c.params) === JSON.stringify(plan.params) && (c.status === 'pending' || c.status === 'expired'));
    throw new UsageError(
      `${plan.command} of ${inst.name} changes protected environment ${inst.env}: it needs an approved change request${waiting ? `; change ${waiting.id} is ${waiting.status === 'pending' ? 'waiting for approval' : 'approved, but its approval expired'}` : ''}`,
      waiting?.status === 'pending'
        ? `ask another admin of ${inst.env} to approve it: opsdeck change approve ${waiting.id}`
        : `ask for it: the same command with --why "what and why" (another admin then runs: opsdeck change approve ID)`,
    );
  }
  const change = inv.changes.request({
    command: plan.command,
    instance: inst.name,
    env: inst.env,
    params: plan.params,
    argv: operationArgv(o.argv),
    plan: plan.steps.map((s) => s.title),
    backout: backoutOf(plan),
    why: o.why,
  });
  // The request is in the audit trail too, as a run of its own that changed nothing on the instance.
  const run = inv.startRun('change request', { change: change.id, command: plan.command, why: o.why }, inst.name, false);
  inv.finishRun(run, 'ok', null, null, 0);
  return { go: false, change };
}
