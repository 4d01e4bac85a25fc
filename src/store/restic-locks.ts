import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Shell } from '../remote/shell.js';

/** restic's words for a lock another process holds: what waiting can outlast (not a lock it cannot write). */
export const HELD = /repository is already locked/i;

/** Who a restic lock file (as `restic cat lock` prints it) says holds the store exclusively, in restic's words; null for a shared lock. */
export function exclusiveHolderIn(text: string): string | null {
  let lock: { exclusive?: boolean; pid?: number; hostname?: string; username?: string; time?: string };
  try {
    lock = JSON.parse(text) as typeof lock;
  } catch {
    return null;
  }
  if (!lock.exclusive) return null;
  return `repository is already locked exclusively by PID ${lock.pid ?? '?'} on ${lock.hostname ?? '?'} by ${lock.username ?? '?'}; lock was created at ${lock.time ?? '?'}`;
}

/** How long a command waits for another restic's lock by default: cron's jobs (a prune, a check, a copy) collide. */
export const LOCK_WAIT_MS = 10 * 60_000;
/** At a terminal someone is waiting too: at most this long, unless the setting is shorter. */
export const LOCK_WAIT_INTERACTIVE_MS = 60_000;
/** Reading one lock of a remote store: a few round trips; longer is restic retrying a lock that went. */
export const LOCK_READ_MS = 20_000;

/** The lines of restic's complaint that name the lock's holder. */
export const holderOf = (stderr: string) =>
  stderr
    .trim()
    .split('\n')
    .filter((l) => /locked|lock was created|PID/i.test(l))
    .map((l) => l.replace(/^.*?(repository is already locked)/i, '$1').trim())
    .join('; ') || 'another restic process';

/** What to do about a store that stayed locked past the wait. */
export const STAYED_LOCKED_FIX =
  'that operation (a prune, check or copy) is still running: try again once it has ended, or let runs wait longer (opsdeck settings storeLockWait 30m). A lock left by a process gone from another machine: restic unlock, with the store settings of opsdeck settings';

export const minutes = (ms: number) => (ms >= 60_000 ? `${Math.round(ms / 6000) / 10} min` : `${Math.round(ms / 1000)} s`);

/** Whether this machine's restic can wait for a lock itself (--retry-lock, restic 0.16 on); asked once. */
let retriesLocks: Promise<boolean> | undefined;
export function resticRetriesLocks(sh: Shell): Promise<boolean> {
  retriesLocks ??= sh.exec(['restic', 'version']).then(
    (r) => {
      const m = /restic (\d+)\.(\d+)/.exec(r.stdout);
      return !!m && (Number(m[1]) > 0 || Number(m[2]) >= 16);
    },
    () => false,
  );
  return retriesLocks;
}

/**
 * A stream backup's input, given again to a restic that stopped at a lock. restic takes its lock
 * before it reads a byte of stdin, so what it was given then is all still here to give the next one;
 * past LIMIT bytes restic has been reading (the pipe holds far less), so nothing is kept after that.
 */
export class Replay {
  private static readonly LIMIT = 4 * 1024 * 1024;
  private kept: Buffer[] = [];
  private size = 0;
  private current: PassThrough | undefined;
  private ended = false;
  /** The producer's failure, kept: an attempt started after it must end with it too, not wait for more input. */
  private failed: Error | undefined;

  constructor(private readonly src: Readable) {
    src.on('data', (b: Buffer) => {
      this.size += b.length;
      if (this.size <= Replay.LIMIT) this.kept.push(b);
      else this.kept = [];
      if (this.current && !this.current.write(b)) src.pause();
    });
    src.on('end', () => {
      this.ended = true;
      this.current?.end();
    });
    src.on('error', (e) => {
      this.failed = e;
      this.current?.destroy(e);
    });
    src.pause();
  }

  /** Whether everything read so far can be given again. */
  get whole(): boolean {
    return this.size <= Replay.LIMIT;
  }

  /** The input of the next attempt: what earlier ones were given, then the rest as it comes. */
  attempt(): Readable {
    this.current?.destroy();
    const p = new PassThrough();
    // Its failure is the producer's, judged by the command that reads it (drive); an attempt whose
    // restic is gone has no listener left, and an unheard 'error' would end the process.
    p.on('error', () => {});
    this.current = p;
    p.on('drain', () => this.src.resume());
    p.on('close', () => this.current === p && this.src.pause());
    if (this.failed) {
      p.destroy(this.failed);
      return p;
    }
    for (const b of this.kept) p.write(b);
    if (this.ended) p.end();
    else this.src.resume();
    return p;
  }
}
/**
 * Whether a restic process on this machine may be using the local repository at `dir` (Linux: /proc;
 * its argv or RESTIC_REPOSITORY names it). When unsure (no /proc, another user's process), yes.
 */
function resticUsesHere(dir: string): boolean {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return true;
  }
  const names = [dir, `local:${dir}`];
  return pids.some((p) => {
    try {
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== 'restic') return false;
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (names.some((n) => argv.includes(n))) return true;
      return readFileSync(`/proc/${p}/environ`, 'utf8')
        .split('\0')
        .some((e) => names.some((n) => e === `RESTIC_REPOSITORY=${n}`));
    } catch (err) {
      // Gone meanwhile: not using it; not ours to read: it may be.
      return (err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH';
    }
  });
}

/** How long a temporary lock file must stay to be taken for a dead restic's (see removeStaleTempLocks). */
const TEMP_LOCK_PAUSE_MS = 1000;

/**
 * restic's local backend writes a lock to `<id>-tmp-<n>` and then renames it; a restic stopped
 * between the two (a signal exits it while its lock is being written) leaves that file, which
 * restic never lists nor removes. Only a restic on this machine writes a local store's locks: while
 * none here uses this store, such a file is stale; and one still there after a pause (a live restic
 * holds the name for one write) is too. Both must hold. Removing one a live restic was about to
 * rename would only make that restic fail to lock, never lose data.
 */
export async function removeStaleTempLocks(repo: string): Promise<void> {
  if (resticUsesHere(repo)) return;
  const dir = join(repo, 'locks');
  const temps = (): string[] => {
    try {
      return readdirSync(dir).filter((n) => n.includes('-tmp-'));
    } catch {
      return [];
    }
  };
  const seen = temps();
  if (seen.length === 0) return;
  await sleep(TEMP_LOCK_PAUSE_MS);
  for (const name of temps()) if (seen.includes(name)) rmSync(join(dir, name), { force: true });
}
