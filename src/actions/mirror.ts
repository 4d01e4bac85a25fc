import type { Backup } from '../../inventory/index.js';
import type { Relation } from '../../inventory/relations.js';
import type { Plan, Step } from '../core/plan.js';
import { UsageError } from '../core/errors.js';
import { parseAge } from '../core/format.js';
import type { Deps } from '../deps/deps.js';
import { clonePlan } from './clone.js';
import type { RestoreState } from './restore.js';

/**
 * Delayed mirrors: an instance kept a copy of another as it was `lag` ago (yesterday.example.org,
 * aweekago.example.org), from the source's stored backups, so a user can find what they deleted.
 * Its own URL, database credentials, hooks and local files stay its own (a clone from a backup).
 */

export interface MirrorState extends RestoreState {
  /** The mirror's sync record before this run, for the undo. */
  previous?: Pick<Relation, 'syncedBackup' | 'syncedAt'>;
}

export interface MirrorSyncResult {
  mirror: string;
  source: string;
  /** The backup now on the mirror. */
  backup: string;
  backupTakenAt: string;
  /** Nothing to do: the mirror already held it. */
  upToDate: boolean;
  safetyBackup: string | null;
}

/** What `mirror list` and the console show of a mirror. */
export interface MirrorRow {
  mirror: string;
  source: string;
  lagSeconds: number;
  /** The backup on the mirror, when it was taken, and when it was put there. */
  backup: string | null;
  backupTakenAt: string | null;
  syncedAt: string | null;
  /** How old the mirror's data really is now (null: never synced). */
  realLagSeconds: number | null;
  /** A newer backup at least `lag` old exists: the next sync changes the mirror. */
  due: boolean;
}

/** Checks a new mirror before anything is written; returns its lag in seconds. */
export function checkMirror(deps: Deps, source: string, target: string, lag: string): number {
  const s = deps.inv.requireInstance(source);
  const t = deps.inv.requireInstance(target);
  if (s.name === t.name) throw new UsageError('an instance cannot be a mirror of itself', 'give another instance as the mirror');
  if (deps.inv.requireEnv(t.env).protected) {
    throw new UsageError(`${t.name} is in protected environment ${t.env}: a mirror is overwritten at every sync`, 'make the mirror an instance of an environment that is not protected');
  }
  if (s.dbUrl && !t.dbUrl) throw new UsageError(`${t.name} has no database to hold ${s.name}'s`, 'give it one first');
  const rel = deps.inv.relations.get(t.name);
  // A mirror is an unredacted copy: an instance set up to hold redacted data must not silently become one.
  if (rel.redact || rel.kind === 'staging' || rel.kind === 'dev')
    throw new UsageError(
      `${t.name} is ${rel.kind ? `the ${rel.kind} copy of ${rel.of}` : 'an instance'}${rel.redact ? ' with redaction rules' : ''}: a mirror holds the source's data unredacted`,
      `if that is meant, first: opsdeck instance set ${t.name} --standalone --no-redact`,
    );
  const held = rel.held;
  if (held) throw new UsageError(`${t.name} is held: ${held}`, `release it first: opsdeck instance set ${t.name} --release-hold`);
  const seconds = parseAge(lag) / 1000;
  return seconds;
}

/** The newest good backup of `source` taken at least `lagSeconds` ago. */
export function mirrorBackup(deps: Deps, source: string, lagSeconds: number, now = Date.now()): Backup | undefined {
  const cutoff = now - lagSeconds * 1000;
  return deps.inv.listBackups(source).find((b) => b.kind === 'manual' && !b.verifyFailed && Date.parse(b.createdAt) <= cutoff);
}

/** Every mirror the session may see, with its real lag. */
export function mirrorRows(deps: Deps, now = Date.now()): MirrorRow[] {
  return deps.inv.relations
    .list()
    .filter((r) => r.kind === 'mirror' && r.of && r.lagSeconds !== null)
    .map((r) => {
      const on = r.syncedBackup ? deps.inv.getBackup(r.syncedBackup) : undefined;
      const next = mirrorBackup(deps, r.of!, r.lagSeconds!, now);
      return {
        mirror: r.instance,
        source: r.of!,
        lagSeconds: r.lagSeconds!,
        backup: r.syncedBackup,
        backupTakenAt: on?.createdAt ?? null,
        syncedAt: r.syncedAt,
        realLagSeconds: on ? Math.round((now - Date.parse(on.createdAt)) / 1000) : null,
        due: !!next && next.id !== r.syncedBackup,
      };
    });
}

