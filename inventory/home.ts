import { mkdirSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The opsdeck home: --home, else OPSDECK_HOME, else the per-user data directory (XDG). */
export function resolveHome(flag?: string): string {
  if (flag) return resolve(flag);
  if (process.env.OPSDECK_HOME) return resolve(process.env.OPSDECK_HOME);
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'opsdeck');
}

export function ensureHome(home: string): string {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  // The home holds the key file and the store password: nobody else reads it.
  chmodSync(home, 0o700);
  return home;
}
