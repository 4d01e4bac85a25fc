import { withSecretFromStdin } from '../remote/quote.js';
import { UsageError } from '../util/errors.js';

export interface PgTarget {
  kind: 'postgres';
  user: string;
  host: string;
  port: number;
  database: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/;

/**
 * Parses postgres://USER@HOST:PORT/DB. A password in the URL is refused: it would sit in this
 * process's argv and in shell history. It goes in OPSDECK_DB_PASSWORD, --db-password-file or the prompt.
 */
export function parsePgUrl(url: string): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`invalid database URL ${JSON.stringify(url)}`, 'write it as postgres://USER@HOST:PORT/DBNAME');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new UsageError(`unsupported database kind ${JSON.stringify(u.protocol.replace(/:$/, ''))}`, 'opsdeck supports postgres://USER@HOST:PORT/DBNAME');
  }
  if (u.password) {
    throw new UsageError('the database URL holds a password, which would be visible in the process list and shell history', 'drop it from the URL and give it in OPSDECK_DB_PASSWORD, with --db-password-file FILE, or at the prompt');
  }
  const user = decodeURIComponent(u.username);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  if (!IDENT.test(user)) throw new UsageError(`invalid database user ${JSON.stringify(user)} in ${url}`, 'give the role name as postgres://ROLE@HOST/DB');
  if (!IDENT.test(database)) throw new UsageError(`invalid database name ${JSON.stringify(database)} in ${url}`, 'give the database name as postgres://ROLE@HOST/DB');
  if (!/^[A-Za-z0-9][A-Za-z0-9.:-]*$/.test(host)) throw new UsageError(`invalid database host ${JSON.stringify(host)}`);
  const port = u.port ? Number(u.port) : 5432;
  return { kind: 'postgres', user, host, port, database };
}

export function formatPgUrl(t: PgTarget): string {
  return `postgres://${encodeURIComponent(t.user)}@${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}/${encodeURIComponent(t.database)}`;
}

function connArgs(t: PgTarget): string[] {
  return ['--host', t.host, '--port', String(t.port), '--username', t.user, '--no-password'];
}

/** pg_dump of the whole database as plain SQL: restic deduplicates it well, psql loads it in one transaction. */
export function dumpArgv(t: PgTarget): string[] {
  return withSecretFromStdin('PGPASSWORD', ['pg_dump', ...connArgs(t), '--no-owner', '--no-privileges', '--dbname', t.database]);
}

/** pg_dump of the schema only, for comparing two databases' structure. */
export function withSchemaOnly(t: PgTarget): string[] {
  return withSecretFromStdin('PGPASSWORD', ['pg_dump', ...connArgs(t), '--schema-only', '--no-owner', '--no-privileges', '--dbname', t.database]);
}

export function psqlArgv(t: PgTarget, extra: string[]): string[] {
  return withSecretFromStdin('PGPASSWORD', ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...connArgs(t), '--dbname', t.database, ...extra]);
}

/**
 * Loading is one transaction that first drops everything the role owns, so objects created since the
 * backup are gone too, and that only commits when the suffix arrives, after the dump's checksum matched.
 * A dump cut short reaches EOF without COMMIT and psql's session ends: the database is untouched.
 */
export const LOAD_PREFIX = 'BEGIN;\nDROP OWNED BY CURRENT_USER;\n';
export const LOAD_SUFFIX = '\nCOMMIT;\n';

export function loadArgv(t: PgTarget): string[] {
  return psqlArgv(t, ['-f', '-']);
}

/** An SQL identifier, double-quoted: whatever it holds, PostgreSQL reads it as one name. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A schema-qualified name as pg_dump writes it (parts bare or already quoted), quoted for SQL. */
export function quoteQualified(name: string): string {
  return (name.match(/"(?:[^"]|"")*"|[^.]+/g) ?? []).map((p) => (p.startsWith('"') ? p : quoteIdent(p))).join('.');
}
