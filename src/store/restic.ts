import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { LocalShell } from '../remote/local.js';
import type { ExecResult } from '../remote/shell.js';
import { OpsError } from '../core/errors.js';
import type { Policy } from '../core/retention.js';
import { HELD, Replay, holderOf } from './restic-locks.js';
import { ResticRepo, unending, type RepoOptions } from './restic-repo.js';

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
export interface StoreOptions extends RepoOptions {
  /** Second stores each backup is copied into (settings storeCopies). */
  copies?: Store[];
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

/** The result of one restic check. */
export interface CheckResult {
  ok: boolean;
  /** restic's own words on what is wrong (the last lines), empty when ok. */
  error: string;
}

/**
 * The store's operations: backups of a stream or a directory, dumps (falling back on the copy
 * stores), copies, checks, listings, forget and prune. How restic is run on the repository (its
 * environment, init, lock waits) is ResticRepo's.
 */
export class Store extends ResticRepo {
  /** The second stores (settings storeCopies), filled with restic copy; restores fall back on them. */
  readonly copies: Store[];
  /** A copy store's own retention (settings storeCopyRetention); undefined: as the store keeps. */
  readonly retention: Partial<Policy> | undefined;
  /** A local store's snapshots as restic last listed them, by id, in restic's order (snapshots()). */
  private readonly listed = new Map<string, SnapshotInfo>();
  /** The restic listing under way, and the count of writes when it started. */
  private pending: { at: number; list: Promise<SnapshotInfo[]> } | undefined;
  private writes = 0;

  constructor(home: string, repository?: string, opts: StoreOptions = {}) {
    super(home, repository, opts);
    this.copies = opts.copies ?? [];
    this.retention = opts.retention;
  }

  /** How long this store and its copies wait for another restic's lock (unattended runs: longer). */
  setLockWait(ms: number): void {
    this.lockWaitMs = ms;
    for (const c of this.copies) c.setLockWait(ms);
  }

  /**
   * Every snapshot of the store. A local store's list is read by restic once per process, then again
   * only when snapshots/ names one it did not list (each file is named by its content's hash, so what
   * restic said of it holds) or another restic holds the store exclusively (a forget may be half-way).
   */
  async snapshots(): Promise<SnapshotInfo[]> {
    await this.ensure();
    const ids = this.listed.size && (await this.exclusiveHolder()) === undefined ? this.localSnapshotIds() : undefined;
    if (ids?.every((id) => this.listed.has(id))) {
      const here = new Set(ids);
      return [...this.listed.values()].filter((x) => here.has(x.id));
    }
    // Callers side by side (a restore's two streams read from a copy) share one restic, unless this
    // store was written since it started: its list might not hold what was written.
    if (this.pending?.at !== this.writes) {
      const p = { at: this.writes, list: this.readSnapshots() };
      this.pending = p;
      p.list.then(
        () => this.pending === p && (this.pending = undefined),
        () => this.pending === p && (this.pending = undefined),
      );
    }
    return this.pending!.list;
  }

  private async readSnapshots(): Promise<SnapshotInfo[]> {
    const res = await this.runUnlocked(this.restic('snapshots', '--json'));
    const list = (JSON.parse(res.stdout || '[]') as { id: string; time: string; tags?: string[]; original?: string }[]).map((s) => ({
      id: s.id,
      time: s.time,
      tags: s.tags ?? [],
      original: s.original,
    }));
    if (this.isLocal) {
      this.listed.clear();
      for (const x of list) this.listed.set(x.id, x);
    }
    return list;
  }

  /** A write to this store (backup, copy into it, forget, prune), counted as it starts and as it ends. */
  private async writing<T>(fn: () => Promise<T>): Promise<T> {
    this.writes++;
    try {
      return await fn();
    } finally {
      this.writes++;
    }
  }

  /** The snapshot IDs in a local store's snapshots/ (its files' names; none when it is gone); undefined for another store or when unreadable. */
  private localSnapshotIds(): string[] | undefined {
    if (!this.isLocal) return undefined;
    try {
      return readdirSync(join(this.localPath, 'snapshots')).filter((n) => /^[0-9a-f]{64}$/.test(n));
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? [] : undefined;
    }
  }

  /** Whether a local store surely lacks a snapshot (an ID or a prefix of one): no file of snapshots/ is named so, as restic would find. */
  private lacksLocally(snapshot: string): boolean {
    const ids = /^[0-9a-f]+$/.test(snapshot) ? this.localSnapshotIds() : undefined;
    return !!ids && !ids.some((id) => id.startsWith(snapshot));
  }

  /** Stores one stream as a snapshot. The caller ends `src` only when the producer succeeded. */
  async backup(src: Readable, filename: string, tags: string[], signal?: AbortSignal): Promise<SnapshotResult> {
    await this.ensure();
    const argv = this.restic('backup', '--json', '--stdin', '--stdin-filename', filename, '--host', 'opsdeck', '--tag', tags.join(','));
    // A restic stopped at another's lock read nothing of the stream: the next attempt gets it all.
    const input = new Replay(src);
    const res = await this.writing(() =>
      this.waitingForLock(
        argv,
        (a) => this.shell.exec(a, { stdin: input.attempt(), signal }),
        signal,
        () => input.whole,
      ),
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
    let res = await this.writing(() => this.waitingForLock(argv(parent), (a) => this.shell.exec(a, { signal }), signal));
    if (parent && res.code !== 0 && /no matching ID found/.test(res.stderr)) res = await this.writing(() => this.waitingForLock(argv(), (a) => this.shell.exec(a, { signal }), signal));
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
    // A local store whose snapshots/ has no such snapshot (the store lost, the snapshot forgotten): to
    // the copies at once, without a restic that can only fail (nor ensure() making an empty store).
    const lacks = this.copies.length > 0 && this.lacksLocally(snapshot);
    if (!lacks) {
      try {
        await this.ensure();
        res = await this.sharedLock((firstByte) => this.execUnlocked(this.restic('dump', snapshot, '/' + filename), { stdout: sink, signal }, firstByte));
      } catch (err) {
        if (signal?.aborted || !this.copies.length) throw err;
      }
    }
    if (res?.code === 0) {
      if (sink !== out) out.end();
      return;
    }
    const why = lacks ? 'no such snapshot in it' : res ? res.stderr.trim().split('\n').slice(-2).join(' ') : 'the store cannot be opened';
    // Only when this store lacks it (said before any byte of it): a stream cut half-way is no case for a copy.
    if (!signal?.aborted && (lacks || !res || MISSING.test(res.stderr))) {
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

  /**
   * This store's copy of a snapshot of the first store (restic copy records the original's id), or
   * the snapshot itself; undefined when the store cannot be read. The listing is snapshots()', so a
   * restore's second stream asks no second restic.
   */
  async copyOf(snapshot: string): Promise<string | undefined> {
    let list: SnapshotInfo[];
    try {
      list = await this.snapshots();
    } catch {
      return undefined;
    }
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
        await copy.prepare();
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
    const res = await copy.writing(() =>
      copy.waitingForLock(
        argv,
        async (a) => {
          const r = await sh.exec(a, { signal });
          if (r.code !== 0 && HELD.test(r.stderr)) await this.unlockStale().catch(() => {});
          return r;
        },
        signal,
      ),
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
    await this.writing(() => this.runUnlocked(this.restic('forget', ...ids)));
  }

  /** Removes the data no snapshot uses any more (after forget). */
  async prune(): Promise<void> {
    await this.ensure();
    await this.writing(() => this.runUnlocked(this.restic('prune')));
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
