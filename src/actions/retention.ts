import type { Backup } from '../../inventory/index.js';
import type { Plan } from '../core/plan.js';
import { DEFAULT_POLICY, SAFETY_DAYS, checkPolicy, selectKept, type Policy } from '../core/retention.js';
import type { Deps } from '../deps/deps.js';
import { storeRecords } from '../../inventory/store-records.js';

export interface PruneResult {
  kept: { id: string; instance: string; createdAt: string }[];
  removed: { id: string; instance: string; createdAt: string; kind: string }[];
  snapshotsForgotten: number;
}

/**
 * backups prune: per instance, keeps what its environment's policy (or the flags) keeps and drops
 * the rest from the store and the inventory. A snapshot still used by a kept backup (a safety backup
 * may share an unchanged tree's snapshot) is never forgotten.
 */
export function prunePlan(deps: Deps, opts: { instance?: string; policy?: Partial<Record<keyof Policy, unknown>>; now?: number }): Plan<PruneResult, PruneResult> {
  if (opts.instance) deps.inv.requireInstance(opts.instance);
  const now = opts.now ?? Date.now();
  const all = deps.inv.listBackups();
  const byInstance = new Map<string, Backup[]>();
  for (const b of all) if (!opts.instance || b.instance === opts.instance) byInstance.set(b.instance, [...(byInstance.get(b.instance) ?? []), b]);
  const result: PruneResult = { kept: [], removed: [], snapshotsForgotten: 0 };
  const pinned = storeRecords(deps.inv).pins();
  const view = (b: Backup) => ({ id: b.id, instance: b.instance, createdAt: b.createdAt });
  for (const [name, list] of byInstance) {
    const env = deps.inv.getInstance(name)?.env;
    const policy = checkPolicy(opts.policy ?? {}, (env && deps.inv.retentionOf(env)) || DEFAULT_POLICY);
    const manual = list.filter((b) => b.kind === 'manual');
    const keep = selectKept(manual, policy);
    // Pinned backups (backups pin) are never dropped.
    for (const b of list) if (pinned.has(b.id)) keep.add(b.id);
    const safety = list.filter((b) => b.kind === 'safety');
    safety.forEach((b, i) => (i === 0 || now - Date.parse(b.createdAt) < SAFETY_DAYS * 86_400_000 ? keep.add(b.id) : undefined));
    for (const b of list) {
      if (keep.has(b.id)) result.kept.push(view(b));
      else result.removed.push({ ...view(b), kind: b.kind });
    }
  }
  return {
    command: 'backups prune',
    params: { instance: opts.instance, ...opts.policy },
    instance: null,
    state: result,
    steps: [
      {
        name: 'forget',
        title: 'Drop the backups the policy does not keep',
        explain: 'Forgets their snapshots in the store (unless a kept backup shares one) and removes them from the inventory.',
        run: async (ctx) => {
          const removed = new Set(ctx.state.removed.map((b) => b.id));
          const stillUsed = new Set<string>();
          const snaps = (b: Backup) => [b.manifest.code?.snapshot, b.manifest.db?.snapshot].filter((s): s is string => !!s);
          for (const b of all) if (!removed.has(b.id)) snaps(b).forEach((s) => stillUsed.add(s));
          const forget = [...new Set(all.filter((b) => removed.has(b.id)).flatMap(snaps))].filter((s) => !stillUsed.has(s));
          // The partial snapshots a killed backup left (no backup records them) go too. These
          // instances are locked for the prune (the CLI takes their locks before deciding).
          const orphans = await deps.store.orphans(opts.instance ? [opts.instance] : [...byInstance.keys()], new Set(all.flatMap(snaps)));
          if (orphans.length) ctx.log(`${orphans.length} snapshots that no backup records (left by a backup that was killed) are dropped too`);
          forget.push(...orphans);
          if (forget.length) await deps.store.forget(forget);
          deps.inv.db.transaction(() => removed.forEach((id) => deps.inv.removeBackup(id)))();
          ctx.state.snapshotsForgotten = forget.length;
          ctx.log(`${removed.size} backups dropped, ${forget.length} snapshots forgotten, ${ctx.state.kept.length} backups kept`);
        },
      },
      {
        name: 'reclaim',
        title: 'Reclaim the space in the store',
        run: async (ctx) => {
          if (ctx.state.snapshotsForgotten) await deps.store.prune();
        },
      },
    ],
    result: (s) => s,
    preview: async () => [
      ...result.removed.map((b) => `would drop ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt})`),
      `would keep ${result.kept.length} backups: ${result.kept.map((b) => b.id).join(', ') || 'none'}`,
    ],
  };
}
