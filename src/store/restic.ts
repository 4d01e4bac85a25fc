import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalShell } from '../remote/local.js';
import { CommandError, type ExecOptions, type ExecResult, type Shell } from '../remote/shell.js';
import { OpsError } from '../core/errors.js';
import type { Policy } from '../core/retention.js';
import { storeNotice } from './notices.js';
import { HELD, LOCK_READ_MS, exclusiveHolderIn, LOCK_WAIT_MS, Replay, STAYED_LOCKED_FIX, holderOf, minutes, removeStaleTempLocks, resticRetriesLocks } from './restic-locks.js';

export { LOCK_WAIT_INTERACTIVE_MS, LOCK_WAIT_MS } from './restic-locks.js';

export interface SnapshotResult {
  snapshotId: string;
  /** Bytes this snapshot added to the repository after deduplication (before compression). */
  dataAdded: number;
}

/**
 * The backup store: a restic repository (a local directory in the home by default, or any restic
 * backend URL). The password always travels by file, never by argv or stdin.
 */
export interface StoreOptions {
  /** The password, when it comes from the team's secret store rather than the home's file. */
  password?: () => string | undefined;
  /** restic -o options: an sftp store's `sftp.command` (its ssh, key and known_hosts). */
  options?: string[];
  /** Made ready before the first restic command (an sftp store's known_hosts, checked against the pinned key). */
  prepare?: () => Promise<void>;
  /** Second stores each backup is copied into (settings storeCopies). */
  copies?: Store[];
  /** How the store is named in the command log. */
  label?: string;
  /** How long a command waits for a lock another restic holds (settings storeLockWait). */
  lockWaitMs?: number;
  /** A copy store's own retention (settings storeCopyRetention): the tiers it sets; the others as the store keeps. */
  retention?: Partial<Policy>;
}

/** One snapshot as restic lists it. */
export interface SnapshotInfo {
  id: string;
  time: string;
  tags: string[];
  /** In a copy store: the id of the snapshot it is a copy of. */
  original?: string;
}

/** What restic says when a snapshot or the repository itself is not there: another store may have it. */
const MISSING = /no matching ID found|does not exist|unable to open config|Is there a repository at the following location|invalid id/i;

/** Passes writes on to `out` but never ends it: the caller ends it once a command has succeeded. */
function unending(out: Writable): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (out.write(chunk)) cb();
      else out.once('drain', () => cb());
    },
  });
}

/** The result of one restic check. */
export interface CheckResult {
  ok: boolean;
  /** restic's own words on what is wrong (the last lines), empty when ok. */
  error: string;
}

export class Store {
  readonly repository: string;
  readonly passwordFile: string;
  /** The second stores (settings storeCopies), filled with restic copy; restores fall back on them. */
  readonly copies: Store[];
  /** How long a command waits for a lock another restic holds before it gives up. */
  private lockWaitMs: number;
  private shellCache: Shell | undefined;
  private ready: Promise<void> | undefined;
  /** What each lock read so far says: who holds the store exclusively, or null (a shared lock). */
  private readonly lockHolders = new Map<string, string | null>();

  constructor(
    readonly home: string,
    repository?: string,
    private readonly opts: StoreOptions = {},
  ) {
    this.repository = repository || join(home, 'store');
    this.passwordFile = join(home, 'store.pass');
    this.copies = opts.copies ?? [];
    this.lockWaitMs = opts.lockWaitMs ?? LOCK_WAIT_MS;
  }

  /** How long this store and its copies wait for another restic's lock (unattended runs: longer). */
  setLockWait(ms: number): void {
    this.lockWaitMs = ms;
    for (const c of this.copies) c.setLockWait(ms);
  }

  private get label(): string {
    return this.opts.label ?? 'the backup store';
  }

  /** A copy store's own retention (settings storeCopyRetention); undefined: as the store keeps. */
  get retention(): Partial<Policy> | undefined {
    return this.opts.retention;
  }

  /** Whether the repository has been made (a copy store is made by its first copy, never by a reader). */
  async exists(): Promise<boolean> {
    await this.opts.prepare?.();
    return this.hasConfig(this.shell);
  }

  /** Whether the repository's config is there: the file for a local store, restic's answer for another. */
  private async hasConfig(shell: Shell): Promise<boolean> {
    return this.isLocal ? existsSync(join(this.localPath, 'config')) : (await shell.exec(this.restic('cat', 'config'))).code === 0;
  }

  /** Every snapshot of the store. */
  async snapshots(): Promise<SnapshotInfo[]> {
    await this.ensure();
    const res = await this.runUnlocked(this.restic('snapshots', '--json'));
    return (JSON.parse(res.stdout || '[]') as { id: string; time: string; tags?: string[]; original?: string }[]).map((s) => ({
      id: s.id,
      time: s.time,
      tags: s.tags ?? [],
      original: s.original,
    }));
  }

