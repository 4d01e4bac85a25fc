import type { Backup, Instance, Inventory } from '../../inventory/index.js';
import { age, formatBytes, parseAge } from '../core/format.js';

/** Whether an instance's newest good backup (null: none) is older than its environment's limit. */
export function backupTooOld(newestAt: string | null, limit: string, now = Date.now()): boolean {
  return newestAt === null || now - Date.parse(newestAt) > parseAge(limit);
}

export interface BackupCheckRow {
  instance: string;
  env: string;
  newestBackup: string | null;
  /** The environment's limit (its --max-backup-age, else the default). */
  limit: string;
  ok: boolean;
}

/** backups check: each instance's newest good backup against its environment's limit. */
export function backupCheckRows(inv: Inventory, instances: Instance[], now = Date.now()): BackupCheckRow[] {
  const newest = inv.latestBackupTimes();
  return instances.map((i) => {
    const limit = inv.backupAgeLimit(i.env);
    const at = newest.get(i.name) ?? null;
    return { instance: i.name, env: i.env, newestBackup: at, limit, ok: !backupTooOld(at, limit, now) };
  });
}

export const BACKUP_CHECK_HEADERS = ['INSTANCE', 'ENV', 'NEWEST BACKUP', 'LIMIT', ''];

export function backupCheckCells(r: BackupCheckRow, now = Date.now()): string[] {
  return [r.instance, r.env, age(r.newestBackup, now), r.limit, r.ok ? 'ok' : 'TOO OLD'];
}

/** One line of an alert about an instance without a recent backup. */
export function lateBackupWords(r: BackupCheckRow, now = Date.now()): string {
  return `${r.instance} (${r.env}): newest good backup ${r.newestBackup ? `${age(r.newestBackup, now)}, at ${r.newestBackup}` : 'never'}; the limit is ${r.limit}`;
}

/** A backup as the list shows it (and --json prints it). */
export interface BackupRow {
  id: string;
  instance: string;
  kind: Backup['kind'];
  createdAt: string;
  verified: boolean;
  verifiedAt: string | null;
  verifyFailed: boolean;
  files: number | null;
  codeBytes: number | null;
  dbBytes: number | null;
  /** Only the copy stores hold it (the store's retention dropped it, a copy's keeps it): restores read it from there. */
  copiesOnly: boolean;
  /** Since when, or null. */
  copiesOnlySince: string | null;
}

export function backupRow(b: Backup): BackupRow {
  return {
    id: b.id,
    instance: b.instance,
    kind: b.kind,
    createdAt: b.createdAt,
    verified: !!b.verifiedAt,
    verifiedAt: b.verifiedAt,
    verifyFailed: !!b.verifyFailed,
    files: b.manifest.code?.files ?? null,
    codeBytes: b.manifest.code?.bytes ?? null,
    dbBytes: b.manifest.db?.bytes ?? null,
    copiesOnly: !!b.copiesOnlySince,
    copiesOnlySince: b.copiesOnlySince ?? null,
  };
}

export const BACKUP_HEADERS = ['ID', 'INSTANCE', 'KIND', 'TAKEN', 'FILES', 'SIZE', 'HELD BY', 'VERIFIED'];

export function backupCells(b: BackupRow, now = Date.now()): string[] {
  return [b.id, b.instance, b.kind, age(b.createdAt, now), b.files === null ? '-' : String(b.files), formatBytes((b.codeBytes ?? 0) + (b.dbBytes ?? 0)), backupHeldWord(b), backupVerifiedWord(b)];
}

/** Where a backup is read from: the store, or only its copies (the store's retention dropped it). */
export function backupHeldWord(b: { copiesOnly: boolean }): string {
  return b.copiesOnly ? 'copies only' : 'store';
}

/** FAILED, verified, or nothing (never verified). */
export function backupVerifiedWord(b: { verifyFailed: boolean; verified: boolean }): string {
  return b.verifyFailed ? 'FAILED' : b.verified ? 'verified' : '';
}

/** What a backup holds, in one line. */
export function describeBackup(b: Backup): string {
  const m = b.manifest;
  return `backup ${b.id} of ${b.instance}: ${m.code ? `${m.code.files} files, ${formatBytes(m.code.bytes)}` : 'no code'}${m.db ? `; database ${formatBytes(m.db.bytes)}, ${Object.keys(m.db.tables).length} tables` : ''}`;
}

/** Instances with the time of their newest good backup (null: none), as the lists show them. */
export function instancesWithLastBackup(inv: Inventory, env?: string): (Instance & { lastBackup: string | null })[] {
  const newest = inv.latestBackupTimes();
  return inv
    .listInstances()
    .filter((i) => !env || i.env === env)
    .map((i) => ({ ...i, lastBackup: newest.get(i.name) ?? null }));
}
