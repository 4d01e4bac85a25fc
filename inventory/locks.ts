/** Who holds an instance: run locks and the half-restored record a restore leaves while it is in its critical section. */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { LockedError } from '../src/core/errors.js';
import { safeUser } from './audit.js';
import type { SqlDriver } from './driver.js';
import type { HalfRestoredRow, LockRow } from './rows.js';
import { rowToHalf, rowToLock } from './rows.js';
import type { HalfRestored, LockRecord } from './types.js';

/** The session advisory locks of instances live in this key space (two-int form: LOCK_SPACE, hashtext(name)). */
export const LOCK_SPACE = 0x6f707364;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Who holds a lock, in words: the run, the user, the machine, the pid, since when. */
export function describeLock(l: LockRecord): string {
  return `${l.command}${l.runId !== null ? ` (run ${l.runId})` : ''} by user ${l.user} on ${l.host}, pid ${l.pid}, since ${l.startedAt}`;
}

/** On this machine, whether the lock's process is gone: pid dead, or reused by another process. */
export function lockIsStale(l: LockRecord): boolean {
  if (l.host !== hostname()) return false;
  if (!isAlive(l.pid)) return true;
  return !!l.procStart && procStart(l.pid) !== l.procStart;
}

export function lockedError(l: LockRecord): LockedError {
  const here = l.host === hostname();
  return new LockedError(
    `instance ${l.instance} is locked by another run: ${describeLock(l)}`,
    here
      ? `wait for it to finish (see it with: opsdeck runs${l.runId !== null ? ` ${l.runId}` : ''}); if that process is not opsdeck's run, release the lock with: opsdeck unlock ${l.instance}`
      : `wait for it to finish on ${l.host}; if that run is gone (the machine rebooted, the process was killed), release the lock with: opsdeck unlock ${l.instance}`,
  );
}

/**
 * When a process started: the boot's id and its start time in clock ticks (/proc/PID/stat, field 22).
 * A pid with another start time is another process: the lock's owner is gone. Null off Linux.
 */
export function procStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return ticks ? `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}:${ticks}` : null;
  } catch {
    return null;
  }
}

/** One line that says what state a half-restored instance is in and since when. */
export function describeHalfRestored(h: HalfRestored): string {
  const where = {
    'db-committing': 'while its database load was committing',
    'db-committed': 'after its database was replaced, before its code tree was',
    swapping: 'while its code tree was being swapped',
    swapped: 'after its code tree was swapped, before the run ended',
  }[h.phase];
  return `${h.instance} is HALF-RESTORED: ${h.command} run ${h.runId} stopped ${where} (${h.since})${h.safetyBackup ? `; its state before that run is safety backup ${h.safetyBackup}` : ''}`;
}

const now = () => new Date().toISOString();
const UNKNOWN_HOLDER: Omit<LockRecord, 'instance'> = { runId: null, pid: 0, host: 'another session', user: 'unknown', command: 'a run', startedAt: 'unknown' };

/**
 * The inventory's locks and half-restored records (tables `locks`, `half_restored`): one operation
 * per instance at a time, across processes. The Inventory delegates to it; `pg` says the driver is a
 * team's PostgreSQL, whose locks are session advisory locks.
 */
export class InstanceLocks {
  constructor(
    private readonly db: SqlDriver,
    private readonly pg: boolean,
  ) {}

  private sql(text: string) {
    return this.db.prepare(text);
  }

