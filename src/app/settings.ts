import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpsError, UsageError } from '../core/errors.js';
import { parseInventoryUrl } from '../../inventory/pg-target.js';
import { checkPolicy, type Policy } from '../core/retention.js';
import { parseDuration } from '../actions/store.js';

export interface Settings {
  /** Where backups go: a path or any restic backend URL (default: store/ in the home). */
  storeRepository: string;
  connectTimeoutMs: number;
  /** Health panel refresh interval. */
  refreshMs: number;
  /** A team inventory, postgres://ROLE@HOST:PORT/DB; empty: the SQLite file in the home. */
  inventory: string;
  /** Second stores (restic repositories) every backup is copied into; restores read them when the first is lost. */
  storeCopies: string[];
  /** Code trees back up through a mirror per instance in the home: only changed files travel (issue 15). */
  treeMirrors: boolean;
  /** How long a run waits for another restic's lock on a store (unattended; at a terminal at most a minute). */
  storeLockWait: string;
  /** A copy store's own retention, by repository (the tiers given); a copy not named keeps what the store keeps. */
  storeCopyRetention: Record<string, Partial<Policy>>;
  /** How long update, upgrade, rollback and drill wait for the site to answer healthy (asked once a second). */
  healthWait: string;
}

const defaults: Settings = {
  storeRepository: '',
  connectTimeoutMs: 15000,
  refreshMs: 3000,
  inventory: '',
  storeCopies: [],
  treeMirrors: false,
  storeLockWait: '10m',
  storeCopyRetention: {},
  healthWait: '5s',
};

/**
 * Settings that are not inventory live in settings.json in the opsdeck home. Read and written here
 * rather than with the conf package: its atomically/when-exit dependency hooks SIGINT/SIGTERM/SIGHUP
 * on import and re-sends the signal to opsdeck, so one signal arrived twice ("ignored: already stopping").
 */
const settingsFile = (home: string) => join(home, 'settings.json');

