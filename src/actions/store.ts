import { storeRecords, type StoreCheck } from '../../inventory/store-records.js';
import type { Backup } from '../../inventory/index.js';
import type { Plan, StepIO } from '../core/plan.js';
import { OpsError, UsageError, errorMessage } from '../core/errors.js';
import type { Deps } from '../deps/deps.js';
import type { Store } from '../store/restic.js';

// ---- integrity checks with a time limit

export interface StoreCheckOpts {
  /** 'auto': as many parts as make one part fit the time limit; a number: a cycle of that many parts. */
  subset: 'auto' | number;
  /** The time limit of one check (and, with auto, what sizes its part). */
  maxDurationMs: number;
}

export interface StoreCheckResult {
  repository: string;
  part: number;
  parts: number;
  ok: boolean;
  error: string | null;
  ms: number;
  cycleStart: string;
  /** When the store was last read whole: the end of the newest cycle whose every part passed. */
  lastFullCycle: string | null;
}

interface StoreCheckState {
  size: number;
  part: number;
  parts: number;
  cycleStart: string;
  result?: StoreCheckResult;
}

/** Until a check has been timed on this store: what a local disk reads and decrypts, give or take. */
const DEFAULT_RATE = 20 * 1024 * 1024;
/** A part is sized to fill this share of the time limit: stores grow between checks. */
const BUDGET = 0.7;

/** "10m", "90s", "2h", "1h30m" in milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  const ms = m ? (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000 : 0;
  if (!ms) throw new UsageError(`invalid duration ${JSON.stringify(text)}`, 'write it as 10m, 90s, 2h or 1h30m');
  return ms;
}

/** --read-data-subset: auto, or a whole number of parts (the cycle's length in runs). */
export function parseSubset(text: string): 'auto' | number {
  if (text === 'auto') return 'auto';
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new UsageError(`invalid --read-data-subset ${JSON.stringify(text)}`, 'auto, or how many runs read the store once (a whole number, e.g. 7)');
  return n;
}

/** Bytes per millisecond the recent checks read at (none yet: undefined). */
function measuredRate(checks: StoreCheck[]): number | undefined {
  const rates = checks.filter((c) => c.ms > 0 && c.bytes > 0).map((c) => c.bytes / c.ms);
  if (!rates.length) return undefined;
  return rates.slice(0, 5).sort((a, b) => a - b)[Math.floor(Math.min(rates.length, 5) / 2)];
}

/**
 * backups check --read-data-subset: restic check reading one part of the store's data each run
 * (--read-data-subset n/t), the next part next time, so the whole store is read once per cycle of t
 * runs, each within the time limit. The result is recorded (a cycle whose every part passed gives
 * the full-cycle date); a failure fails the run, which alerts when unattended.
 */
export function storeCheckPlan(deps: Deps, opts: StoreCheckOpts): Plan<StoreCheckState, StoreCheckResult> {
  const records = storeRecords(deps.inv);
  const repository = deps.store.repository;
  const state: StoreCheckState = { size: 0, part: 1, parts: 1, cycleStart: '' };
  return {
    command: 'backups check --read-data-subset',
    params: { repository, subset: opts.subset, maxDurationMs: opts.maxDurationMs },
    instance: null,
    state,
    steps: [
      {
        name: 'plan',
        title: 'Size the store and pick the part of its cycle to read',
        explain: 'Reads the size of the store (its index only) and the last checks: the next part of the current cycle, or part 1 of a new one.',
        run: async (ctx) => {
          const s = ctx.state;
          s.size = await deps.store.size();
          const past = records.checks(repository, 50);
          const last = past[0];
          // A cycle keeps its number of parts to its end; one cut short by the time limit starts again.
          if (last && last.part < last.parts && last.error !== TIMED_OUT && (opts.subset === 'auto' || opts.subset === last.parts)) {
            s.parts = last.parts;
            s.part = last.part + 1;
            s.cycleStart = last.cycleStart;
          } else {
            const rate = measuredRate(past) ?? DEFAULT_RATE / 1000;
            s.parts = opts.subset === 'auto' ? Math.max(1, Math.min(10_000, Math.ceil(s.size / (rate * opts.maxDurationMs * BUDGET)))) : opts.subset;
            s.part = 1;
            s.cycleStart = new Date().toISOString();
          }
          ctx.log(`store ${repository}: ${s.size} bytes of data; reading part ${s.part} of ${s.parts} (cycle begun ${s.cycleStart})`);
        },
      },
      {
        name: 'check',
        title: 'Check the store, reading its part of the data',
        explain: 'restic check --read-data-subset PART/PARTS: the structure of the whole store, and the data of one part read back and decrypted. Stopped at the time limit.',
        run: async (ctx) => {
          const s = ctx.state;
          const t0 = Date.now();
          const limit = AbortSignal.timeout(opts.maxDurationMs);
          const signal = AbortSignal.any([ctx.signal, limit]);
          let ok = false;
          let error: string | null;
          try {
            const r = await deps.store.check(s.part, s.parts, signal);
            ok = r.ok;
            error = r.ok ? null : r.error;
          } catch (err) {
            if (ctx.signal.aborted) throw err;
            error = limit.aborted ? TIMED_OUT : errorMessage(err);
          }
          if (!ok && limit.aborted && !ctx.signal.aborted) error = TIMED_OUT;
          const ms = Date.now() - t0;
          const cycle = records.checks(repository, s.parts + 10).filter((c) => c.cycleStart === s.cycleStart && c.parts === s.parts);
          const allPassed = ok && s.part === s.parts && Array.from({ length: s.parts - 1 }, (_, i) => i + 1).every((p) => cycle.some((c) => c.part === p && c.ok));
          const fullCycleAt = allPassed ? new Date().toISOString() : null;
          records.addCheck({
            repository,
            part: s.part,
            parts: s.parts,
            cycleStart: s.cycleStart,
            ok,
            ms,
            bytes: error === TIMED_OUT ? 0 : Math.round(s.size / s.parts),
            error,
            fullCycleAt,
          });
          s.result = { repository, part: s.part, parts: s.parts, ok, error, ms, cycleStart: s.cycleStart, lastFullCycle: records.lastFullCycle(repository) };
          if (!ok) {
            throw new OpsError(
              error === TIMED_OUT
                ? `the check of part ${s.part}/${s.parts} of the store did not end within ${Math.round(opts.maxDurationMs / 1000)} s: stopped`
                : `the store ${repository} is damaged (part ${s.part}/${s.parts}): ${error}`,
              1,
              error === TIMED_OUT
                ? 'the next check starts a new cycle of smaller parts; or give more time with --max-duration'
                : 'see what restic finds with: restic check --read-data (with the store settings of opsdeck settings); then verify the backups that use it: opsdeck backups verify ID',
            );
          }
          ctx.log(`part ${s.part}/${s.parts} read and sound in ${Math.round(ms / 100) / 10} s${fullCycleAt ? `: cycle complete, the whole store was read since ${s.cycleStart}` : ''}`);
        },
      },
    ],
    result: (s) => s.result!,
    preview: async () => [`would check ${repository} with restic check --read-data-subset N/T (auto: parts sized for ${Math.round(opts.maxDurationMs / 1000)} s)`],
  };
}

