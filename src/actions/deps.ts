import type { Instance, Inventory } from '../../inventory/index.js';
import { parsePgUrl, type PgTarget } from '../databases/postgres.js';
import type { SshPool } from '../remote/ssh.js';
import type { Shell } from '../remote/shell.js';
import type { Store } from '../store/restic.js';

/** What actions need from the world; the CLI and the TUI build one and pass it in. */
export interface Deps {
  inv: Inventory;
  ssh: SshPool;
  store: Store;
}

export function shellFor(deps: Deps, inst: Instance): Shell {
  return deps.ssh.shell(inst.host);
}

export function dbFor(deps: Deps, inst: Instance): { target: PgTarget; password: string } | undefined {
  if (!inst.dbUrl) return undefined;
  return { target: parsePgUrl(inst.dbUrl), password: deps.inv.dbPassword(inst.name) ?? '' };
}
