/** Where a team inventory is (postgres://ROLE@HOST:PORT/DB) and how its SQL text is written for pg. */
import { UsageError } from '../src/core/errors.js';

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  database: string;
}

/**
 * postgres://ROLE@HOST[:PORT]/DB. A password in it is refused, as in instance URLs: it would show in
 * ps, shell history and settings.json. So are parameters (?sslmode=...): nothing would pass them on.
 */
export function parseInventoryUrl(url: string): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`invalid inventory URL ${JSON.stringify(url)}`, 'write it as postgres://ROLE@HOST:PORT/DB');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new UsageError(`invalid inventory URL ${JSON.stringify(url)}`, 'write it as postgres://ROLE@HOST:PORT/DB');
  if (u.password) {
    throw new UsageError(
      'a password in the inventory URL is refused: it would show in ps, shell history and settings',
      'give it in OPSDECK_INVENTORY_PASSWORD, --inventory-password-file FILE (mode 600), or at the prompt',
    );
  }
  if (u.search || u.hash) throw new UsageError(`connection parameters in the inventory URL are not passed on: ${u.search}${u.hash}`, 'write it as postgres://ROLE@HOST:PORT/DB');
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const user = decodeURIComponent(u.username);
  if (!user || !database || !u.hostname) throw new UsageError(`the inventory URL ${JSON.stringify(url)} needs a role, a host and a database`, 'write it as postgres://ROLE@HOST:PORT/DB');
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 5432, user, database };
}

export const formatTarget = (t: PgTarget) => `postgres://${encodeURIComponent(t.user)}@${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}/${encodeURIComponent(t.database)}`;

/** `?` placeholders as PostgreSQL numbers them ($1, $2, ...); a `?` inside a quoted literal stays. */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  let out = '';
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else out += ch === '?' ? `$${++n}` : ch;
  }
  return out;
}

/** How long a log-in to the inventory's server may take. */
export const CONNECT_TIMEOUT_MS = 10_000;
