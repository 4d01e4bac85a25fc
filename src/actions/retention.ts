import type { Backup } from '../../inventory/index.js';
import type { Plan, StepIO } from '../core/plan.js';
import { DEFAULT_POLICY, SAFETY_DAYS, checkPolicy, selectKept, type Policy } from '../core/retention.js';
import { OpsError, errorMessage } from '../core/errors.js';
import type { Deps } from '../deps/deps.js';
import type { SnapshotInfo, Store } from '../store/restic.js';
import { storeRecords } from '../../inventory/store-records.js';

export interface PruneResult {
  kept: { id: string; instance: string; createdAt: string }[];
  removed: { id: string; instance: string; createdAt: string; kind: string }[];
  snapshotsForgotten: number;
  /** Each copy store (settings storeCopies), pruned by its own retention (settings storeCopyRetention). */
  copies: CopyPrune[];
}

/** What a prune did in one copy store. */
export interface CopyPrune {
  repository: string;
  /** The tiers the copy sets itself; the others as the store keeps (the environment's policy, or the flags). */
  retention: Partial<Policy> | null;
  kept: { id: string; instance: string; createdAt: string }[];
  removed: { id: string; instance: string; createdAt: string; kind: string }[];
  snapshotsForgotten: number;
  error?: string;
}

/** A backup as a copy store holds it: the snapshots tagged with its id. */
interface HeldBackup {
  id: string;
  instance: string;
  createdAt: string;
  kind: string;
  snapshots: string[];
}

/**
 * What a copy store's own retention keeps of the backups it holds (grouped by their backup= tag).
 * Per instance, the copy's tiers over the policy the store itself applies; pinned backups are kept;
 * safety backups as in the store (the newest, and those younger than SAFETY_DAYS). A backup the
 * inventory no longer records (the store dropped it first) counts as a manual one of its snapshot's
 * time. Snapshots without a backup tag are not opsdeck's: never touched.
 */
async function decideCopy(
  copy: Store,
  o: { known: Map<string, Backup>; policyOf: (instance: string) => Policy; pinned: Set<string>; instance?: string; now: number },
): Promise<Omit<CopyPrune, 'snapshotsForgotten'> & { forget: string[] }> {
  const decided = { repository: copy.repository, retention: copy.retention ?? null, kept: [] as CopyPrune['kept'], removed: [] as CopyPrune['removed'], forget: [] as string[] };
  if (!(await copy.exists())) return decided;
  const held = new Map<string, HeldBackup>();
  const infos = new Map<string, SnapshotInfo>();
  for (const snap of await copy.snapshots()) {
    infos.set(snap.id, snap);
    const tag = (k: string) => snap.tags.find((t) => t.startsWith(`${k}=`))?.slice(k.length + 1);
    const id = tag('backup');
    const instance = tag('instance');
    if (!id || !instance || (o.instance && instance !== o.instance)) continue;
    const rec = o.known.get(id);
    const time = new Date(snap.time).toISOString();
    const b = held.get(id) ?? { id, instance, createdAt: rec?.createdAt ?? time, kind: rec?.kind ?? 'manual', snapshots: [] };
    if (!rec && time < b.createdAt) b.createdAt = time;
    b.snapshots.push(snap.id);
    held.set(id, b);
  }
  const byInstance = new Map<string, HeldBackup[]>();
  for (const b of held.values()) byInstance.set(b.instance, [...(byInstance.get(b.instance) ?? []), b]);
  for (const [instance, list] of byInstance) {
    const policy = checkPolicy(copy.retention ?? {}, o.policyOf(instance));
    const keep = selectKept(
      list.filter((b) => b.kind === 'manual'),
      policy,
    );
    for (const b of list) if (o.pinned.has(b.id)) keep.add(b.id);
    list
      .filter((b) => b.kind === 'safety')
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .forEach((b, i) => (i === 0 || o.now - Date.parse(b.createdAt) < SAFETY_DAYS * 86_400_000 ? keep.add(b.id) : undefined));
    for (const b of list.sort((a, b) => b.createdAt.localeCompare(a.createdAt))) {
      const view = { id: b.id, instance: b.instance, createdAt: b.createdAt };
      if (keep.has(b.id)) decided.kept.push(view);
      else {
        decided.removed.push({ ...view, kind: b.kind });
        decided.forget.push(...b.snapshots);
      }
    }
  }
  // A kept backup may use a snapshot tagged with another's id (an unchanged tree's snapshot is reused):
  // what a kept backup's manifest names stays, as in the store.
  const used = [...decided.kept].flatMap((k) => {
    const m = o.known.get(k.id)?.manifest;
    return [m?.code?.snapshot, m?.db?.snapshot].filter((x): x is string => !!x);
  });
  const isUsed = (snap: SnapshotInfo) => used.some((u) => [snap.id, snap.original].some((x) => !!x && (x === u || (u.length >= 8 && x.startsWith(u)))));
  decided.forget = decided.forget.filter((id) => !isUsed(infos.get(id)!));
  return decided;
}

