/**
 * Where the inventory is and its password, before anything opens it: the URL goes where the inventory
 * looks (OPSDECK_INVENTORY), the password stays in memory; at a terminal, with neither
 * OPSDECK_INVENTORY_PASSWORD nor ~/.pgpass, it is asked for. Never from argv. The CLI's --inventory
 * and --inventory-password-file come here, and the console before its first frame.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../core/errors.js';
import { interactive, readSecret } from '../core/secret-prompt.js';
import { inventoryUrlOf, setInventoryPassword } from '../../inventory/connect.js';
import { resolveHome } from '../../inventory/home.js';
import { parseInventoryUrl } from '../../inventory/pg-target.js';

export async function inventoryLogin(home: string | undefined, o: { url?: string; passwordFile?: string } = {}): Promise<void> {
  if (o.url !== undefined) {
    parseInventoryUrl(o.url);
    process.env.OPSDECK_INVENTORY = o.url;
  }
  const url = inventoryUrlOf(resolveHome(home));
  if (o.passwordFile) {
    const file = o.passwordFile;
    if (!existsSync(file)) throw new UsageError(`no password file ${file}`);
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) throw new UsageError(`the password file ${file} is readable by others (mode ${mode.toString(8)})`, `run: chmod 600 ${file}`);
    setInventoryPassword(await readSecret('inventory password', { file, envVar: 'OPSDECK_INVENTORY_PASSWORD' }));
    return;
  }
  if (!url || process.env.OPSDECK_INVENTORY_PASSWORD !== undefined || !interactive()) return;
  if (existsSync(process.env.PGPASSFILE ?? join(homedir(), '.pgpass'))) return;
  setInventoryPassword(await readSecret(`password of inventory role ${parseInventoryUrl(url).user}`, { envVar: 'OPSDECK_INVENTORY_PASSWORD' }));
}
