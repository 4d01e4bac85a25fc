import type { Host } from '../../inventory/index.js';
import { dbAt } from '../databases/index.js';
import { UsageError } from '../core/errors.js';
import type { Deps } from '../deps/deps.js';

/**
 * Logs in to an instance's database as every later action will (its engine's client on its host,
 * over the host's SSH connection, the password on stdin) and checks what they need: a wrong
 * password, role or database name is refused when the instance is added, not found by the first
 * backup at 3 a.m.
 */
export async function checkDbLogin(deps: Deps, host: Host, instance: string, dbUrl: string, password: string | undefined): Promise<void> {
  const db = dbAt(dbUrl, password ?? '');
  const problem = await db.engine.checkAccess(deps.ssh.shell(host), db, 30_000);
  if (!problem) return;
  const { target, engine } = db;
  const retry = `then run instance add ${instance} again (or add --no-db-check to skip this check while the database is down)`;
  const hint = {
    password: `give the password of role ${target.user} in OPSDECK_DB_PASSWORD, with --db-password-file FILE, or at the prompt; ${retry}`,
    names: `check the role and database name in --db (${engine.urlForm}, as the host reaches the server); ${retry}`,
    'no-client': `install ${engine.client} on host ${host.name}; ${retry}`,
    rights: `grant role ${target.user} what is missing on ${target.database}, as said above; ${retry}`,
    unreachable: `check that the server is reachable from host ${host.name} at ${target.host}:${target.port}; ${retry}`,
  }[problem.cause];
  throw new UsageError(`instance ${instance}: cannot log in to its database ${dbUrl} from host ${host.name}: ${problem.why}`, hint);
}
