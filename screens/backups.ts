import type { Backup } from '../inventory/index.js';
import { age, formatBytes } from '../src/core/format.js';
import { backupHeldWord, backupRow, backupVerifiedWord } from '../src/present/index.js';
import type { Column } from './components.js';
import type { UiModel } from './model.js';

/** The backups r restores and the drill wizard picks from: the manual ones, newest first. */
export const manualBackups = (model: UiModel, instance: string): Backup[] => model.backups(instance).filter((b) => b.kind === 'manual');

/** Backups as rows: the instance screen lists them to restore one, the drill wizard to pick one. */
export const BACKUP_COLUMNS: Column[] = [
  { title: 'BACKUP', width: 22 },
  { title: 'TAKEN', width: 10 },
  { title: 'FILES', width: 8 },
  { title: 'SIZE', width: 10 },
  { title: 'VERIFIED', width: 9 },
  // Where a restore reads it from: `copies only` once the store's retention dropped it (a narrow terminal drops this first).
  { title: 'HELD BY', width: 11, drop: 1 },
];

export const backupCells =
  (now: number) =>
  (b: Backup): string[] => [
    b.id,
    age(b.createdAt, now),
    String(b.manifest.code?.files ?? '-'),
    formatBytes((b.manifest.code?.bytes ?? 0) + (b.manifest.db?.bytes ?? 0)),
    backupVerifiedWord(backupRow(b)),
    backupHeldWord(backupRow(b)),
  ];