const TIMED_OUT = 'stopped at the time limit';

// ---- copies

export interface CopyResult {
  copies: { repository: string; snapshots: number; ok: boolean; error?: string }[];
}

/** The snapshots the recorded backups use. */
export function backupSnapshots(backups: Backup[]): string[] {
  return [...new Set(backups.flatMap((b) => [b.manifest.code?.snapshot, b.manifest.db?.snapshot]).filter((s): s is string => !!s))];
}

/** Copies snapshots into every copy store; a copy that fails is said and the others go on. */
export async function copyToAll(store: Store, snapshots: string[], ctx: StepIO): Promise<CopyResult['copies']> {
  const out: CopyResult['copies'] = [];
  for (const copy of store.copies) {
    try {
      await store.copyInto(copy, snapshots, ctx.signal);
      out.push({ repository: copy.repository, snapshots: snapshots.length, ok: true });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      out.push({ repository: copy.repository, snapshots: snapshots.length, ok: false, error: errorMessage(err) });
      ctx.log(`copy into ${copy.repository} failed: ${errorMessage(err)}; backups copy tries again`, 'warn');
    }
  }
  return out;
}

/**
 * backups copy: every recorded backup (of one instance, or all) copied into each copy store
 * (settings storeCopies) with restic copy, which skips what a copy holds already. Nothing to undo:
 * a copy only adds snapshots, and the next copy would add them again.
 */
export function copyPlan(deps: Deps, instance?: string): Plan<CopyResult, CopyResult> {
  if (instance) deps.inv.requireInstance(instance);
  if (!deps.store.copies.length) throw new UsageError('no copy stores are set', 'name them first: opsdeck settings storeCopies /mnt/offsite/restic,sftp:vault:/srv/restic');
  // Not a backup only the copies hold: the store has none of it to copy.
  const snapshots = backupSnapshots(deps.inv.listBackups(instance).filter((b) => !b.copiesOnlySince));
  return {
    command: 'backups copy',
    params: { instance, copies: deps.store.copies.map((c) => c.repository) },
    instance: null,
    state: { copies: [] },
    steps: [
      {
        name: 'copy',
        title: `Copy ${snapshots.length} snapshots into ${deps.store.copies.length} copy store${deps.store.copies.length > 1 ? 's' : ''}`,
        explain: 'restic copy from the store into each copy store; snapshots a copy holds already are skipped.',
        run: async (ctx) => {
          ctx.state.copies = await copyToAll(deps.store, snapshots, ctx);
          const bad = ctx.state.copies.filter((c) => !c.ok);
          if (bad.length) throw new OpsError(`copy failed into ${bad.map((c) => `${c.repository} (${c.error})`).join(', ')}`, 1, 'check that the copy store can be reached and written');
        },
      },
    ],
    result: (s) => s,
    preview: async () => deps.store.copies.map((c) => `would copy ${snapshots.length} snapshots of ${instance ?? 'every instance'} into ${c.repository}`),
  };
}
