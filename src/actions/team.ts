import type { Inventory } from '../../inventory/index.js';

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
