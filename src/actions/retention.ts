import type { Backup } from '../../inventory/index.js';
import type { Plan, StepIO } from '../core/plan.js';
import { DEFAULT_POLICY, SAFETY_DAYS, checkPolicy, selectKept, type Policy } from '../core/retention.js';
import { OpsError, errorMessage } from '../core/errors.js';
import type { Deps } from '../deps/deps.js';
import type { SnapshotInfo, Store } from '../store/restic.js';
import { storeRecords } from '../../inventory/store-records.js';

type View = { id: string; instance: string; createdAt: string };

export interface PruneResult {
  /** Kept in the store. */
  kept: View[];
  /** Dropped from the store and the inventory: no copy store keeps them. */
  removed: (View & { kind: string })[];
  /**
   * Dropped from the store, kept in the inventory (with their manifests): a copy store keeps them by
   * its own retention, so restore, verify, drill and export read them from there. `copies`: the copy
   * stores that hold them whole (empty: a copy store could not be read, so they stay until a prune can).
   */
  copiesOnly: (View & { kind: string; copies: string[] })[];
  /** Backups only the copies held that no copy store keeps any more: gone from the inventory too. */
  copiesOnlyDropped: (View & { kind: string })[];
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
async function decideCopy(copy: Store, o: { known: Map<string, Backup>; policyOf: (instance: string) => Policy; pinned: Set<string>; instance?: string; now: number }): Promise<CopyDecision> {
  const decided: CopyDecision = {
    repository: copy.repository,
    retention: copy.retention ?? null,
    kept: [],
    removed: [],
    forget: [],
    whole: new Set(),
  };
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
  // A backup that reused another's snapshot (an unchanged tree) may have no snapshot of its own in the
  // copy: held all the same when the copy has every snapshot its manifest names, so its pin and the
  // copy's policy count it, and what it names stays while it is kept. It has nothing of its own to forget.
  // A manifest's snapshot id, full or short, as the store or (original) as the copy knows it.
  const matches = (snap: SnapshotInfo, u: string) => [snap.id, snap.original].some((x) => !!x && (x === u || (u.length >= 8 && x.startsWith(u))));
  const inCopy = (u: string) => [...infos.values()].some((snap) => matches(snap, u));
  for (const rec of o.known.values()) {
    if (held.has(rec.id) || (o.instance && rec.instance !== o.instance)) continue;
    const names = [rec.manifest?.code?.snapshot, rec.manifest?.db?.snapshot].filter((x): x is string => !!x);
    if (names.length && names.every(inCopy)) held.set(rec.id, { id: rec.id, instance: rec.instance, createdAt: rec.createdAt, kind: rec.kind, snapshots: [] });
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
  const isUsed = (snap: SnapshotInfo) => used.some((u) => matches(snap, u));
  decided.forget = decided.forget.filter((id) => !isUsed(infos.get(id)!));
  // A kept backup this copy can restore: it holds every snapshot the backup's manifest names.
  const left = [...infos.values()].filter((snap) => !decided.forget.includes(snap.id));
  for (const k of decided.kept) {
    const m = o.known.get(k.id)?.manifest;
    const snaps = [m?.code?.snapshot, m?.db?.snapshot].filter((x): x is string => !!x);
    if (m && snaps.every((u) => left.some((snap) => matches(snap, u)))) decided.whole.add(k.id);
  }
  return decided;
}

/** What a prune decides for one copy store before it forgets anything there. */
interface CopyDecision extends Omit<CopyPrune, 'snapshotsForgotten' | 'error'> {
  /** Its snapshots to forget. */
  forget: string[];
  /** The kept backups it holds whole (every snapshot their manifest names): what it can restore. */
  whole: Set<string>;
}

/** Each copy store's decision, read before the store forgets anything; one that cannot be read says why. */
async function decideCopies(deps: Deps, o: Parameters<typeof decideCopy>[1], signal?: AbortSignal): Promise<(CopyDecision | { repository: string; error: string })[]> {
  const out: (CopyDecision | { repository: string; error: string })[] = [];
  for (const copy of deps.store.copies) {
    try {
      out.push(await decideCopy(copy, o));
    } catch (err) {
      if (signal?.aborted) throw err;
      out.push({ repository: copy.repository, error: errorMessage(err) });
    }
  }
  return out;
}

/**
 * Of the backups the store drops and those only the copies held already: which stay in the
 * inventory (a copy store keeps them whole) and which go. While a copy store cannot be read, nothing
 * that may be in it goes: a backup no readable copy holds stays in the store too (`deferred`; never
 * marked copy-only on a guess), and the next prune that reads the copy decides.
 */
function splitByCopies(decisions: Awaited<ReturnType<typeof decideCopies>>, dropped: Backup[], copiesOnly: Backup[]) {
  const unread = decisions.filter((d) => 'error' in d).map((d) => d.repository);
  const holders = (b: Backup) => decisions.filter((d): d is CopyDecision => !('error' in d) && d.whole.has(b.id)).map((d) => d.repository);
  const view = (b: Backup) => ({ id: b.id, instance: b.instance, createdAt: b.createdAt, kind: b.kind });
  const stays = (b: Backup) => holders(b).length > 0 || unread.length > 0;
  return {
    unread,
    toCopiesOnly: dropped.filter((b) => holders(b).length > 0).map((b) => ({ ...view(b), copies: holders(b) })),
    deferred: dropped.filter((b) => !holders(b).length && unread.length > 0).map(view),
    removed: dropped.filter((b) => !stays(b)).map(view),
    copiesOnlyDropped: copiesOnly.filter((b) => !stays(b)).map(view),
  };
}

const tiersText = (p: Partial<Policy> | null) =>
  p && Object.keys(p).length
    ? `its own retention (${Object.entries(p)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`
    : "the store's retention";

/**
 * Prunes each copy store by its own retention, as decided before the store's forget; a copy that
 * fails is said, the others go on, and the run fails at the end.
 */
async function pruneCopies(deps: Deps, ctx: StepIO, decisions: Awaited<ReturnType<typeof decideCopies>>): Promise<CopyPrune[]> {
  const out: CopyPrune[] = [];
  for (const copy of deps.store.copies) {
    try {
      const d = decisions.find((x) => x.repository === copy.repository);
      if (!d || 'error' in d) throw new OpsError(d?.error ?? 'not read');
      if (d.forget.length) {
        await copy.forget(d.forget);
        await copy.prune();
      }
      const { forget, whole: _whole, ...rest } = d;
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
 * the rest from the store. A dropped backup a copy store keeps whole by its own retention stays in
 * the inventory as held by the copies only (its manifest is what a restore checks); the others go
 * from the inventory too. Backups only the copies hold are not the store's: its policy neither
 * counts nor forgets them, and they go from the inventory once no copy store keeps them. A snapshot
 * still used by a kept backup (a safety backup may share an unchanged tree's snapshot) is never forgotten.
 */
export function prunePlan(deps: Deps, opts: { instance?: string; policy?: Partial<Record<keyof Policy, unknown>>; now?: number }): Plan<PruneResult, PruneResult> {
  if (opts.instance) deps.inv.requireInstance(opts.instance);
  const now = opts.now ?? Date.now();
  const all = deps.inv.listBackups();
  const inScope = (b: Backup) => !opts.instance || b.instance === opts.instance;
  const copiesOnly = all.filter((b) => b.copiesOnlySince && inScope(b));
  const byInstance = new Map<string, Backup[]>();
  for (const b of all) if (inScope(b) && !b.copiesOnlySince) byInstance.set(b.instance, [...(byInstance.get(b.instance) ?? []), b]);
  const result: PruneResult = { kept: [], removed: [], copiesOnly: [], copiesOnlyDropped: [], snapshotsForgotten: 0, copies: [] };
  const pinned = storeRecords(deps.inv).pins();
  const view = (b: Backup) => ({ id: b.id, instance: b.instance, createdAt: b.createdAt });
  // The store's policy for an instance: the flags over its environment's; a copy's own tiers go over this.
  const policyOf = (name: string) => {
    const env = deps.inv.getInstance(name)?.env;
    return checkPolicy(opts.policy ?? {}, (env && deps.inv.retentionOf(env)) || DEFAULT_POLICY);
  };
  const copyInput = { known: new Map(all.map((b) => [b.id, b])), policyOf, pinned: new Set(pinned.keys()), instance: opts.instance, now };
  const dropped: Backup[] = [];
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
      else dropped.push(b);
    }
  }
  // Until the copies are read (the forget step), every dropped backup counts as removed.
  result.removed = dropped.map((b) => ({ ...view(b), kind: b.kind }));
  // Read by the forget step, before the store forgets: the copies step prunes by the same decisions.
  let decisions: Awaited<ReturnType<typeof decideCopies>> = [];
  const withCopiesOnly = deps.store.copies.length > 0 || copiesOnly.length > 0;
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
        explain:
          'Forgets their snapshots in the store (unless a kept backup shares one) and removes them from the inventory, but for those a copy store keeps by its own retention: they stay, held by the copies only.',
        run: async (ctx) => {
          decisions = await decideCopies(deps, copyInput, ctx.signal);
          const split = splitByCopies(decisions, dropped, []);
          ctx.state.removed = split.removed;
          ctx.state.copiesOnly = split.toCopiesOnly;
          ctx.state.kept.push(...split.deferred.map((b) => ({ id: b.id, instance: b.instance, createdAt: b.createdAt })));
          if (split.deferred.length)
            ctx.log(
              `${split.unread.join(', ')} could not be read: ${split.deferred.map((b) => b.id).join(', ')} stay in the store until a prune can read it (it may be their only other copy)`,
              'warn',
            );
          const removed = new Set(ctx.state.removed.map((b) => b.id));
          const toCopies = new Set(ctx.state.copiesOnly.map((b) => b.id));
          const gone = (b: Backup) => removed.has(b.id) || toCopies.has(b.id);
          const stillUsed = new Set<string>();
          const snaps = (b: Backup) => [b.manifest.code?.snapshot, b.manifest.db?.snapshot].filter((s): s is string => !!s);
          // What only the copies hold keeps nothing in the store.
          for (const b of all) if (!gone(b) && !b.copiesOnlySince) snaps(b).forEach((s) => stillUsed.add(s));
          const forget = [...new Set(all.filter(gone).flatMap(snaps))].filter((s) => !stillUsed.has(s));
          // The partial snapshots a killed backup left (no backup records them) go too. These
          // instances are locked for the prune (the CLI takes their locks before deciding).
          const orphans = await deps.store.orphans(opts.instance ? [opts.instance] : [...byInstance.keys()], new Set(all.flatMap(snaps)));
          if (orphans.length) ctx.log(`${orphans.length} snapshots that no backup records (left by a backup that was killed) are dropped too`);
          forget.push(...orphans);
          if (forget.length) await deps.store.forget(forget);
          deps.inv.db.transaction(() => {
            removed.forEach((id) => deps.inv.removeBackup(id));
            toCopies.forEach((id) => deps.inv.markCopiesOnly(id));
          })();
          ctx.state.snapshotsForgotten = forget.length;
          for (const b of ctx.state.copiesOnly) ctx.log(`${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt}) dropped from the store, kept as copy-only: held by ${b.copies.join(', ')}`);
          ctx.log(`${removed.size + toCopies.size} backups dropped from the store (${toCopies.size} kept as copy-only), ${forget.length} snapshots forgotten, ${ctx.state.kept.length} backups kept`);
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
                ctx.state.copies = await pruneCopies(deps, ctx, decisions);
              },
            },
          ]
        : []),
      ...(withCopiesOnly
        ? [
            {
              name: 'copies-only',
              title: 'Forget the copy-only backups no copy store keeps',
              explain: 'A backup only the copy stores held goes from the inventory once none of them keeps it whole; while a copy store cannot be read, none goes.',
              run: async (ctx: StepIO & { state: PruneResult }) => {
                // Those just marked count as copy-only too: a copy that could not be read kept them.
                const marked = new Set(ctx.state.copiesOnly.map((b) => b.id));
                const split = splitByCopies(decisions, [], [...copiesOnly, ...all.filter((b) => marked.has(b.id))]);
                ctx.state.copiesOnlyDropped = split.copiesOnlyDropped;
                deps.inv.db.transaction(() => split.copiesOnlyDropped.forEach((b) => deps.inv.removeBackup(b.id)))();
                for (const b of split.copiesOnlyDropped) ctx.log(`copy-only ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt}) dropped from the inventory: no copy store keeps it`);
              },
            },
          ]
        : []),
    ],
    result: (s) => s,
    preview: async () => {
      const decided = await decideCopies(deps, copyInput);
      const split = splitByCopies(decided, dropped, copiesOnly);
      return [
        ...split.removed.map((b) => `would drop ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt})`),
        ...split.toCopiesOnly.map((b) => `would drop ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt}) from the store; it would stay as copy-only (held by ${b.copies.join(', ')})`),
        ...split.deferred.map((b) => `would keep ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt}) in the store for now: ${split.unread.join(', ')} cannot be read`),
        `would keep ${result.kept.length} backups: ${result.kept.map((b) => b.id).join(', ') || 'none'}`,
        ...decided.flatMap((d) => {
          if ('error' in d) return [`copy store ${d.repository}: cannot tell what would go (${d.error})`];
          return [
            ...d.removed.map((b) => `would drop ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt}) from copy store ${d.repository}`),
            `copy store ${d.repository}, by ${tiersText(d.retention)}: would keep ${d.kept.length} backups: ${d.kept.map((b) => b.id).join(', ') || 'none'}`,
          ];
        }),
        ...split.copiesOnlyDropped.map((b) => `would drop copy-only ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt}) from the inventory: no copy store keeps it`),
      ];
    },
  };
}
