import type { Host } from '../../inventory/index.js';
import { UsageError } from '../core/errors.js';
import { hostShell, type Deps } from '../deps/deps.js';
import { checkDbLogin } from './dbcheck.js';
import { gitState } from './app.js';

export interface TakeOverCheck {
  /** What is deployed there, as git sees it (undefined: not a git checkout). */
  git?: { revision: string; branch: string | null; describe: string | null };
}

/**
 * Before `instance add` registers an existing instance: its tree is there, its database login works
 * the way backups will use it (unless `dbCheck` is false, while the database is down), and what git
 * says is deployed. Reads only; changes nothing on the host.
 */
export async function checkTakeOver(deps: Deps, host: Host, o: { name: string; path: string; dbUrl: string | null; dbPassword?: string; dbCheck: boolean }): Promise<TakeOverCheck> {
  // As the host's become user: the login user may not even see into the web user's directory.
  const there = await hostShell(deps, host, true).exec(['test', '-d', o.path]);
  if (there.code !== 0) throw new UsageError(`${o.path} is not a directory on host ${host.name}`, 'check the path, or make a new instance with: opsdeck instance make');
  // As host add tries the key: the password is tried now, the way backups will use it.
  if (o.dbUrl && o.dbCheck) await checkDbLogin(deps, host, o.name, o.dbUrl, o.dbPassword);
  return { git: await gitState(deps, { host: host.name, path: o.path }) };
}
