import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpsError } from '../src/core/errors.js';

/**
 * Where the inventory is: a PostgreSQL URL from OPSDECK_INVENTORY (which --inventory sets), else the
 * setting `inventory` in the home's settings.json; undefined: the SQLite file in the home.
 */
export function inventoryUrlOf(home: string): string | undefined {
  if (process.env.OPSDECK_INVENTORY) return process.env.OPSDECK_INVENTORY;
  let text: string;
  try {
    text = readFileSync(join(home, 'settings.json'), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = (JSON.parse(text) as { inventory?: unknown }).inventory;
    return typeof v === 'string' && v ? v : undefined;
  } catch (err) {
    throw new OpsError(`cannot read ${join(home, 'settings.json')}: ${(err as Error).message}`, 1, 'fix the JSON in that file, or remove it to go back to the defaults');
  }
}

// The password the command line read (a file or the prompt), kept in memory only: never in argv,
// and not in the environment, where every child process (ssh, restic) would inherit it.
let given: string | undefined;
export function setInventoryPassword(password: string | undefined): void {
  given = password;
}
/** The inventory role's password: what the command line read, else OPSDECK_INVENTORY_PASSWORD; undefined: ~/.pgpass or none. */
export function inventoryPassword(): string | undefined {
  return given ?? process.env.OPSDECK_INVENTORY_PASSWORD;
}
