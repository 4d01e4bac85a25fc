import type { Host } from '../../inventory/index.js';
import { parsePgUrl, psqlArgv } from '../databases/postgres.js';
import { UsageError } from '../core/errors.js';
import type { Deps } from '../deps/deps.js';

/**
 * Logs in to an instance's database as every later action will (psql on its host, over the host's
 * SSH connection, the password on stdin) and runs SELECT 1: a wrong password, role or database name
 * is refused when the instance is added, not found by the first backup at 3 a.m.
 */
export async function checkDbLogin(deps: Deps, host: Host, instance: string, dbUrl: string, password: string | undefined): Promise<void> {
  const target = parsePgUrl(dbUrl);
  const res = await deps.ssh.shell(host).exec(psqlArgv(target, ['-At', '-c', 'SELECT 1']), { secretLine: password ?? '', timeoutMs: 30_000 });
  if (res.code === 0 && res.stdout.trim() === '1') return;
  const why = res.stderr.trim().split('\n').filter(Boolean).pop() ?? `psql exited ${res.code}`;
  const retry = `then run instance add ${instance} again (or add --no-db-check to skip this check while the database is down)`;
  let hint: string;
  if (/password authentication failed|no password supplied|authentication failed/i.test(why)) {
    hint = `give the password of role ${target.user} in OPSDECK_DB_PASSWORD, with --db-password-file FILE, or at the prompt; ${retry}`;
  } else if (/database .* does not exist|role .* does not exist/i.test(why)) {
    hint = `check the role and database name in --db (postgres://ROLE@HOST:PORT/DB, as the host reaches the server); ${retry}`;
  } else if (res.code === 127 || /not found/.test(why)) {
    hint = `install the PostgreSQL client (psql) on host ${host.name}; ${retry}`;
  } else {
    hint = `check that the server is reachable from host ${host.name} at ${target.host}:${target.port}; ${retry}`;
  }
  throw new UsageError(`instance ${instance}: cannot log in to its database ${dbUrl} from host ${host.name}: ${why}`, hint);
}