const tiersText = (p: Partial<Policy> | null) =>
  p && Object.keys(p).length
    ? `its own retention (${Object.entries(p)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`
    : "the store's retention";

/** Prunes each copy store by its own retention; a copy that fails is said, the others go on, and the run fails at the end. */
async function pruneCopies(deps: Deps, ctx: StepIO, o: Parameters<typeof decideCopy>[1]): Promise<CopyPrune[]> {
  const out: CopyPrune[] = [];
  for (const copy of deps.store.copies) {
    try {
      const d = await decideCopy(copy, o);
      if (d.forget.length) {
        await copy.forget(d.forget);
        await copy.prune();
      }
      const { forget, ...rest } = d;
      out.push({ ...rest, snapshotsForgotten: forget.length });
      for (const b of d.removed) ctx.log(`copy store ${copy.repository}: dropped ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt})`);
      ctx.log(`copy store ${copy.repository}, by ${tiersText(d.retention)}: ${d.removed.length} backups dropped, ${forget.length} snapshots forgotten, ${d.kept.length} kept`);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      out.push({ repository: copy.repository, retention: copy.retention ?? null, kept: [], removed: [], snapshotsForgotten: 0, error: errorMessage(err) });
      ctx.log(`copy store ${copy.repository}: not pruned: ${errorMessage(err)}`, 'warn');
    }
  }
  const bad = out.filter((c) => c.error);
  if (bad.length)
    throw new OpsError(`pruning failed in ${bad.map((c) => `${c.repository} (${c.error})`).join(', ')}`, 1, 'check that the copy store can be reached and written; the next prune tries again');
  return out;
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
  const result: PruneResult = { kept: [], removed: [], snapshotsForgotten: 0, copies: [] };
  const pinned = storeRecords(deps.inv).pins();
  const view = (b: Backup) => ({ id: b.id, instance: b.instance, createdAt: b.createdAt });
  // The store's policy for an instance: the flags over its environment's; a copy's own tiers go over this.
  const policyOf = (name: string) => {
    const env = deps.inv.getInstance(name)?.env;
    return checkPolicy(opts.policy ?? {}, (env && deps.inv.retentionOf(env)) || DEFAULT_POLICY);
  };
  const copyInput = { known: new Map(all.map((b) => [b.id, b])), policyOf, pinned: new Set(pinned.keys()), instance: opts.instance, now };
  for (const [name, list] of byInstance) {
    const policy = policyOf(name);
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
    params: {
      instance: opts.instance,
      ...opts.policy,
      ...(deps.store.copies.length ? { copies: Object.fromEntries(deps.store.copies.map((c) => [c.repository, c.retention ?? 'as the store'])) } : {}),
    },
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
      ...(deps.store.copies.length
        ? [
            {
              name: 'copies',
              title: `Prune ${deps.store.copies.length === 1 ? 'the copy store' : `the ${deps.store.copies.length} copy stores`} by ${deps.store.copies.length === 1 ? 'its' : 'their'} own retention`,
              explain:
                "Each copy store keeps, per instance, what its retention (settings storeCopyRetention, else the store's) keeps of the backups it holds; pinned backups stay. Forgotten there and the space reclaimed; the store itself is not touched here.",
              run: async (ctx: StepIO & { state: PruneResult }) => {
                ctx.state.copies = await pruneCopies(deps, ctx, copyInput);
              },
            },
          ]
        : []),
    ],
    result: (s) => s,
    preview: async () => [
      ...result.removed.map((b) => `would drop ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt})`),
      `would keep ${result.kept.length} backups: ${result.kept.map((b) => b.id).join(', ') || 'none'}`,
      ...(
        await Promise.all(
          deps.store.copies.map(async (copy) => {
            const d = await decideCopy(copy, copyInput).catch((err: unknown) => ({ error: errorMessage(err) }));
            if ('error' in d) return [`copy store ${copy.repository}: cannot tell what would go (${d.error})`];
            return [
              ...d.removed.map((b) => `would drop ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt}) from copy store ${copy.repository}`),
              `copy store ${copy.repository}, by ${tiersText(d.retention)}: would keep ${d.kept.length} backups: ${d.kept.map((b) => b.id).join(', ') || 'none'}`,
            ];
          }),
        )
      ).flat(),
    ],
  };
}
