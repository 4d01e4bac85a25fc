import { join } from 'node:path';
import { UsageError } from '../src/core/errors.js';
import type { Policy } from '../src/core/retention.js';
import { ensureHome } from './home.js';
import { inventoryPassword, inventoryUrlOf } from './connect.js';
import type { SqlDriver } from './driver.js';
import { PgDriver } from './postgres.js';
import { parseInventoryUrl } from './pg-target.js';
import { SqliteDriver } from './sqlite.js';
import type { BackupRow, EnvRow, HostRow, InstanceRow, NameRow, NotifyRow } from './rows.js';
import { LIST_SQL } from './list-sql.js';
import { rowToBackup, rowToHost, rowToInstance } from './rows.js';
import { SecretBox } from './secrets.js';
import { Rights } from './rights.js';
import { Changes } from './changes.js';
import { Relations } from './relations.js';
import { InstanceLocks } from './locks.js';
import { RunLog } from './runs.js';
import { DEFAULT_MAX_BACKUP_AGE } from './types.js';
import type { Backup, CommandLogRecord, DrillReport, Env, HalfRestored, Host, Instance, LockRecord, RunRecord, StepRecord } from './types.js';

// The records and helpers live beside the class; importers keep using inventory/index.js.
export * from './types.js';
export { redact } from './audit.js';
export { describeHalfRestored, describeLock, lockIsStale } from './locks.js';

const now = () => new Date().toISOString();

/** Where the inventory is, when not where the home's settings say (team init, tests). */
export interface InventoryOptions {
  /** postgres://ROLE@HOST:PORT/DB; default: OPSDECK_INVENTORY, the home's setting `inventory`, else SQLite in the home. */
  url?: string;
  password?: string;
  connectTimeoutMs?: number;
  /** For team init only: open a database that has no (or an older) opsdeck schema. */
  forInit?: boolean;
}

/**
 * The inventory: one SQLite file in the opsdeck home, or a team's PostgreSQL database. Every write is
 * a method here, in a transaction; the SQL is the same for both (driver.ts), but for the few
 * per-dialect places marked below.
 */
export class Inventory {
  readonly db: SqlDriver;
  readonly secrets: SecretBox;
  /** Where it lives, for people: the SQLite file, or postgres://ROLE@HOST:PORT/DB. */
  readonly file: string;
  /** The PostgreSQL driver, when the inventory is a team's. */
  readonly pg: PgDriver | undefined;
  /** Rights per environment (team inventory; on SQLite everything is allowed) and its secrets per environment. */
  readonly rights: Rights;
  /** Four-eyes change requests on protected environments (team inventory only). */
  readonly changes: Changes;
  /** How instances relate: staging, dev copy, delayed mirror; redaction rules; holds. */
  readonly relations: Relations;
  /** Run locks and half-restored records; the methods below delegate to it. */
  private readonly locks: InstanceLocks;
  /** Runs, their steps and commands; the methods below delegate to it. */
  private readonly runs: RunLog;

  constructor(
    readonly home: string,
    opts: InventoryOptions = {},
  ) {
    ensureHome(home);
    const url = opts.url ?? inventoryUrlOf(home);
    if (url) {
      this.pg = new PgDriver(parseInventoryUrl(url), opts.password ?? inventoryPassword(), opts);
      this.db = this.pg;
    } else {
      this.db = new SqliteDriver(join(home, 'inventory.sqlite'));
    }
    this.file = this.db.where;
    this.secrets = new SecretBox(home);
    this.rights = new Rights(this.db);
    this.changes = new Changes(this.db);
    this.relations = new Relations(this.db);
    this.locks = new InstanceLocks(this.db, !!this.pg);
    this.runs = new RunLog(this.db, !!this.pg, this.locks);
  }
  /** A password sealed for an instance: with its environment's key on a team inventory, else the home's key file. */
  private seal(env: string, instance: string, plain: string): string {
    return this.pg ? this.rights.seal(env, instance, plain) : this.secrets.seal(plain);
  }

  private sql(text: string) {
    return this.db.prepare(text);
  }

  /** Runs fn in one transaction: all of its writes happen, or none. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
  /** Seals and stores an instance's database password (replacing any). */
  setDbPassword(name: string, password: string): void {
    const inst = this.requireInstance(name);
    this.sql('UPDATE instances SET db_secret = ? WHERE name = ?').run(this.seal(inst.env, name, password), name);
  }