  /**
   * Several locks at once, all or none (a clone locks its target and the source it reads; a prune
   * every instance whose backups it decides on). A lock whose process is gone is taken over: on this
   * machine, when its pid is dead or now belongs to another process (its start time differs).
   */
  acquire(wanted: { instance: string; command: string }[], runId: number | null): void {
    if (this.pg) return this.acquirePg(wanted, runId);
    this.db.transaction(() => {
      for (const { instance, command } of wanted) {
        const held = this.get(instance);
        if (held) {
          if (!lockIsStale(held)) throw lockedError(held);
          this.sql('DELETE FROM locks WHERE instance = ?').run(instance);
        }
        this.insert(instance, command, runId);
      }
    }, 'immediate')();
  }
  private insert(instance: string, command: string, runId: number | null): void {
    this.sql('INSERT INTO locks (instance, run_id, pid, host, "user", command, started_at, proc_start) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      instance,
      runId,
      process.pid,
      hostname(),
      safeUser(),
      command,
      now(),
      procStart(process.pid),
    );
  }
  /**
   * PostgreSQL: the lock is a session advisory lock held by this process's connection, so it holds
   * across jump boxes and the server drops it with the session of a killed holder. The row says who
   * holds it; a row whose advisory lock nobody holds is a dead holder's, taken over.
   */
  private acquirePg(wanted: { instance: string; command: string }[], runId: number | null): void {
    const taken: string[] = [];
    try {
      for (const { instance, command } of wanted) {
        const got = (this.sql('SELECT pg_try_advisory_lock(?, hashtext(?)) AS ok').get(LOCK_SPACE, instance) as { ok: boolean }).ok;
        const held = this.get(instance);
        if (!got) throw lockedError(held ?? { instance, ...UNKNOWN_HOLDER });
        taken.push(instance);
        // Advisory locks stack within a session: a second lock of this process on the same instance.
        if (held && held.host === hostname() && held.pid === process.pid) throw lockedError(held);
        this.db.transaction(() => {
          this.sql('DELETE FROM locks WHERE instance = ?').run(instance);
          this.insert(instance, command, runId);
        })();
      }
    } catch (err) {
      for (const instance of taken) this.sql('SELECT pg_advisory_unlock(?, hashtext(?))').get(LOCK_SPACE, instance);
      throw err;
    }
  }
  /** Ties the instance's lock to its run, so a run whose process died can be told from one still going. */
  attachRun(instance: string, runId: number): void {
    this.sql('UPDATE locks SET run_id = ? WHERE instance = ? AND pid = ? AND host = ?').run(runId, instance, process.pid, hostname());
  }
  release(instance: string): void {
    const gone = this.sql('DELETE FROM locks WHERE instance = ? AND pid = ? AND host = ?').run(instance, process.pid, hostname()).changes > 0;
    if (gone && this.pg) this.sql('SELECT pg_advisory_unlock(?, hashtext(?))').get(LOCK_SPACE, instance);
  }
  get(instance: string): LockRecord | undefined {
    const r = this.sql('SELECT * FROM locks WHERE instance = ?').get(instance) as LockRow | undefined;
    return r ? rowToLock(r) : undefined;
  }
  /**
   * Whether the lock's holder is gone. SQLite: on this machine, its pid is dead or reused (elsewhere,
   * unknown: not stale). PostgreSQL: no session holds the instance's advisory lock any more.
   */
  isStale(l: LockRecord): boolean {
    if (!this.pg) return lockIsStale(l);
    const r = this.sql("SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = ?::int4::oid AND objid = hashtext(?)::oid AND objsubid = 2) AS stale").get(
      LOCK_SPACE,
      l.instance,
    ) as { stale: boolean };
    return r.stale;
  }
  /** Removes exactly this lock (not one taken since by another run): for opsdeck unlock. */
  break(l: LockRecord): boolean {
    // A live session's advisory lock cannot be broken from here; only its row could, which would hide the holder.
    if (this.pg && !this.isStale(l))
      throw new LockedError(`instance ${l.instance} is locked by a live run: ${describeLock(l)}`, `wait for it to finish on ${l.host}; the lock goes when that process ends, even if it is killed`);
    return this.sql('DELETE FROM locks WHERE instance = ? AND pid = ? AND host = ? AND started_at = ?').run(l.instance, l.pid, l.host, l.startedAt).changes > 0;
  }
  list(): LockRecord[] {
    return (this.sql('SELECT * FROM locks').all() as LockRow[]).map(rowToLock);
  }

  // ---- half-restored instances: a restore's critical section, recorded so a crash inside it is noticed
  /** Records (or moves on) the critical section of run `runId` on an instance. */
  setHalfRestored(r: Omit<HalfRestored, 'since' | 'dbKept'> & { dbKept?: string | null }): void {
    this.sql(
      `INSERT INTO half_restored (instance, run_id, command, phase, safety_backup, staging, old, db_touched, db_kept, since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (instance) DO UPDATE SET phase = excluded.phase, db_kept = excluded.db_kept,
         db_touched = CASE WHEN excluded.db_touched > half_restored.db_touched THEN excluded.db_touched ELSE half_restored.db_touched END
       WHERE half_restored.run_id = excluded.run_id`,
    ).run(r.instance, r.runId, r.command, r.phase, r.safetyBackup, r.staging, r.old, r.dbTouched ? 1 : 0, r.dbKept ?? null, now());
  }
  getHalfRestored(instance: string): HalfRestored | undefined {
    const r = this.sql('SELECT * FROM half_restored WHERE instance = ?').get(instance) as HalfRestoredRow | undefined;
    return r && rowToHalf(r);
  }
  listHalfRestored(): HalfRestored[] {
    return (this.sql('SELECT * FROM half_restored ORDER BY instance').all() as HalfRestoredRow[]).map(rowToHalf);
  }
  /** Clears the record of this run only (a later run's record is not this one's to clear). */
  clearHalfRestored(instance: string, runId: number): void {
    this.sql('DELETE FROM half_restored WHERE instance = ? AND run_id = ?').run(instance, runId);
  }
}
