/**
 * The rows SQLite and PostgreSQL hand back (the same columns: pg-migrations.ts), column by column as the migrations make them. The inventory maps
 * them to its records (Host, Instance, ...) in one place each; nothing else reads rows.
 */
import type { Backup, HalfRestored, Host, Instance, LockRecord, RunRecord, StepRecord } from './types.js';

type Text = string;
type Maybe<T> = T | null;

export interface EnvRow {
  name: Text;
  protected: number;
  created_at: Text;
  retention: Maybe<Text>;
  max_backup_age: Maybe<Text>;
}

export interface HostRow {
  name: Text;
  address: Text;
  port: number;
  user: Text;
  key_file: Maybe<Text>;
  jump: Maybe<Text>;
  host_key: Maybe<Text>;
  become: Maybe<Text>;
  created_at: Text;
}

export interface InstanceRow {
  name: Text;
  host: Text;
  path: Text;
  env: Text;
  url: Maybe<Text>;
  db_url: Maybe<Text>;
  db_secret: Maybe<Text>;
  branch: Maybe<Text>;
  created_at: Text;
  hooks: Text;
  health: Maybe<Text>;
  local_paths: Text;
  revision: Maybe<Text>;
  maintenance_since: Maybe<Text>;
  watch_excludes: Maybe<Text>;
  metrics: Maybe<Text>;
  releases: Maybe<number>;
  shared_paths: Maybe<Text>;
}

export interface BackupRow {
  id: Text;
  instance: Text;
  kind: Backup['kind'];
  created_at: Text;
  manifest: Text;
  verified_at: Maybe<Text>;
  verify_failed: number;
  run_id: Maybe<number>;
  copies_only_since?: Maybe<Text>;
}

export interface RunRow {
  id: number;
  started_at: Text;
  finished_at: Maybe<Text>;
  os_user: Text;
  origin: Text;
  host: Maybe<Text>;
  db_role: Maybe<Text>;
  command: Text;
  params: Text;
  instance: Maybe<Text>;
  status: RunRecord['status'];
  error: Maybe<Text>;
  failed_step: Maybe<Text>;
  duration_ms: Maybe<number>;
}

export interface StepRow {
  run_id: number;
  seq: number;
  name: Text;
  title: Text;
  status: StepRecord['status'];
  started_at: Text;
  finished_at: Maybe<Text>;
  error: Maybe<Text>;
}

export interface LockRow {
  instance: Text;
  run_id: Maybe<number>;
  pid: number;
  host: Text;
  user: Text;
  command: Text;
  started_at: Text;
  proc_start: Maybe<Text>;
}

export interface HalfRestoredRow {
  instance: Text;
  run_id: number;
  command: Text;
  phase: HalfRestored['phase'];
  safety_backup: Maybe<Text>;
  staging: Text;
  old: Text;
  db_touched: number;
  db_kept: Maybe<Text>;
  since: Text;
}

export interface NotifyRow {
  kind: Text;
  config: Text;
  secret: Maybe<Text>;
}

export type NameRow = { name: Text };

export interface CommandRow {
  run_id: number;
  seq: number | null;
  at: string;
  place: string;
  line: string;
  code: number | null;
  signal: string | null;
  ms: number;
  bytes_in: number;
  bytes_out: number;
}

export function rowToHalf(r: HalfRestoredRow): HalfRestored {
  return {
    instance: r.instance,
    runId: r.run_id,
    command: r.command,
    phase: r.phase,
    safetyBackup: r.safety_backup,
    staging: r.staging,
    old: r.old,
    dbTouched: !!r.db_touched,
    dbKept: r.db_kept ?? null,
    since: r.since,
  };
}

export function rowToLock(r: LockRow): LockRecord {
  return { instance: r.instance, runId: r.run_id, pid: r.pid, host: r.host, user: r.user, command: r.command, startedAt: r.started_at, procStart: r.proc_start ?? null };
}

export function rowToHost(r: HostRow): Host {
  return { name: r.name, address: r.address, port: r.port, user: r.user, keyFile: r.key_file, jump: r.jump, hostKey: r.host_key, become: r.become ?? null, createdAt: r.created_at };
}
/** A JSON column, skipping the parse for the empty values most rows hold (10,000 rows load in one go). */
export function json<T extends object>(v: string | null, empty: T): T {
  return v === null || v === '{}' || v === '[]' ? (Array.isArray(empty) ? ([] as unknown as T) : ({} as T)) : JSON.parse(v);
}

export function rowToInstance(r: InstanceRow): Instance {
  return {
    name: r.name,
    host: r.host,
    path: r.path,
    env: r.env,
    url: r.url,
    dbUrl: r.db_url,
    hasDbPassword: !!r.db_secret,
    branch: r.branch,
    createdAt: r.created_at,
    hooks: json(r.hooks, {}),
    health: r.health ? JSON.parse(r.health) : null,
    localPaths: json(r.local_paths, []),
    revision: r.revision ?? null,
    maintenanceSince: r.maintenance_since ?? null,
    watchExcludes: r.watch_excludes ? JSON.parse(r.watch_excludes) : null,
    metrics: json(r.metrics, []),
    releases: r.releases ?? 0,
    sharedPaths: json(r.shared_paths, []),
  };
}
export function rowToBackup(r: BackupRow): Backup {
  return {
    id: r.id,
    instance: r.instance,
    kind: r.kind,
    createdAt: r.created_at,
    manifest: JSON.parse(r.manifest),
    verifiedAt: r.verified_at,
    verifyFailed: !!r.verify_failed,
    runId: r.run_id,
    ...(r.copies_only_since && { copiesOnlySince: r.copies_only_since }),
  };
}
export function rowToRun(r: RunRow): RunRecord {
  return {
    id: r.id,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    osUser: r.os_user,
    origin: r.origin,
    host: r.host ?? null,
    dbRole: r.db_role ?? null,
    command: r.command,
    params: JSON.parse(r.params),
    instance: r.instance,
    status: r.status,
    error: r.error,
    failedStep: r.failed_step,
    durationMs: r.duration_ms,
  };
}
