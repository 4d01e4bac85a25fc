import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalShell } from '../remote/local.js';
import { CommandError, type ExecOptions, type ExecResult, type Shell } from '../remote/shell.js';
import { OpsError } from '../core/errors.js';
import { storeNotice } from './notices.js';
import { DRAWN_PASSWORD, setKeyCost } from './restic-key.js';
import { HELD, LOCK_READ_MS, exclusiveHolderIn, LOCK_WAIT_MS, STAYED_LOCKED_FIX, holderOf, minutes, removeStaleTempLocks, resticRetriesLocks } from './restic-locks.js';

/** How restic reaches one repository: its password, its extended options, its label and lock wait. */
export interface RepoOptions {
  /** The password, when it comes from the team's secret store rather than the home's file. */
  password?: () => string | undefined;
  /** restic -o options: an sftp store's `sftp.command` (its ssh, key and known_hosts). */
  options?: string[];
  /** Made ready before the first restic command (an sftp store's known_hosts, checked against the pinned key). */
  prepare?: () => Promise<void>;
  /** How the store is named in the command log. */
  label?: string;
  /** How long a command waits for a lock another restic holds (settings storeLockWait). */
  lockWaitMs?: number;
}

/** Passes writes on to `out` but never ends it: the caller ends it once a command has succeeded. */
export function unending(out: Writable, firstByte?: () => void): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      firstByte?.();
      firstByte = undefined;
      if (out.write(chunk)) cb();
      else out.once('drain', () => cb());
    },
  });
}

/**
 * One restic repository as restic is run on it: its environment (the password by file or from the
 * team's store, never argv), the repository made on first use, and the wait for a lock another
 * restic holds (stale ones removed, live ones waited out). The Store (restic.ts) builds its
 * operations on these.
 */
export class ResticRepo {
  readonly repository: string;
  readonly passwordFile: string;
  /** How long a command waits for a lock another restic holds before it gives up. */
  protected lockWaitMs: number;
  private shellCache: Shell | undefined;
  protected ready: Promise<void> | undefined;
  /** What each lock read so far says: who holds the store exclusively, or null (a shared lock). */
  private readonly lockHolders = new Map<string, string | null>();
  /** Our restic commands holding a shared lock on the store right now (see sharedLock). */
  private sharedHeld = 0;
  /** The exclusive-lock check under way (sharedHolder): how many wait on it, and its stop. */
  private holderCheck: { waiting: number; stop: AbortController; held: Promise<string | undefined> } | undefined;
  private prepared: Promise<void> | undefined;
  /** A remote store's config was found (hasConfig): asked once per process. */
  private configSeen = false;

  constructor(
    readonly home: string,
    repository: string | undefined,
    protected readonly opts: RepoOptions = {},
  ) {
    this.repository = repository || join(home, 'store');
    this.passwordFile = join(home, 'store.pass');
    this.lockWaitMs = opts.lockWaitMs ?? LOCK_WAIT_MS;
  }

  protected get label(): string {
    return this.opts.label ?? 'the backup store';
  }

  /** Whether the repository has been made (a copy store is made by its first copy, never by a reader). */
  async exists(): Promise<boolean> {
    await this.prepare();
    return this.hasConfig(this.shell);
  }

  /**
   * The store's preparation (an sftp store's known_hosts from the pinned key, by ssh-keyscan), once
   * per process as ensure() is: exists() and ensure() both need it, often in one run.
   */
  protected prepare(): Promise<void> {
    if (!this.opts.prepare) return Promise.resolve();
    this.prepared ??= this.opts.prepare();
    this.prepared.catch(() => (this.prepared = undefined));
    return this.prepared;
  }

  /**
   * Whether the repository's config is there: the file for a local store, restic's answer for another.
   * A remote store's yes is kept (a restic start each): a config once there stays, as ensure() assumes.
   */
  protected async hasConfig(shell: Shell): Promise<boolean> {
    if (this.isLocal) return existsSync(join(this.localPath, 'config'));
    this.configSeen ||= (await shell.exec(this.restic('cat', 'config'))).code === 0;
    return this.configSeen;
  }

  /**
   * restic's environment, made at first use: a password kept in the team's secret store is opened
   * only when the store is used (the inventory records each opening), and reaches restic in its
   * environment, never argv.
   */
  protected get shell(): Shell {
    this.shellCache ??= new LocalShell(this.env(), this.opts.label ?? 'the backup store');
    return this.shellCache;
  }

