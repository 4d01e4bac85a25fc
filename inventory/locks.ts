/** Who holds an instance: run locks and the half-restored record a restore leaves while it is in its critical section. */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { LockedError } from '../src/core/errors.js';
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
