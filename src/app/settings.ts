import Conf from 'conf';
import { UsageError } from '../core/errors.js';

export interface Settings {
  /** Where backups go: a path or any restic backend URL (default: store/ in the home). */
  storeRepository: string;
  connectTimeoutMs: number;
  /** Health panel refresh interval. */
  refreshMs: number;
}

const defaults: Settings = { storeRepository: '', connectTimeoutMs: 15000, refreshMs: 3000 };

/** Settings that are not inventory live in a conf file (settings.json) in the opsdeck home. */
export function loadSettings(home: string): Settings {
  const conf = new Conf<Settings>({ cwd: home, configName: 'settings', defaults, projectName: 'opsdeck' });
  return { ...defaults, ...conf.store };
}

const LIMITS: Record<'refreshMs' | 'connectTimeoutMs', [number, number]> = { refreshMs: [500, 600_000], connectTimeoutMs: [1000, 120_000] };

/** Changes one setting after checking it; returns the settings as they now are. */
export function saveSetting(home: string, key: string, value: string, hasBackups: boolean): Settings {
  const conf = new Conf<Settings>({ cwd: home, configName: 'settings', defaults, projectName: 'opsdeck' });
  if (key === 'refreshMs' || key === 'connectTimeoutMs') {
    const [lo, hi] = LIMITS[key];
    const n = Number(value);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new UsageError(`invalid ${key} ${JSON.stringify(value)}`, `a whole number of milliseconds from ${lo} to ${hi}`);
    conf.set(key, n);
  } else if (key === 'storeRepository') {
    // The inventory points at snapshots in the current store: moving it would orphan them all.
    if (hasBackups) throw new UsageError('backups are recorded in the current store: changing storeRepository would lose track of them', 'set it before the first backup, or keep a second opsdeck home for the new store');
    conf.set(key, value);
  } else {
    throw new UsageError(`unknown setting ${JSON.stringify(key)}`, `the settings are: ${Object.keys(defaults).join(', ')}`);
  }
  return { ...defaults, ...conf.store };
}