  /**
   * restic's environment, made at first use: a password kept in the team's secret store is opened
   * only when the store is used (the inventory records each opening), and reaches restic in its
   * environment, never argv.
   */
  private get shell(): Shell {
    this.shellCache ??= new LocalShell(this.env(), this.opts.label ?? 'the backup store');
    return this.shellCache;
  }

  private env(): Record<string, string> {
    const password = this.opts.password?.();
    const env: Record<string, string> = { RESTIC_REPOSITORY: this.repository, RESTIC_CACHE_DIR: join(this.home, 'cache'), RESTIC_PROGRESS_FPS: '2' };
    if (password !== undefined) env.RESTIC_PASSWORD = password;
    else env.RESTIC_PASSWORD_FILE = this.passwordFile;
    return env;
  }

  /** restic with this store's extended options (an sftp store's ssh command). */
  private restic(...args: string[]): string[] {
    return ['restic', ...(this.opts.options ?? []).flatMap((o) => ['-o', o]), ...args];
  }

  get isLocal(): boolean {
    return !/^[a-z0-9]+:/i.test(this.repository) || this.repository.startsWith('local:');
  }

  /** A local store's directory. */
  private get localPath(): string {
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
    await this.opts.prepare?.();
    if (!this.opts.password && !existsSync(this.passwordFile)) {
      writeFileSync(this.passwordFile, randomBytes(33).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    }
    if (!(await this.hasConfig(this.shell))) {
      const res = await this.shell.exec(this.restic('init'));
      if (res.code !== 0) throw new OpsError(`cannot create the backup store at ${this.repository}: ${res.stderr.trim()}`, 1, 'check that restic is installed and the location is writable');
    } else if (this.isLocal && this.hasLocks()) {
      // A restic killed before it could clean up (kill -9, a crash) leaves its lock behind, and an
      // exclusive one blocks every backup. Without --remove-all, unlock removes only stale locks:
      // those of processes on this machine that are gone (or older than 30 minutes), never a live one.
      await this.unlockStale();
    }
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
  private waitingForLock(argv: string[], run: (argv: string[]) => Promise<ExecResult>, signal?: AbortSignal, canRetry?: () => boolean): Promise<ExecResult> {
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
  private async exclusiveHolder(signal?: AbortSignal): Promise<string | undefined> {
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
   * reading stops once the file is gone (a local store), or after LOCK_READ_MS (another store).
   */
  private async readLock(id: string, signal?: AbortSignal): Promise<string | undefined> {
    const gone = new AbortController();
    const file = this.isLocal ? join(this.localPath, 'locks', id) : undefined;
    const timer = file ? setInterval(() => existsSync(file) || gone.abort(), 200) : setTimeout(() => gone.abort(), LOCK_READ_MS);
    try {
      const res = await this.shell.exec(this.restic('--no-lock', 'cat', 'lock', id), { signal: signal ? AbortSignal.any([signal, gone.signal]) : gone.signal });
      return res.code === 0 ? res.stdout : undefined;
    } catch (e) {
      if (gone.signal.aborted && !signal?.aborted) return undefined;
      throw e;
    } finally {
      clearInterval(timer);
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
    await this.lockWait(async () => ({ value: undefined, held: await this.exclusiveHolder(signal) }), { signal });
  }

  /** A restic command that reads no stream, waiting for another restic's lock (waitingForLock). */
  private execUnlocked(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    // Output goes on to the caller's stream only once: an attempt stopped at the lock wrote nothing.
    const out = opts.stdout;
    return this.waitingForLock(
      argv,
      async (a) => {
        const res = await this.shell.exec(a, { ...opts, stdout: out && unending(out) });
        if (res.code === 0) out?.end();
        return res;
      },
      opts.signal,
    );
  }

  /** execUnlocked, throwing unless restic exits 0. */
  private async runUnlocked(argv: string[]): Promise<ExecResult> {
    const res = await this.execUnlocked(argv);
    if (res.code !== 0) throw new CommandError(this.shell.label, ['restic', ...argv.slice(1 + 2 * (this.opts.options?.length ?? 0))].slice(0, 2), res);
    return res;
  }

  /** Stores one stream as a snapshot. The caller ends `src` only when the producer succeeded. */
  async backup(src: Readable, filename: string, tags: string[], signal?: AbortSignal): Promise<SnapshotResult> {
    await this.ensure();
    const argv = this.restic('backup', '--json', '--stdin', '--stdin-filename', filename, '--host', 'opsdeck', '--tag', tags.join(','));
    // A restic stopped at another's lock read nothing of the stream: the next attempt gets it all.
    const input = new Replay(src);
    const res = await this.waitingForLock(
      argv,
      (a) => this.shell.exec(a, { stdin: input.attempt(), signal }),
      signal,
      () => input.whole,
    );
    if (res.code !== 0 && HELD.test(res.stderr)) throw new OpsError(`${this.label} is locked by another restic process: ${holderOf(res.stderr)}`, 1, 'try again once it has ended');
    if (res.code !== 0) throw new OpsError(`the backup store refused ${filename}: ${res.stderr.trim().split('\n').slice(-2).join(' ')}`);
    for (const line of res.stdout.split('\n').reverse()) {
      if (!line.includes('"summary"')) continue;
      const s = JSON.parse(line);
      return { snapshotId: s.snapshot_id, dataAdded: s.data_added ?? 0 };
    }
    throw new OpsError(`restic printed no summary for ${filename}`);
  }

  /**
   * Stores a directory as a snapshot (a tree's mirror); restic reads only files whose stat changed
   * since `parent` (without one, restic's latest of the directory). A parent gone is searched for.
   */
  async backupDir(dir: string, tags: string[], signal?: AbortSignal, parent?: string): Promise<SnapshotResult> {
    await this.ensure();
    const argv = (p?: string) => this.restic('backup', '--json', '--host', 'opsdeck', '--tag', tags.join(','), ...(p ? ['--parent', p] : []), dir);
    let res = await this.waitingForLock(argv(parent), (a) => this.shell.exec(a, { signal }), signal);
    if (parent && res.code !== 0 && /no matching ID found/.test(res.stderr)) res = await this.waitingForLock(argv(), (a) => this.shell.exec(a, { signal }), signal);
    if (res.code !== 0) throw new OpsError(`the backup store refused ${dir}: ${res.stderr.trim().split('\n').slice(-2).join(' ')}`);
    const line = res.stdout
      .split('\n')
      .reverse()
      .find((l) => l.includes('"summary"'));
    if (!line) throw new OpsError(`restic printed no summary for ${dir}`);
    const s = JSON.parse(line);
    return { snapshotId: s.snapshot_id, dataAdded: s.data_added ?? 0 };
  }

  /**
   * Streams one stored file out of a snapshot. When this store does not have it (the store was lost,
   * the snapshot is gone), the copy stores are asked for their copy of it, before anything was written.
   */
  async dump(snapshot: string, filename: string, out: Writable, signal?: AbortSignal): Promise<void> {
    // With copies to fall back on, a restic that fails must not end `out`: the next one writes to it.
    const sink = this.copies.length ? unending(out) : out;
    let res: ExecResult | undefined;
    try {
      await this.ensure();
      res = await this.execUnlocked(this.restic('dump', snapshot, '/' + filename), { stdout: sink, signal });
    } catch (err) {
      if (signal?.aborted || !this.copies.length) throw err;
    }
    if (res?.code === 0) {
      if (sink !== out) out.end();
      return;
    }
    const why = res ? res.stderr.trim().split('\n').slice(-2).join(' ') : 'the store cannot be opened';
    // Only when this store lacks it (said before any byte of it): a stream cut half-way is no case for a copy.
    if (!signal?.aborted && (!res || MISSING.test(res.stderr))) {
      for (const copy of this.copies) {
        const id = await copy.copyOf(snapshot).catch(() => undefined);
        if (!id) continue;
        const r = await copy.execUnlocked(copy.restic('dump', id, '/' + filename), { stdout: unending(out), signal });
        if (r.code === 0) {
          out.end();
          return;
        }
      }
    }
    throw new OpsError(`cannot read ${filename} of snapshot ${snapshot} from the store: ${why}${this.copies.length ? ' (nor from its copies)' : ''}`);
  }

  /** This store's copy of a snapshot of the first store (restic copy records the original's id), or the snapshot itself. */
  async copyOf(snapshot: string): Promise<string | undefined> {
    await this.ensure();
    const res = await this.execUnlocked(this.restic('snapshots', '--json'));
    if (res.code !== 0) return undefined;
    const list = JSON.parse(res.stdout || '[]') as { id: string; original?: string }[];
    const match = (id: string | undefined) => !!id && (id === snapshot || (snapshot.length >= 8 && id.startsWith(snapshot)));
    return list.find((s) => match(s.original))?.id ?? list.find((s) => match(s.id))?.id;
  }

  /**
   * Copies snapshots of this store into a copy store (restic copy skips those it holds already).
   * A new copy store is made with this store's chunker parameters, so copies deduplicate as well.
   */
  async copyInto(copy: Store, snapshots: string[], signal?: AbortSignal): Promise<void> {
    if (!snapshots.length) return;
    await this.ensure();
    const { args: from, env: fromEnv } = this.copySource();
    // The copy's restic, with this store's password beside its own when the team keeps it.
    const sh = new LocalShell({ ...copy.env(), ...fromEnv }, copy.opts.label ?? `the copy store ${copy.repository}`);
    if (!copy.ready) {
      copy.ready = (async () => {
        await copy.opts.prepare?.();
        if (!copy.opts.password && !existsSync(copy.passwordFile)) throw new OpsError(`no password file ${copy.passwordFile}`);
        if (!(await copy.hasConfig(sh))) {
          const res = await sh.exec(copy.restic('init', '--copy-chunker-params', ...from));
          if (res.code !== 0) throw new OpsError(`cannot create the copy store at ${copy.repository}: ${res.stderr.trim()}`, 1, 'check that the location is writable');
        }
      })();
      copy.ready.catch(() => (copy.ready = undefined));
    }
    await copy.ready;
    // Either store may be locked by another restic (a prune of one, a check of the other): both wait.
    const argv = copy.restic('copy', ...from, ...snapshots);
    const res = await copy.waitingForLock(
      argv,
      async (a) => {
        const r = await sh.exec(a, { signal });
        if (r.code !== 0 && HELD.test(r.stderr)) await this.unlockStale().catch(() => {});
        return r;
      },
      signal,
    );
    if (res.code !== 0) throw new OpsError(`restic copy into ${copy.repository} failed: ${res.stderr.trim().split('\n').slice(-2).join(' ')}`);
  }

  /** restic copy's --from-* flags naming this store, and the environment they need. */
  private copySource(): { args: string[]; env: Record<string, string> } {
    const args = ['--from-repo', this.repository];
    const password = this.opts.password?.();
    // restic 0.14 reads no source password from its environment: a command prints it from there.
    if (password !== undefined) return { args: [...args, '--from-password-command', 'printenv OPSDECK_FROM_STORE_PASSWORD'], env: { OPSDECK_FROM_STORE_PASSWORD: password } };
    return { args: [...args, '--from-password-file', this.passwordFile], env: {} };
  }

  /** Bytes of pack data in the store (what a full read of it reads). */
  async size(): Promise<number> {
    await this.ensure();
    const res = await this.runUnlocked(this.restic('stats', '--json', '--mode', 'raw-data'));
    return Number((JSON.parse(res.stdout || '{}') as { total_size?: number }).total_size ?? 0);
  }

  /** restic check, reading part `part` of `parts` of the data packs (each part once: the whole store). */
  async check(part: number, parts: number, signal?: AbortSignal): Promise<CheckResult> {
    await this.ensure();
    const res = await this.execUnlocked(this.restic('check', '--read-data-subset', `${part}/${parts}`), { signal });
    if (res.code === 0) return { ok: true, error: '' };
    const said = `${res.stdout}\n${res.stderr}`
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^(using temporary cache|create exclusive lock|load indexes|check all packs|check snapshots|read group|no errors|\[)/i.test(l));
    return { ok: false, error: said.slice(-4).join(' / ') || `restic check exited ${res.code ?? res.signal}` };
  }

  async snapshotsTagged(tag: string): Promise<string[]> {
    await this.ensure();
    const res = await this.runUnlocked(this.restic('snapshots', '--json', '--tag', tag));
    return (JSON.parse(res.stdout || '[]') as { short_id: string; id: string }[]).map((s) => s.id);
  }

  async forget(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.ensure();
    await this.runUnlocked(this.restic('forget', ...ids));
  }

  /** Removes the data no snapshot uses any more (after forget). */
  async prune(): Promise<void> {
    await this.ensure();
    await this.runUnlocked(this.restic('prune'));
  }

  /**
   * Snapshots of these instances that no recorded backup uses: what a backup killed outright (kill -9,
   * a crash) left, since restic stores whatever it read up to the end of its input. Only for
   * instances whose lock the caller holds: no run of theirs can be adding a snapshot meanwhile.
   * None for a store elsewhere than the home's: another home sharing it may use the same names.
   */
  async orphans(instances: string[], used: Set<string>): Promise<string[]> {
    if (this.repository !== join(this.home, 'store')) return [];
    await this.ensure();
    const res = await this.runUnlocked(this.restic('snapshots', '--json'));
    const tags = new Set(instances.map((i) => `instance=${i}`));
    // A manifest may hold a snapshot's full id or a prefix of it: a snapshot is used when either matches.
    const isUsed = (id: string) => used.has(id) || [...used].some((u) => u.length >= 8 && id.startsWith(u));
    return (JSON.parse(res.stdout || '[]') as { id: string; tags?: string[] }[]).filter((s) => (s.tags ?? []).some((t) => tags.has(t)) && !isUsed(s.id)).map((s) => s.id);
  }

  /** Drops whatever a failed backup left under its tag, so no half stream is ever mistaken for one. */
  async discardTagged(tag: string): Promise<void> {
    await this.forget(await this.snapshotsTagged(tag));
  }
}