/** The mirror's relation, or a refusal saying how to make one. */
function mirrorOf(deps: Deps, name: string): Relation & { of: string; lagSeconds: number } {
  deps.inv.requireInstance(name);
  const rel = deps.inv.relations.get(name);
  if (rel.kind !== 'mirror' || !rel.of || rel.lagSeconds === null) throw new UsageError(`${name} is not a mirror`, `make it one: opsdeck mirror add SOURCE ${name} --lag 7d`);
  return rel as Relation & { of: string; lagSeconds: number };
}

/**
 * mirror sync NAME: the newest backup of the source at least the mirror's lag old, restored onto the
 * mirror (a clone from that backup: maintenance, safety backup, whole or not at all), then recorded.
 * When the mirror already holds it, nothing changes.
 */
export function mirrorSyncPlan(deps: Deps, name: string): Plan<MirrorState, MirrorSyncResult> {
  const rel = mirrorOf(deps, name);
  const target = deps.inv.requireInstance(name);
  // Checked again at every sync: the environment may have been made protected since.
  if (deps.inv.requireEnv(target.env).protected)
    throw new UsageError(`${name} is in protected environment ${target.env}: a mirror is never synced onto one`, `remove the mirror: opsdeck mirror remove ${name}`);
  const source = deps.inv.requireInstance(rel.of);
  const lag = rel.lagSeconds;
  const chosen = mirrorBackup(deps, source.name, lag);
  if (!chosen) {
    throw new UsageError(
      `${source.name} has no good backup at least ${Math.round(lag / 3600)} h old yet for mirror ${name}`,
      `back it up regularly (opsdeck backup ${source.name}); the mirror follows once one is old enough`,
    );
  }
  const record: Step<MirrorState> = {
    name: 'record',
    title: `Record that ${name} holds backup ${chosen.id} of ${source.name} (taken ${chosen.createdAt})`,
    run: async (ctx) => {
      const r = deps.inv.relations.get(name);
      ctx.state.previous = { syncedBackup: r.syncedBackup, syncedAt: r.syncedAt };
      deps.inv.relations.set(name, { syncedBackup: chosen.id, syncedAt: new Date().toISOString() });
    },
    undo: async (ctx) => {
      if (ctx.state.previous) deps.inv.relations.set(name, ctx.state.previous);
    },
  };
  const result = (upToDate: boolean) => (s: MirrorState) => ({ mirror: name, source: source.name, backup: chosen.id, backupTakenAt: chosen.createdAt, upToDate, safetyBackup: s.safety?.id ?? null });
  const params = { mirror: name, source: source.name, backup: chosen.id, lagSeconds: lag };
  if (chosen.id === rel.syncedBackup) {
    // Nothing to copy; still a run, so the audit trail shows the sync looked.
    const clone = clonePlan(deps, source.name, name, { backup: chosen.id });
    return {
      command: 'mirror sync',
      params,
      instance: name,
      state: clone.state,
      steps: [{ name: 'up-to-date', title: `${name} already holds backup ${chosen.id} of ${source.name} (taken ${chosen.createdAt}): nothing to do`, run: async () => {} }],
      result: result(true),
      preview: async () => [`${name} already holds backup ${chosen.id} of ${source.name}: nothing would change`],
    };
  }
  const clone = clonePlan(deps, source.name, name, { backup: chosen.id });
  return {
    ...clone,
    command: 'mirror sync',
    params,
    steps: [...clone.steps, record],
    result: result(false),
    preview: async () => [
      `would make mirror ${name} a copy of ${source.name} as backed up at ${chosen.createdAt} (${chosen.id}), the newest backup at least its lag old`,
      ...((await clone.preview?.()) ?? []).slice(1),
    ],
  };
}