function readStored(home: string): Partial<Settings> {
  let text: string;
  try {
    text = readFileSync(settingsFile(home), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    return JSON.parse(text) as Partial<Settings>;
  } catch (err) {
    throw new OpsError(`cannot read ${settingsFile(home)}: ${(err as Error).message}`, 1, 'fix the JSON in that file, or remove it to go back to the defaults');
  }
}

export function loadSettings(home: string): Settings {
  return { ...defaults, ...readStored(home) };
}

function store(home: string, settings: Settings): void {
  // Written beside it and renamed over it: a crash never leaves half a file.
  const tmp = `${settingsFile(home)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(settings, undefined, '\t'));
  renameSync(tmp, settingsFile(home));
}

const LIMITS: Record<'refreshMs' | 'connectTimeoutMs', [number, number]> = { refreshMs: [500, 600_000], connectTimeoutMs: [1000, 120_000] };

/** Changes one setting after checking it; returns the settings as they now are. */
export function saveSetting(home: string, key: string, value: string, hasBackups: boolean): Settings {
  const settings = loadSettings(home);
  if (key === 'refreshMs' || key === 'connectTimeoutMs') {
    const [lo, hi] = LIMITS[key];
    const n = Number(value);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new UsageError(`invalid ${key} ${JSON.stringify(value)}`, `a whole number of milliseconds from ${lo} to ${hi}`);
    settings[key] = n;
  } else if (key === 'storeRepository') {
    // The inventory points at snapshots in the current store: moving it would orphan them all.
    if (hasBackups)
      throw new UsageError(
        'backups are recorded in the current store: changing storeRepository would lose track of them',
        'set it before the first backup, or keep a second opsdeck home for the new store',
      );
    settings[key] = value;
  } else if (key === 'storeCopies') {
    // A JSON array or a comma-separated list; empty: no copies.
    const list = value.trim().startsWith('[') ? (JSON.parse(value) as unknown) : value.split(',').map((r) => r.trim());
    if (!Array.isArray(list) || list.some((r) => typeof r !== 'string' || /[\0\r\n]/.test(r)))
      throw new UsageError(`invalid storeCopies ${JSON.stringify(value)}`, 'restic repositories, comma-separated');
    settings[key] = (list as string[]).filter(Boolean);
  } else if (key === 'inventory') {
    // Checked here (no password, no parameters); whether it can be reached shows at the next command.
    if (value) parseInventoryUrl(value);
    settings[key] = value;
  } else if (key === 'treeMirrors') {
    if (!['on', 'off', 'true', 'false'].includes(value)) throw new UsageError(`invalid ${key} ${JSON.stringify(value)}`, 'on or off');
    settings[key] = value === 'on' || value === 'true';
  } else if (key === 'storeLockWait') {
    parseDuration(value);
    settings[key] = value.trim();
  } else if (key === 'healthWait') {
    // An app that takes minutes to warm up after an update is a real one; longer is a site that is down.
    if (parseDuration(value) > 3600_000) throw new UsageError(`invalid healthWait ${JSON.stringify(value)}`, 'at most 1h, e.g. 5s, 90s or 5m');
    settings[key] = value.trim();
  } else if (key === 'storeCopyRetention') {
    settings[key] = { ...settings[key], ...parseCopyRetention(value, settings.storeCopies) };
    for (const [repo, p] of Object.entries(settings[key])) if (!Object.keys(p).length) delete settings[key][repo];
  } else {
    throw new UsageError(`unknown setting ${JSON.stringify(key)}`, `the settings are: ${Object.keys(defaults).join(', ')}`);
  }
  store(home, settings);
  return settings;
}

/**
 * storeCopyRetention: "REPO daily=30,weekly=8,monthly=12,yearly=5" (the tiers given; the others as the
 * store keeps), "REPO default" (as the store keeps), or a JSON object of them by repository.
 */
function parseCopyRetention(value: string, copies: string[]): Record<string, Partial<Policy>> {
  const hint = 'REPO daily=30,weekly=8,monthly=12,yearly=5 (a copy store of storeCopies), or REPO default';
  let given: Record<string, unknown>;
  if (value.trim().startsWith('{')) {
    try {
      given = JSON.parse(value) as Record<string, unknown>;
    } catch {
      throw new UsageError(`invalid storeCopyRetention ${JSON.stringify(value)}`, hint);
    }
  } else {
    const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(value);
    if (!m) throw new UsageError(`invalid storeCopyRetention ${JSON.stringify(value)}`, hint);
    const tiers: Record<string, string> = {};
    if (m[2] !== 'default')
      for (const part of m[2].split(',')) {
        const [k, v] = part.split('=');
        if (!['daily', 'weekly', 'monthly', 'yearly'].includes(k) || v === undefined) throw new UsageError(`invalid storeCopyRetention tier ${JSON.stringify(part)}`, hint);
        tiers[k] = v;
      }
    given = { [m[1]]: tiers };
  }
  const out: Record<string, Partial<Policy>> = {};
  for (const [repo, tiers] of Object.entries(given)) {
    if (!copies.includes(repo)) throw new UsageError(`${repo} is not a copy store`, `the copy stores (settings storeCopies): ${copies.join(', ') || 'none yet'}`);
    if (typeof tiers !== 'object' || tiers === null) throw new UsageError(`invalid storeCopyRetention for ${repo}`, hint);
    const unknown = Object.keys(tiers).filter((k) => !['daily', 'weekly', 'monthly', 'yearly'].includes(k));
    if (unknown.length) throw new UsageError(`invalid storeCopyRetention tier ${JSON.stringify(unknown[0])}`, hint);
    const full = checkPolicy(tiers as Record<string, unknown>);
    out[repo] = Object.fromEntries(Object.keys(tiers).map((k) => [k, full[k as keyof Policy]]));
  }
  return out;
}
