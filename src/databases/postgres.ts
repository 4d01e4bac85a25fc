import { isIPv6 } from 'node:net';
import type { Duplex } from 'node:stream';
import { withSecretFromStdin } from '../remote/quote.js';
import { UsageError } from '../util/errors.js';
import { metricSqlProblem } from '../util/metricsql.js';

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
  // Connection parameters (?options=, ?sslmode=, #...) would be dropped on the way to psql and pg_dump:
  // refused rather than silently ignored.
  if (u.search || u.hash || /[?#]/.test(url)) {
    throw new UsageError(`the database URL ${JSON.stringify(url)} holds connection parameters (${u.search || u.hash || '?'}), which opsdeck does not pass on`, 'drop them and write postgres://ROLE@HOST:PORT/DB; a setting such as search_path can be set for the role instead: ALTER ROLE ROLE SET search_path = ...');
  }
  const user = decodeURIComponent(u.username);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  // An IPv6 literal comes bracketed ([::1]); it reaches psql bare.
  const v6 = /^\[(.*)\]$/.exec(u.hostname);
  const host = v6 ? v6[1] : u.hostname || '127.0.0.1';
  if (!IDENT.test(user)) throw new UsageError(`invalid database user ${JSON.stringify(user)} in ${url}`, 'give the role name as postgres://ROLE@HOST/DB');
  if (!IDENT.test(database)) throw new UsageError(`invalid database name ${JSON.stringify(database)} in ${url}`, 'give the database name as postgres://ROLE@HOST/DB');
  if (v6 ? !isIPv6(host) : !/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(host)) throw new UsageError(`invalid database host ${JSON.stringify(host)}`, 'give a host name, an IPv4 address, or an IPv6 address in brackets: postgres://ROLE@[::1]:5432/DB');
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

export interface PgHealth {
  ok: boolean;
  reason?: string;
  ms: number;
  sizeBytes?: number;
  /** Client connections to the whole server, against its max_connections. */
  connections?: number;
  maxConnections?: number;
  /** The oldest open transaction of any other session, in seconds; null when none is open. */
  longestTransactionSeconds?: number | null;
  /** On a primary with replicas: their count and worst replay lag; on a replica: how far behind it is. */
  replication?: { role: 'primary' | 'replica'; replicas: number; lagSeconds: number | null };
  /** App metrics by name: the number, or why it could not be read. */
  metrics?: Record<string, number | { error: string }>;
}

const HEALTH_SQL = `SELECT pg_database_size(current_database())::float8 AS size,
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS conns,
  current_setting('max_connections')::int AS max,
  (SELECT extract(epoch FROM max(now() - xact_start)) FROM pg_stat_activity
     WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend')::float8 AS longest,
  pg_is_in_recovery() AS replica,
  CASE WHEN pg_is_in_recovery() THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8 AS replay_lag,
  (SELECT count(*) FROM pg_stat_replication)::int AS replicas,
  (SELECT extract(epoch FROM max(replay_lag)) FROM pg_stat_replication)::float8 AS replica_lag,
  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`;

/**
 * Database health over a stream the caller opens (a tunnel on the host's SSH connection), with
 * node-postgres. The session is read-only from its start (default_transaction_read_only, a statement
 * and a lock timeout, as startup options) and everything runs in READ ONLY transactions that are
 * rolled back. Each app metric gets its own transaction, on the extended protocol (one statement),
 * after the same check `instance set` makes (metricSqlProblem): one bad metric fails alone, never
 * hiding the others or making the database look down. A superuser role runs no sql: metric at all:
 * it could write even in READ ONLY (COPY ... TO PROGRAM).
 */
export async function probePostgres(t: PgTarget, password: string, stream: () => Duplex, sqlMetrics: { name: string; query: string }[] = [], timeoutMs = 8000): Promise<PgHealth> {
  const t0 = Date.now();
  const { default: pg } = await import('pg');
  // Each metric gets a share of the time, so a slow one cannot use up the whole probe's.
  const healthMs = Math.max(1000, timeoutMs - 1000);
  const metricMs = Math.max(500, Math.floor(healthMs / (sqlMetrics.length + 1)));
  const client = new pg.Client({
    user: t.user,
    database: t.database,
    password,
    host: t.host,
    port: t.port,
    stream,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: 'opsdeck-health',
    options: `-c default_transaction_read_only=on -c statement_timeout=${healthMs} -c lock_timeout=${metricMs} -c idle_in_transaction_session_timeout=${timeoutMs}`,
  });
  // A connection lost later must not become an unhandled 'error' that ends the process.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('BEGIN READ ONLY');
    const r = (await client.query(HEALTH_SQL)).rows[0];
    await client.query('ROLLBACK');
    const out: PgHealth = {
      ok: true,
      ms: 0,
      sizeBytes: r.size,
      connections: r.conns,
      maxConnections: r.max,
      longestTransactionSeconds: r.longest === null ? null : Math.round(r.longest),
    };
    if (r.replica) out.replication = { role: 'replica', replicas: 0, lagSeconds: r.replay_lag === null ? null : Math.round(r.replay_lag) };
    else if (r.replicas > 0) out.replication = { role: 'primary', replicas: r.replicas, lagSeconds: r.replica_lag === null ? null : Math.round(r.replica_lag) };
    out.ms = Date.now() - t0;
    if (sqlMetrics.length) out.metrics = await sqlMetricValues(client, t, !!r.superuser, sqlMetrics, metricMs);
    return out;
  } catch (err) {
    return { ok: false, reason: (err as Error).message || String(err), ms: Date.now() - t0 };
  } finally {
    void client.end().catch(() => {});
  }
}

/** Each sql: metric in its own READ ONLY transaction, rolled back; a failure is that metric's alone. */
async function sqlMetricValues(client: import('pg').Client, t: PgTarget, superuser: boolean, sqlMetrics: { name: string; query: string }[], metricMs: number): Promise<Record<string, number | { error: string }>> {
  const out: Record<string, number | { error: string }> = {};
  let lost: string | undefined;
  for (const m of sqlMetrics) {
    if (superuser) {
      out[m.name] = { error: `refused: role ${t.user} is a superuser, which can write even in a read-only transaction (COPY ... TO PROGRAM); give the instance a role without SUPERUSER, or use a cmd: metric` };
      continue;
    }
    const problem = metricSqlProblem(m.query);
    if (problem) {
      out[m.name] = { error: `refused: ${problem}` };
      continue;
    }
    if (lost) {
      out[m.name] = { error: `not run: ${lost}` };
      continue;
    }
    try {
      await client.query(`BEGIN READ ONLY; SET LOCAL statement_timeout = ${metricMs}`);
      try {
        const res = await client.query({ text: m.query, queryMode: 'extended', rowMode: 'array' } as any);
        const v = Number(res.rows[0]?.[0]);
        out[m.name] = res.rows.length && res.rows[0][0] !== null && Number.isFinite(v) ? v : { error: 'the query did not return one number' };
      } catch (err) {
        out[m.name] = { error: (err as Error).message };
      }
      await client.query('ROLLBACK');
    } catch (err) {
      // The session itself is gone (the metric ended it?): the others cannot run on it.
      lost = `the connection was lost during metric ${m.name}: ${(err as Error).message}`;
      if (!(m.name in out) || typeof out[m.name] === 'number') out[m.name] = { error: lost };
    }
  }
  return out;
}