  protected env(): Record<string, string> {
    const password = this.opts.password?.();
    const env: Record<string, string> = { RESTIC_REPOSITORY: this.repository, RESTIC_CACHE_DIR: join(this.home, 'cache'), RESTIC_PROGRESS_FPS: '2' };
    if (password !== undefined) env.RESTIC_PASSWORD = password;
    else env.RESTIC_PASSWORD_FILE = this.passwordFile;
    return env;
  }

  /** restic with this store's extended options (an sftp store's ssh command). */
  protected restic(...args: string[]): string[] {
    return ['restic', ...(this.opts.options ?? []).flatMap((o) => ['-o', o]), ...args];
  }

  get isLocal(): boolean {
    return !/^[a-z0-9]+:/i.test(this.repository) || this.repository.startsWith('local:');
  }

  /** A local store's directory. */
  protected get localPath(): string {
    return this.repository.replace(/^local:/, '');
  }

  /** Makes the repository on first use, with a random password kept in a 0600 file. */
  ensure(): Promise<void> {
    // One promise for every caller: streams that start side by side must not both run restic init.
    this.ready ??= this.init();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  private async init(): Promise<void> {
    await this.prepare();
    let drawn = false;
    if (!this.opts.password && !existsSync(this.passwordFile)) {
      writeFileSync(this.passwordFile, randomBytes(33).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
      drawn = true;
    }
    if (!(await this.hasConfig(this.shell))) {
      const res = await this.shell.exec(this.restic('init'));
      if (res.code !== 0) throw new OpsError(`cannot create the backup store at ${this.repository}: ${res.stderr.trim()}`, 1, 'check that restic is installed and the location is writable');
      if (drawn) await this.cheapKey();
    } else if (this.isLocal && this.hasLocks()) {
      // A restic killed before it could clean up (kill -9, a crash) leaves its lock behind, and an
      // exclusive one blocks every backup. Without --remove-all, unlock removes only stale locks:
      // those of processes on this machine that are gone (or older than 30 minutes), never a live one.
      await this.unlockStale();
    }
  }

  /**
   * A new local store whose password opsdeck drew (just now) gets a key that opens in milliseconds instead of
   * restic's half second of CPU, paid by every restic command (restic-key.ts says why that is safe).
   * Should it fail, the store keeps the key restic made, which works as before.
   */
  private async cheapKey(): Promise<void> {
    if (!this.isLocal || this.opts.password) return;
    const password = readFileSync(this.passwordFile, 'utf8').trim();
    // What was drawn, read back (a file changed under us keeps restic's key).
    if (!DRAWN_PASSWORD.test(password)) return;
    await setKeyCost(this.localPath, password, async () => {
      const res = await this.shell.exec(this.restic('cat', 'config'));
      if (res.code !== 0) throw new OpsError(`restic does not open ${this.repository} with its new key: ${res.stderr.trim()}`);
    }).catch(() => {});
  }

  private hasLocks(): boolean {
    return this.lockFiles().length > 0;
  }

  /** The file names in a local store's locks/. */
  private lockFiles(): string[] {
    try {
      return readdirSync(join(this.localPath, 'locks'));
    } catch {
      return [];
    }
  }

  /**
   * On the way out: a restic stopped mid-way (a cancelled run) can die before removing its lock
   * (a signal in its first milliseconds), and the next run would find the store locked. Stale locks
   * only, and only when there are any: a run that ended well costs nothing.
   */
  async settle(): Promise<void> {
    if (this.isLocal && this.hasLocks()) await this.unlockStale().catch(() => {});
  }

  /** Removes the stale locks of restic processes that are gone; live ones stay. */
  async unlockStale(): Promise<void> {
    await this.shell.exec(this.restic('unlock'));
    if (this.isLocal) await removeStaleTempLocks(this.localPath);
  }

  /**
   * Runs a restic command, waiting out a lock another restic holds (cron's prune, check and copy
   * collide with backups). `run` runs it once, given its argv with any extra global flags.
   */

  protected waitingForLock(argv: string[], run: (argv: string[]) => Promise<ExecResult>, signal?: AbortSignal, canRetry?: () => boolean): Promise<ExecResult> {
    return this.lockWait(
      async (retrySeconds) => {
        const res = await run(retrySeconds === undefined ? argv : [argv[0], '--retry-lock', `${retrySeconds}s`, ...argv.slice(1)]);
        return { value: res, held: res.code !== 0 && HELD.test(res.stderr) ? holderOf(res.stderr) : undefined };
      },
      { signal, canRetry, selfRetry: () => resticRetriesLocks(this.shell) },
    );
  }

  /**
   * The wait for another restic's lock: `probe` tries (a command, or a look at the locks) and says
   * who still holds it. Stale locks of dead restic processes go at once (never a live one); then a
   * growing pause until the wait's limit, saying what it waits for. A restic that can wait itself
   * (--retry-lock, `selfRetry`) is given what is left of the limit in one try.
   */
  private async lockWait<T>(
    probe: (retrySeconds?: number) => Promise<{ value: T; held?: string }>,
    o: { signal?: AbortSignal; canRetry?: () => boolean; selfRetry?: () => Promise<boolean> },
  ): Promise<T> {
    const canRetry = o.canRetry ?? (() => true);
    let r = await probe();
    if (r.held === undefined || !canRetry()) return r.value;
    const t0 = Date.now();
    await this.unlockStale().catch(() => {});
    r = await probe();
    if (r.held === undefined || !canRetry()) return r.value;
    const own = (await o.selfRetry?.()) ?? false;
    storeNotice(`${this.label} is locked: ${r.held}. Waiting up to ${minutes(this.lockWaitMs)} for it to be released${own ? ' (restic --retry-lock)' : ''}`);
    for (let pause = 1000; ; pause = Math.min(pause * 2, 30_000)) {
      const left = this.lockWaitMs - (Date.now() - t0);
      if (left <= 0 || !canRetry()) break;
      if (!own) await sleep(Math.min(pause, left), undefined, { signal: o.signal });
      // The holder may have died meanwhile without removing its lock (restic 0.14 sometimes exits on
      // SIGINT with its lock left): stale locks go before each look, or the wait ran to its limit.
      await this.unlockStale().catch(() => {});
      const next = await probe(own ? Math.max(1, Math.ceil(left / 1000)) : undefined);
      if (next.held === undefined) {
        storeNotice(`${this.label}: the lock was released after ${minutes(Date.now() - t0)}; going on`);
        return next.value;
      }
      r = next;
      if (own) break;
    }
    throw new OpsError(`${this.label} (${this.repository}) stayed locked by another restic process for ${minutes(Date.now() - t0)}, longer than this run waits: ${r.held}`, 1, STAYED_LOCKED_FIX);
  }

  /**
   * Who holds an exclusive lock on the store, in restic's words, or undefined when none does (a
   * backup shares the store with other non-exclusive locks). Read without locking; a lock removed
   * between the listing and its reading is gone, not held.
   */
  protected async exclusiveHolder(signal?: AbortSignal): Promise<string | undefined> {
    // restic's shared and exclusive locks exclude each other: while one of ours holds a shared one,
    // no one holds the store exclusively, and no lock file need be read (a restic start each).
    if (this.sharedHeld > 0) return undefined;
    // A local store's lock IDs are its file names (a store with nothing in locks/ is free); another
    // store's come from restic.
    let ids: string[];
    if (this.isLocal) ids = this.lockFiles();
    else {
      const list = await this.shell.exec(this.restic('--no-lock', 'list', 'locks'), { signal });
      if (list.code !== 0) return undefined;
      ids = list.stdout.split('\n').map((l) => l.trim());
    }
    for (const id of ids.filter((l) => /^[0-9a-f]{64}$/.test(l))) {
      // A lock's ID is the hash of its file, so what one says never changes: each is read once
      // (backups side by side see each other's locks at every stream).
      if (!this.lockHolders.has(id)) {
        const text = await this.readLock(id, signal);
        // Unread (gone, or too slow to read): not held, and asked again next time.
        if (text === undefined) continue;
        this.lockHolders.set(id, exclusiveHolderIn(text));
      }
      const holder = this.lockHolders.get(id);
      if (holder) return holder;
    }
    return undefined;
  }

  /**
   * One lock's content, or undefined when it cannot be read. restic 0.14 retries a missing file for
   * minutes, and a lock often goes between the listing and its reading (backups side by side): the
   * reading stops once the file is gone: a local store's file is looked at, another store's locks are
   * listed again every two seconds (each a restic start; a restore's safety backup met its own dumps'
   * vanished locks and waited the whole limit). At LOCK_READ_MS it stops anyway.
   */
  private async readLock(id: string, signal?: AbortSignal): Promise<string | undefined> {
    const gone = new AbortController();
    const file = this.isLocal ? join(this.localPath, 'locks', id) : undefined;
    const timer = file ? setInterval(() => existsSync(file) || gone.abort(), 200) : setTimeout(() => gone.abort(), LOCK_READ_MS);
    if (!file) void this.abortWhenUnlisted(id, gone);
    try {
      const res = await this.shell.exec(this.restic('--no-lock', 'cat', 'lock', id), { signal: signal ? AbortSignal.any([signal, gone.signal]) : gone.signal });
      return res.code === 0 ? res.stdout : undefined;
    } catch (e) {
      if (gone.signal.aborted && !signal?.aborted) return undefined;
      throw e;
    } finally {
      clearInterval(timer);
      // The read is over, whatever ended it: the lister stops too.
      gone.abort();
    }
  }

  /** Lists a remote store's locks every two seconds until `id` is not among them (then aborts `gone`) or `gone` ends otherwise. */
  private async abortWhenUnlisted(id: string, gone: AbortController): Promise<void> {
    while (!gone.signal.aborted) {
      await sleep(2000, undefined, { signal: gone.signal }).catch(() => {});
      if (gone.signal.aborted) return;
      const list = await this.shell.exec(this.restic('--no-lock', 'list', 'locks'), { signal: gone.signal }).catch(() => undefined);
      if (list?.code === 0 && !list.stdout.split('\n').some((l) => l.trim() === id)) gone.abort();
    }
  }

  /**
   * Waits until no other restic holds the store exclusively (a prune, check or copy), with the same
   * limit, pauses and notices as waitingForLock. For a stream backup, before its producer starts: a
   * dump held back on its stdout while restic waits loses its server (mariadb-dump's net_write_timeout)
   * or holds its snapshot. A lock taken right after this still meets backup's own wait (Replay).
   */
  async waitUntilUnlocked(signal?: AbortSignal): Promise<void> {
    await this.ensure();
    await this.lockWait(async () => ({ value: undefined, held: await this.sharedHolder(signal) }), { signal });
  }

  /**
   * exclusiveHolder for callers side by side (a backup's tree and dump streams): they join the check
   * under way, whose answer is as fresh as their own would be (a remote store's costs a restic start
   * each). The check stops only once every caller that joined it has given up.
   */
  private sharedHolder(signal?: AbortSignal): Promise<string | undefined> {
    let c = this.holderCheck;
    if (!c) {
      const stop = new AbortController();
      const fresh = { waiting: 0, stop, held: this.exclusiveHolder(stop.signal) };
      const done = () => this.holderCheck === fresh && (this.holderCheck = undefined);
      fresh.held.then(done, done);
      this.holderCheck = c = fresh;
    }
    const check = c;
    check.waiting++;
    if (!signal) return check.held;
    return new Promise((resolve, reject) => {
      const giveUp = () => {
        if (--check.waiting === 0) {
          // Stopped checks are joined by no one: a caller coming before the killed restic has exited starts afresh.
          if (this.holderCheck === check) this.holderCheck = undefined;
          check.stop.abort();
        }
        reject(signal.reason as Error);
      };
      if (signal.aborted) return giveUp();
      signal.addEventListener('abort', giveUp, { once: true });
      check.held.then(
        (v) => (signal.removeEventListener('abort', giveUp), resolve(v)),
        (e: unknown) => (signal.removeEventListener('abort', giveUp), reject(e as Error)),
      );
    });
  }

  /**
   * A restic command that takes a shared lock before it writes a byte and keeps it until it exits
   * (dump): counted as holding it from its first byte of output until it has ended.
   */
  protected async sharedLock<T>(run: (firstByte: () => void) => Promise<T>): Promise<T> {
    let held = false;
    try {
      return await run(() => {
        if (!held) this.sharedHeld++;
        held = true;
      });
    } finally {
      if (held) this.sharedHeld--;
    }
  }

  /** A restic command that reads no stream, waiting for another restic's lock (waitingForLock). */
  protected execUnlocked(argv: string[], opts: ExecOptions = {}, firstByte?: () => void): Promise<ExecResult> {
    // Output goes on to the caller's stream only once: an attempt stopped at the lock wrote nothing.
    const out = opts.stdout;
    return this.waitingForLock(
      argv,
      async (a) => {
        const res = await this.shell.exec(a, { ...opts, stdout: out && unending(out, firstByte) });
        if (res.code === 0) out?.end();
        return res;
      },
      opts.signal,
    );
  }

  /** execUnlocked, throwing unless restic exits 0. */
  protected async runUnlocked(argv: string[]): Promise<ExecResult> {
    const res = await this.execUnlocked(argv);
    if (res.code !== 0) throw new CommandError(this.shell.label, ['restic', ...argv.slice(1 + 2 * (this.opts.options?.length ?? 0))].slice(0, 2), res);
    return res;
  }
}
