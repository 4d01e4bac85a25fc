import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { LocalShell } from '../remote/local.js';
import { CommandError, type ExecOptions, type ExecResult, type Shell } from '../remote/shell.js';
import { OpsError } from '../core/errors.js';

export interface SnapshotResult {
  snapshotId: string;
  /** Bytes this snapshot added to the repository after deduplication (before compression). */
  dataAdded: number;
}

/** restic's words for a store another process holds locked. */
const LOCKED = /repository is already locked|unable to create lock/i;

/**
 * The backup store: a restic repository (a local directory in the home by default, or any restic
 * backend URL). The password always travels by file, never by argv or stdin.
 */
export class Store {
  readonly repository: string;
  readonly passwordFile: string;
  private readonly shell: Shell;
  private ready: Promise<void> | undefined;

  constructor(
    readonly home: string,
    repository?: string,
  ) {
    this.repository = repository || join(home, 'store');
    this.passwordFile = join(home, 'store.pass');
    this.shell = new LocalShell({ RESTIC_REPOSITORY: this.repository, RESTIC_PASSWORD_FILE: this.passwordFile, RESTIC_CACHE_DIR: join(home, 'cache'), RESTIC_PROGRESS_FPS: '2' }, 'the backup store');
  }

  get isLocal(): boolean {
    return !/^[a-z0-9]+:/i.test(this.repository) || this.repository.startsWith('local:');
  }

  /** Makes the repository on first use, with a random password kept in a 0600 file. */
  ensure(): Promise<void> {
    // One promise for every caller: streams that start side by side must not both run restic init.
    this.ready ??= this.init();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  private async init(): Promise<void> {
    if (!existsSync(this.passwordFile)) {
      writeFileSync(this.passwordFile, randomBytes(33).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    }
    const exists = this.isLocal ? existsSync(join(this.repository.replace(/^local:/, ''), 'config')) : (await this.shell.exec(['restic', 'cat', 'config'])).code === 0;
    if (!exists) {
      const res = await this.shell.exec(['restic', 'init']);
      if (res.code !== 0) throw new OpsError(`cannot create the backup store at ${this.repository}: ${res.stderr.trim()}`, 1, 'check that restic is installed and the location is writable');
    } else if (this.isLocal && this.hasLocks()) {
      // A restic killed before it could clean up (kill -9, a crash) leaves its lock behind, and an
      // exclusive one blocks every backup. Without --remove-all, unlock removes only stale locks:
      // those of processes on this machine that are gone (or older than 30 minutes), never a live one.
      await this.unlockStale();
    }
  }

  private hasLocks(): boolean {
    try {
      return readdirSync(join(this.repository.replace(/^local:/, ''), 'locks')).length > 0;
    } catch {
      return false;
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
    await this.shell.exec(['restic', 'unlock']);
  }

  /**
   * Runs a restic command that reads no stream; when the store is locked, removes stale locks (of
   * dead restic processes) and tries once more. A live lock still fails, naming its holder.
   */
  private async execUnlocked(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    let res = await this.shell.exec(argv, opts);
    if (res.code !== 0 && LOCKED.test(res.stderr)) {
      await this.unlockStale();
      res = await this.shell.exec(argv, opts);
      if (res.code !== 0 && LOCKED.test(res.stderr)) {
        throw new OpsError(
          `the backup store is locked by another restic process: ${res.stderr
            .trim()
            .split('\n')
            .filter((l) => /lock|PID|created/i.test(l))
            .join(' ')}`,
          1,
          'wait for that operation to finish; if it is gone from another machine, remove its lock with: restic unlock (with the store settings of opsdeck settings)',
        );
      }
    }
    return res;
  }

  /** execUnlocked, throwing unless restic exits 0. */
  private async runUnlocked(argv: string[]): Promise<ExecResult> {
    const res = await this.execUnlocked(argv);
    if (res.code !== 0) throw new CommandError(this.shell.label, argv.slice(0, 2), res);
    return res;
  }

  /** Stores one stream as a snapshot. The caller ends `src` only when the producer succeeded. */
  async backup(src: Readable, filename: string, tags: string[], signal?: AbortSignal): Promise<SnapshotResult> {
    await this.ensure();
    const res = await this.shell.exec(['restic', 'backup', '--json', '--stdin', '--stdin-filename', filename, '--host', 'opsdeck', '--tag', tags.join(',')], { stdin: src, signal });
    if (res.code !== 0) throw new OpsError(`the backup store refused ${filename}: ${res.stderr.trim().split('\n').slice(-2).join(' ')}`);
    for (const line of res.stdout.split('\n').reverse()) {
      if (!line.includes('"summary"')) continue;
      const s = JSON.parse(line);
      return { snapshotId: s.snapshot_id, dataAdded: s.data_added ?? 0 };
    }
    throw new OpsError(`restic printed no summary for ${filename}`);
  }

  /** Streams one stored file out of a snapshot. */
  async dump(snapshot: string, filename: string, out: Writable, signal?: AbortSignal): Promise<void> {
    await this.ensure();
    const res = await this.execUnlocked(['restic', 'dump', snapshot, '/' + filename], { stdout: out, signal });
    if (res.code !== 0) throw new OpsError(`cannot read ${filename} of snapshot ${snapshot} from the store: ${res.stderr.trim().split('\n').slice(-2).join(' ')}`);
  }

  async snapshotsTagged(tag: string): Promise<string[]> {
    await this.ensure();
    const res = await this.runUnlocked(['restic', 'snapshots', '--json', '--tag', tag]);
    return (JSON.parse(res.stdout || '[]') as { short_id: string; id: string }[]).map((s) => s.id);
  }

  async forget(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.ensure();
    await this.runUnlocked(['restic', 'forget', ...ids]);
  }

  /** Removes the data no snapshot uses any more (after forget). */
  async prune(): Promise<void> {
    await this.ensure();
    await this.runUnlocked(['restic', 'prune']);
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
    const res = await this.runUnlocked(['restic', 'snapshots', '--json']);
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