  close(): void {
    this.db.close();
  }

  // ---- environments
  addEnv(name: string, isProtected: boolean): Env {
    if (this.getEnv(name)) throw new UsageError(`environment ${name} already exists`, `list them with: opsdeck env list`);
    this.sql('INSERT INTO envs (name, protected, created_at) VALUES (?, ?, ?)').run(name, isProtected ? 1 : 0, now());
    return this.getEnv(name)!;
  }
  getEnv(name: string): Env | undefined {
    const r = this.sql('SELECT * FROM envs WHERE name = ?').get(name) as EnvRow | undefined;
    return r && { name: r.name, protected: !!r.protected, createdAt: r.created_at };
  }
  /** The retention policy set for an environment, if any. */
  retentionOf(name: string): Policy | undefined {
    const r = this.sql('SELECT retention FROM envs WHERE name = ?').get(name) as { retention: string | null } | undefined;
    return r?.retention ? JSON.parse(r.retention) : undefined;
  }
  setRetention(name: string, policy: Policy | null): void {
    this.requireEnv(name);
    this.sql('UPDATE envs SET retention = ? WHERE name = ?').run(policy ? JSON.stringify(policy) : null, name);
  }
  /** How old an environment's newest good backup may get: its own limit, else the default (26h). */
  backupAgeLimit(name: string): string {
    return this.maxBackupAge(name) ?? DEFAULT_MAX_BACKUP_AGE;
  }
  maxBackupAge(name: string): string | undefined {
    const r = this.sql('SELECT max_backup_age FROM envs WHERE name = ?').get(name) as { max_backup_age: string | null } | undefined;
    return r?.max_backup_age ?? undefined;
  }
  setMaxBackupAge(name: string, age: string | null): void {
    this.requireEnv(name);
    this.sql('UPDATE envs SET max_backup_age = ? WHERE name = ?').run(age, name);
  }
  listEnvs(): Env[] {
    return (this.sql(LIST_SQL.envs).all() as EnvRow[]).map((r) => ({ name: r.name, protected: !!r.protected, createdAt: r.created_at }));
  }
  requireEnv(name: string): Env {
    const e = this.getEnv(name);
    if (!e) throw new UsageError(`no environment named ${name}`, `create it with: opsdeck env add ${name}`);
    return e;
  }

  // ---- hosts
  addHost(h: Omit<Host, 'createdAt'>): Host {
    if (this.getHost(h.name)) throw new UsageError(`host ${h.name} already exists`, `see it with: opsdeck host show ${h.name}`);
    if (h.jump) this.requireHost(h.jump);
    this.sql('INSERT INTO hosts (name, address, port, "user", key_file, jump, host_key, become, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      h.name,
      h.address,
      h.port,
      h.user,
      h.keyFile,
      h.jump,
      h.hostKey,
      h.become ?? null,
      now(),
    );
    return this.getHost(h.name)!;
  }
  setHostBecome(name: string, user: string | null): void {
    this.requireHost(name);
    this.sql('UPDATE hosts SET become = ? WHERE name = ?').run(user, name);
  }
  getHost(name: string): Host | undefined {
    const r = this.sql('SELECT * FROM hosts WHERE name = ?').get(name) as HostRow | undefined;
    return r && rowToHost(r);
  }
  requireHost(name: string): Host {
    const h = this.getHost(name);
    if (!h) throw new UsageError(`no host named ${name}`, `list hosts with: opsdeck host list`);
    return h;
  }
  listHosts(): Host[] {
    return (this.sql(LIST_SQL.hosts).all() as HostRow[]).map(rowToHost);
  }
  pinHostKey(name: string, fingerprint: string): void {
    this.sql('UPDATE hosts SET host_key = ? WHERE name = ?').run(fingerprint, name);
  }
  removeHost(name: string): void {
    this.requireHost(name);
    const users = this.sql('SELECT name FROM instances WHERE host = ?').all(name) as NameRow[];
    if (users.length) {
      throw new UsageError(`host ${name} still has instances: ${users.map((u) => u.name).join(', ')}`, 'remove or move those instances first');
    }
    const jumps = this.sql('SELECT name FROM hosts WHERE jump = ?').all(name) as NameRow[];
    if (jumps.length) throw new UsageError(`host ${name} is the jump host of ${jumps.map((u) => u.name).join(', ')}`, 'change or remove those hosts first');
    this.sql('DELETE FROM hosts WHERE name = ?').run(name);
  }

