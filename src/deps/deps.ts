import type { Host, Instance, Inventory } from '../../inventory/index.js';
import { dbAt, type Db } from '../databases/index.js';
import type { SshPool } from '../remote/ssh.js';
import { BecomeShell, type Shell } from '../remote/shell.js';
import type { Store } from '../store/restic.js';

/** What actions need from the world; the CLI and the TUI build one and pass it in. */
export interface Deps {
  inv: Inventory;
  ssh: SshPool;
  store: Store;
  /** How long a site may take to answer healthy after a change (settings healthWait); 5 s when not given. */
  healthWaitMs?: number;
}

/**
 * Where commands on an instance's tree run: on its host as the host's become user (sudo -n -u USER)
 * when it has one, else as the login user. Every action that reads or writes a tree (tar, find, du,
 * the swap, git, hooks) gets its shell here, so none builds sudo argv itself.
 */
export function shellFor(deps: Deps, inst: Pick<Instance, 'host'>): Shell {
  return hostShell(deps, deps.inv.requireHost(inst.host), true);
}

/** The login user's shell on the instance's host: database commands (dump, load) need no become. */
export function loginShellFor(deps: Deps, inst: Instance): Shell {
  return deps.ssh.shell(inst.host);
}

/** A host's shell; with `become`, as its become user (the same shell when that is the login user). */
export function hostShell(deps: Pick<Deps, 'ssh'>, host: Host, become: boolean): Shell {
  const login = deps.ssh.shell(host);
  return become && host.become && host.become !== host.user ? new BecomeShell(login, host.become, { host: host.name, login: host.user }) : login;
}

/** The instance's database (its engine chosen by the URL's scheme) with its role's password; undefined when it has none. */
export function dbFor(deps: Deps, inst: Instance): Db | undefined {
  if (!inst.dbUrl) return undefined;
  return dbAt(inst.dbUrl, deps.inv.dbPassword(inst.name) ?? '');
}
