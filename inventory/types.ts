/** The records the inventory holds, as the rest of opsdeck sees them (rows.ts maps the stored rows to these). */

export interface Env {
  name: string;
  protected: boolean;
  createdAt: string;
}

export interface Host {
  name: string;
  address: string;
  port: number;
  user: string;
  keyFile: string | null;
  jump: string | null;
  /** Pinned host key, as OpenSSH prints it: SHA256:base64 */
  hostKey: string | null;
  /** The user commands on instance trees run as (sudo -n -u USER --); null: the login user. */
  become?: string | null;
  createdAt: string;
}

export const HOOK_KINDS = ['install', 'migrate', 'maintenance-on', 'maintenance-off', 'reload', 'promote'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];
/** App hooks: argv arrays run in the instance's directory on its host. */
export type Hooks = Partial<Record<HookKind, string[]>>;

export interface HealthCheck {
  url: string;
  /** Expected HTTP status (default 200). */
  status: number;
  /** Text the page must contain. */
  text?: string;
}

export interface Instance {
  name: string;
  host: string;
  path: string;
  env: string;
  url: string | null;
  /** postgres://user@host:port/db, never with a password: that is sealed in dbSecret. */
  dbUrl: string | null;
  hasDbPassword: boolean;
  branch: string | null;
  createdAt: string;
  hooks: Hooks;
  health: HealthCheck | null;
  /** Paths (relative to the instance) that belong to it alone: clone and restore from another instance keep them. */
  localPaths: string[];
  /** The deployed git revision, as last seen by opsdeck. */
  revision: string | null;
  maintenanceSince: string | null;
  /** Patterns watch leaves out (a name anywhere, or a path with a slash); null: the defaults. */
  watchExcludes: string[] | null;
  /** Named numbers the app's owners watch: a read-only SQL query or a command on the host. */
  metrics: AppMetric[];
  /**
   * Release mode: how many releases to keep (the path is a link to PATH.releases/<timestamp>-<rev>);
   * 0 or absent: updated in place.
   */
  releases?: number;
  /** Release mode: directories (relative) that live across releases in PATH.shared/, besides localPaths. */
  sharedPaths?: string[];
}

export interface AppMetric {
  name: string;
  kind: 'sql' | 'cmd';
  source: string;
}

export interface StreamManifest {
  snapshot: string;
  /** The file's name inside the snapshot (a reused snapshot may be another instance's). */
  file?: string;
  bytes: number;
  sha256: string;
}
export interface Manifest {
  /** treeKey: sha256 of every entry's stat data (inode, ctime, mtime, size, mode, type, path) at backup time. */
  /** owners: every "uid:gid" that owns entries of the tree, most entries first (a restore checks it can give them back). */
  code?: StreamManifest & { files: number; dirs: number; symlinks: number; treeKey?: string; owners?: string[]; sharedDir?: boolean };
  /** role: the one the dump was taken as (the owner of what it holds), mapped to the target's role on a load. */
  db?: StreamManifest & { kind: 'postgres' | 'mysql'; tables: Record<string, number>; role?: string };
}

export interface Backup {
  id: string;
  instance: string;
  kind: 'manual' | 'safety';
  createdAt: string;
  manifest: Manifest;
  verifiedAt: string | null;
  /** Its last `backups verify` found it does not match its manifest (or could not read it back). */
  verifyFailed?: boolean;
  /** The run that took it, for the audit trail. */
  runId: number | null;
  /** Since when only the copy stores hold it (the store's retention dropped it, a copy's keeps it); absent: in the store. */
  copiesOnlySince?: string | null;
}

/** What a restore drill proved, as stored and shown (drills, the console, the report file). */
export interface DrillReport {
  id: string;
  source: string;
  target: string;
  backup: string;
  backupTakenAt: string;
  /** Recovery point: how old the data restored was. */
  rpoSeconds: number;
  /** Recovery time: from the start of the restore to a verified, answering target. */
  rtoSeconds: number;
  steps: { title: string; ms: number; ok: boolean }[];
  file: string;
  ok: boolean;
  /** What failed, when the drill did not pass. */
  error?: string;
}

export interface RunRecord {
  id: number;
  startedAt: string;
  finishedAt: string | null;
  osUser: string;
  origin: string;
  /** The machine (jump box) it ran on; null in runs recorded before this was kept. */
  host: string | null;
  /** The PostgreSQL role logged in, written by the server (team inventory); null on SQLite. */
  dbRole: string | null;
  command: string;
  params: Record<string, unknown>;
  instance: string | null;
  /** undo-failed: a step failed and putting things back failed too; the instance is left half-changed. */
  status: 'running' | 'ok' | 'failed' | 'rolled-back' | 'undo-failed' | 'dry-run' | 'interrupted';
  error: string | null;
  failedStep: string | null;
  durationMs: number | null;
}

/** A command of a run's command log (src/remote/command-log.ts records them; the inventory keeps them). */
export interface CommandLogRecord {
  where: string;
  line: string;
  code: number | null;
  signal: string | null;
  ms: number;
  bytesIn: number;
  bytesOut: number;
  at: number;
}

export interface StepRecord {
  runId: number;
  seq: number;
  name: string;
  title: string;
  /** warning: a final step (a delete after success) that did not complete; the run did. */
  status: 'done' | 'failed' | 'undone' | 'undo-failed' | 'warning';
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

export interface LockRecord {
  instance: string;
  runId: number | null;
  pid: number;
  host: string;
  user: string;
  command: string;
  startedAt: string;
  /** The holder's boot id and process start time: tells a reused pid from the holder. */
  procStart?: string | null;
}

/** The backup-age limit of an environment that sets none: a nightly backup plus two hours of slack. */
export const DEFAULT_MAX_BACKUP_AGE = '26h';

/**
 * Where a restore stood when its process last said so. Phases: db-committing (the COMMIT is on its
 * way: the database may be the new one), db-committed, swapping (the renames of the code tree), swapped.
 */
export interface HalfRestored {
  instance: string;
  runId: number;
  command: string;
  phase: 'db-committing' | 'db-committed' | 'swapping' | 'swapped';
  safetyBackup: string | null;
  staging: string;
  old: string;
  /** The database may hold the new data (a COMMIT was sent). */
  dbTouched: boolean;
  /** What the database load kept aside for an undo, as its engine says (DbLoader.kept); null: nothing. */
  dbKept: string | null;
  since: string;
}