  // ---- instances
  addInstance(
    i: Omit<Instance, 'createdAt' | 'hasDbPassword' | 'hooks' | 'health' | 'localPaths' | 'revision' | 'maintenanceSince' | 'watchExcludes' | 'metrics'> &
      Partial<Pick<Instance, 'hooks' | 'health' | 'localPaths' | 'revision'>> & { dbPassword?: string },
  ): Instance {
    if (this.getInstance(i.name)) throw new UsageError(`instance ${i.name} already exists`, `see it with: opsdeck instance show ${i.name}`);
    this.requireHost(i.host);
    this.requireEnv(i.env);
    const clash = this.sql('SELECT name FROM instances WHERE host = ? AND path = ?').get(i.host, i.path) as NameRow | undefined;
    if (clash) throw new UsageError(`instance ${clash.name} already lives at ${i.host}:${i.path}`, 'one directory holds one instance');
    this.refuseNested(i.name, i.host, i.path);
    const sealed = i.dbPassword ? this.seal(i.env, i.name, i.dbPassword) : null;
    this.sql('INSERT INTO instances (name, host, path, env, url, db_url, db_secret, branch, created_at, hooks, health, local_paths, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      i.name,
      i.host,
      i.path,
      i.env,
      i.url,
      i.dbUrl,
      sealed,
      i.branch,
      now(),
      JSON.stringify(i.hooks ?? {}),
      i.health ? JSON.stringify(i.health) : null,
      JSON.stringify(i.localPaths ?? []),
      i.revision ?? null,
    );
    return this.getInstance(i.name)!;
  }
  /**
   * The instance, on the same machine (the same host, or another host entry with its address, port and
   * jump), whose tree holds `path` or lies inside it: restoring the outer one would swap the inner
   * one's files away with its own.
   */
  nestedWith(host: string, path: string, except?: string): { name: string; host: string; path: string; inside: boolean } | undefined {
    const h = this.getHost(host);
    // One query, not a scan of every instance in JS (an add into thousands was quadratic): the trees
    // holding `path` are its prefixes ending before a '/', exact matches on the (host, path) index;
    // the trees inside it start with `path/`. Lengths in code points, as substr counts them.
    const outer = [...path].flatMap((c, i, cs) => (c === '/' ? [cs.slice(0, i).join('')] : []));
    const below = path + '/';
    const rows = this.sql(
      `SELECT name, host, path FROM instances
       WHERE name <> ? AND (host = ? OR host IN (SELECT name FROM hosts WHERE address = ? AND port = ? AND COALESCE(jump, '') = ?))
         AND (path IN (${['?', ...outer.map(() => '?')].join(', ')}) OR substr(path, 1, ?) = ?)`,
    ).all(except ?? '', host, h?.address ?? null, h?.port ?? null, h?.jump ?? '', path, ...outer, [...below].length, below) as { name: string; host: string; path: string }[];
    const r = rows[0];
    return r && { ...r, inside: path.startsWith(r.path + '/') };
  }
  /** Refuses (exit 2) a tree inside another instance's, or one that holds another instance. */
  refuseNested(name: string, host: string, path: string): void {
    const n = this.nestedWith(host, path, name);
    if (!n) return;
    throw new UsageError(
      n.inside
        ? `${host}:${path} is inside the tree of instance ${n.name} (${n.host}:${n.path}): restoring ${n.name} would swap ${name}'s files away`
        : n.path === path
          ? `instance ${n.name} already lives at ${n.host}:${n.path}, the same directory on the same machine`
          : `${host}:${path} holds the tree of instance ${n.name} (${n.host}:${n.path}): restoring ${name} would swap ${n.name}'s files away`,
      `give ${name} a directory of its own, neither inside another instance's tree nor holding one (see them with: opsdeck instance list)`,
    );
  }
  getInstance(name: string): Instance | undefined {
    const r = this.sql('SELECT * FROM instances WHERE name = ?').get(name) as InstanceRow | undefined;
    return r && rowToInstance(r);
  }
  requireInstance(name: string): Instance {
    const i = this.getInstance(name);
    if (!i) throw new UsageError(`no instance named ${name}`, 'list instances with: opsdeck instance list');
    return i;
  }
  listInstances(): Instance[] {
    return (this.sql(LIST_SQL.instances).all() as InstanceRow[]).map(rowToInstance);
  }
  /** The plain database password of an instance, for the one process that needs it. */
  dbPassword(name: string): string | undefined {
    const r = this.sql('SELECT db_secret, env FROM instances WHERE name = ?').get(name) as Pick<InstanceRow, 'db_secret' | 'env'> | undefined;
    if (!r?.db_secret) return undefined;
    return r.db_secret.startsWith('e1:') ? this.rights.open(r.env, name, r.db_secret) : this.secrets.open(r.db_secret);
  }
  /** Changes an instance's settings in one transaction; only the fields given change. */
  updateInstance(
    name: string,
    patch: Partial<Pick<Instance, 'url' | 'branch' | 'hooks' | 'health' | 'localPaths' | 'revision' | 'maintenanceSince' | 'watchExcludes' | 'metrics' | 'releases' | 'sharedPaths'>>,
  ): Instance {
    this.requireInstance(name);
    const cols: Record<string, string> = {
      url: 'url',
      branch: 'branch',
      hooks: 'hooks',
      health: 'health',
      localPaths: 'local_paths',
      revision: 'revision',
      maintenanceSince: 'maintenance_since',
      watchExcludes: 'watch_excludes',
      metrics: 'metrics',
      releases: 'releases',
      sharedPaths: 'shared_paths',
    };
    const json = new Set(['hooks', 'health', 'localPaths', 'watchExcludes', 'metrics', 'sharedPaths']);
    this.transaction(() => {
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined || !cols[k]) continue;
        const value = json.has(k) && v !== null ? JSON.stringify(v) : v;
        this.sql(`UPDATE instances SET ${cols[k]} = ? WHERE name = ?`).run(value as string | number | null, name);
      }
    });
    return this.requireInstance(name);
  }
  removeInstance(name: string): void {
    this.requireInstance(name);
    this.sql('DELETE FROM instances WHERE name = ?').run(name);
  }

  // ---- backups
  addBackup(b: Backup): void {
    this.sql('INSERT INTO backups (id, instance, kind, created_at, manifest, verified_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      b.id,
      b.instance,
      b.kind,
      b.createdAt,
      JSON.stringify(b.manifest),
      b.verifiedAt,
      b.runId,
    );
  }
  getBackup(id: string): Backup | undefined {
    const r = this.sql('SELECT * FROM backups WHERE id = ?').get(id) as BackupRow | undefined;
    return r && rowToBackup(r);
  }
  requireBackup(id: string): Backup {
    const b = this.getBackup(id);
    if (!b) throw new UsageError(`no backup with id ${id}`, 'list backups with: opsdeck backups');
    return b;
  }
  listBackups(instance?: string): Backup[] {
    const rows = instance
      ? this.sql('SELECT * FROM backups WHERE instance = ? ORDER BY created_at DESC, id DESC').all(instance)
      : this.sql('SELECT * FROM backups ORDER BY created_at DESC, id DESC').all();
    return (rows as BackupRow[]).map(rowToBackup);
  }
  /** The newest backup of these kinds, leaving out those whose last verification failed. */
  latestBackup(instance: string, kinds: Backup['kind'][] = ['manual'], opts: { includeFailed?: boolean } = {}): Backup | undefined {
    return this.listBackups(instance).find((b) => kinds.includes(b.kind) && (opts.includeFailed || !b.verifyFailed));
  }
  /** Newest manual backup time of every instance, in one query (the lists show thousands). */
  latestBackupTimes(): Map<string, string> {
    const rows = this.sql(LIST_SQL.newestBackups).all() as { instance: string; t: string }[];
    return new Map(rows.map((r) => [r.instance, r.t]));
  }
  /** The newest backup of `instance` whose code snapshot holds the tree with this stat fingerprint (in the store: not one only the copies hold). */
  backupForTree(instance: string, key: string): Backup | undefined {
    const alias = this.sql('SELECT backup_id FROM tree_keys WHERE key = ? AND instance = ?').get(key, instance) as { backup_id: string } | undefined;
    const viaAlias = alias && this.getBackup(alias.backup_id);
    if (viaAlias?.manifest.code && !viaAlias.copiesOnlySince) return viaAlias;
    return this.listBackups(instance).find((b) => b.manifest.code?.treeKey === key && !b.copiesOnlySince);
  }
  rememberTree(instance: string, key: string, backupId: string): void {
    this.sql(
      `INSERT INTO tree_keys (key, instance, backup_id, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET instance = excluded.instance, backup_id = excluded.backup_id, created_at = excluded.created_at`,
    ).run(key, instance, backupId, now());
  }
  markVerified(id: string, ok: boolean): void {
    this.sql('UPDATE backups SET verified_at = ?, verify_failed = ? WHERE id = ?').run(ok ? now() : null, ok ? 0 : 1, id);
  }
  removeBackup(id: string): void {
    this.sql('DELETE FROM backups WHERE id = ?').run(id);
  }
  /** The store dropped this backup; a copy store still keeps it (backups prune). */
  markCopiesOnly(id: string): void {
    this.sql('UPDATE backups SET copies_only_since = ? WHERE id = ? AND copies_only_since IS NULL').run(now(), id);
  }

  // ---- watch baselines
  /** `data` as watch encodes it (src/actions/watch.ts); taken now unless `takenAt` says when. */
  setWatchBaseline(instance: string, data: Buffer, takenAt = now()): void {
    const at = now();
    this.sql(
      `INSERT INTO watch_baselines (instance, taken_at, data, checked_at, changes) VALUES (?, ?, ?, ?, 0)
       ON CONFLICT (instance) DO UPDATE SET taken_at = excluded.taken_at, data = excluded.data, checked_at = excluded.checked_at, changes = 0`,
    ).run(instance, takenAt, data, at);
  }
  /** Whether the instance is watched, without reading its baseline. */
  hasWatchBaseline(instance: string): boolean {
    return this.watchState(instance) !== undefined;
  }
  /** The last watch check's outcome, without reading the baseline. */
  watchState(instance: string): { baselineAt: string; checkedAt: string | null; changes: number } | undefined {
    const r = this.sql('SELECT taken_at, checked_at, changes FROM watch_baselines WHERE instance = ?').get(instance) as { taken_at: string; checked_at: string | null; changes: number } | undefined;
    return r && { baselineAt: r.taken_at, checkedAt: r.checked_at, changes: r.changes };
  }
  /** watchState of every watched instance, in one query (the sampler's tick asks for many at once). */
  watchStates(): Map<string, { baselineAt: string; checkedAt: string | null; changes: number }> {
    const rows = this.sql('SELECT instance, taken_at, checked_at, changes FROM watch_baselines').all() as { instance: string; taken_at: string; checked_at: string | null; changes: number }[];
    return new Map(rows.map((r) => [r.instance, { baselineAt: r.taken_at, checkedAt: r.checked_at, changes: r.changes }]));
  }
  recordWatchCheck(instance: string, changes: number): void {
    this.sql('UPDATE watch_baselines SET checked_at = ?, changes = ? WHERE instance = ?').run(now(), changes, instance);
  }
  /** The baseline as watch wrote it (its bytes are watch's to decode). */
  getWatchBaseline(instance: string): { takenAt: string; data: Buffer } | undefined {
    const r = this.sql('SELECT taken_at, data FROM watch_baselines WHERE instance = ?').get(instance) as { taken_at: string; data: Buffer } | undefined;
    return r && { takenAt: r.taken_at, data: r.data };
  }

  // ---- restore drills
  addDrill(r: { id: string; source: string; target: string; backup: string; ok: boolean }): void {
    this.sql('INSERT INTO drills (id, source, target, backup_id, created_at, ok, report) VALUES (?, ?, ?, ?, ?, ?, ?)').run(r.id, r.source, r.target, r.backup, now(), r.ok ? 1 : 0, JSON.stringify(r));
  }
  listDrills(source?: string): DrillReport[] {
    const rows = source ? this.sql('SELECT report FROM drills WHERE source = ? ORDER BY created_at DESC').all(source) : this.sql('SELECT report FROM drills ORDER BY created_at DESC').all();
    return (rows as { report: string }[]).map((r) => JSON.parse(r.report));
  }

  // ---- notification channels
  setNotify(kind: 'email' | 'webhook' | 'ping', config: Record<string, string>, secret: string | null): void {
    this.sql('INSERT INTO notify (kind, config, secret) VALUES (?, ?, ?) ON CONFLICT (kind) DO UPDATE SET config = excluded.config, secret = excluded.secret').run(
      kind,
      JSON.stringify(config),
      secret === null ? null : this.secrets.seal(secret),
    );
  }
  /** Channels with their secrets opened, for the notifier only. */
  notifyChannels(): { kind: 'email' | 'webhook' | 'ping'; config: Record<string, string>; secret: string | null }[] {
    return (this.sql('SELECT * FROM notify ORDER BY kind').all() as NotifyRow[]).map((r) => ({
      kind: r.kind as 'email' | 'webhook' | 'ping',
      config: JSON.parse(r.config),
      secret: r.secret ? this.secrets.open(r.secret) : null,
    }));
  }
  removeNotify(kind: string): boolean {
    return this.sql('DELETE FROM notify WHERE kind = ?').run(kind).changes > 0;
  }

  // ---- runs (append-only audit trail; runs.ts)
  startRun(command: string, params: Record<string, unknown>, instance: string | null, dryRun: boolean): number {
    return this.runs.start(command, params, instance, dryRun);
  }
  finishRun(id: number, status: RunRecord['status'], error: string | null, failedStep: string | null, durationMs: number): void {
    this.runs.finish(id, status, error, failedStep, durationMs);
  }
  /** A command a run ran, for its command log (opsdeck runs ID --commands). */
  addCommand(runId: number, seq: number | null, c: CommandLogRecord): void {
    this.runs.addCommand(runId, seq, c);
  }
  /** The commands a run ran, in the order they ended. */
  runCommands(runId: number): (CommandLogRecord & { seq: number | null })[] {
    return this.runs.commands(runId);
  }
  addStep(s: StepRecord): void {
    this.runs.addStep(s);
  }
  listRuns(limit = 20, instance?: string): RunRecord[] {
    return this.runs.list(limit, instance);
  }
  getRun(id: number): RunRecord | undefined {
    return this.runs.get(id);
  }
  /** A run's steps and undos in the order they happened (an undo after the failure that caused it). */
  runSteps(runId: number): StepRecord[] {
    return this.runs.steps(runId);
  }

  // ---- locks and half-restored records (locks.ts): one operation per instance at a time, across processes
  acquireLock(instance: string, command: string, runId: number | null): void {
    this.locks.acquire([{ instance, command }], runId);
  }
  /** Several locks at once, all or none; a lock whose process is gone is taken over. */
  acquireLocks(wanted: { instance: string; command: string }[], runId: number | null): void {
    this.locks.acquire(wanted, runId);
  }
  /** Ties the instance's lock to its run, so a run whose process died can be told from one still going. */
  attachRunToLock(instance: string, runId: number): void {
    this.locks.attachRun(instance, runId);
  }
  releaseLock(instance: string): void {
    this.locks.release(instance);
  }
  getLock(instance: string): LockRecord | undefined {
    return this.locks.get(instance);
  }
  /** Whether the lock's holder is gone (its process, or on PostgreSQL its session). */
  lockIsStale(l: LockRecord): boolean {
    return this.locks.isStale(l);
  }
  /** Removes exactly this lock (not one taken since by another run): for opsdeck unlock. */
  breakLock(l: LockRecord): boolean {
    return this.locks.break(l);
  }
  listLocks(): LockRecord[] {
    return this.locks.list();
  }
  /** Records (or moves on) the critical section of run `runId` on an instance. */
  setHalfRestored(r: Omit<HalfRestored, 'since' | 'dbKept'> & { dbKept?: string | null }): void {
    this.locks.setHalfRestored(r);
  }
  getHalfRestored(instance: string): HalfRestored | undefined {
    return this.locks.getHalfRestored(instance);
  }
  listHalfRestored(): HalfRestored[] {
    return this.locks.listHalfRestored();
  }
  /** Clears the record of this run only (a later run's record is not this one's to clear). */
  clearHalfRestored(instance: string, runId: number): void {
    this.locks.clearHalfRestored(instance, runId);
  }
}
