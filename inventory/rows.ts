/**
 * The rows SQLite and PostgreSQL hand back (the same columns: pg-migrations.ts), column by column as the migrations make them. The inventory maps
 * them to its records (Host, Instance, ...) in one place each; nothing else reads rows.
 */
import type { Backup, HalfRestored, RunRecord, StepRecord } from './index.js';

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
