/**
 * The health of an instance's PostgreSQL database, read over a tunnel on the host's SSH connection:
 * size, connections, the longest transaction, replication, and the instance's read-only `sql:` metrics.
 */
import type { QueryArrayConfig } from 'pg';
import type { Duplex } from 'node:stream';
import { metricSqlProblem } from '../core/metricsql.js';
import type { DbHealth } from './engine.js';
import type { PgTarget } from './postgres.js';

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
export async function probePostgres(t: PgTarget, password: string, stream: () => Duplex, sqlMetrics: { name: string; query: string }[] = [], timeoutMs = 8000): Promise<DbHealth> {
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
    const out: DbHealth = {
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
async function sqlMetricValues(
  client: import('pg').Client,
  t: PgTarget,
  superuser: boolean,
  sqlMetrics: { name: string; query: string }[],
  metricMs: number,
): Promise<Record<string, number | { error: string }>> {
  const out: Record<string, number | { error: string }> = {};
  let lost: string | undefined;
  for (const m of sqlMetrics) {
    if (superuser) {
      out[m.name] = {
        error: `refused: role ${t.user} is a superuser, which can write even in a read-only transaction (COPY ... TO PROGRAM); give the instance a role without SUPERUSER, or use a cmd: metric`,
      };
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
        // The extended protocol runs exactly one statement: a metric cannot smuggle a second one in.
        // (pg supports queryMode; its types do not name it yet.)
        const query: QueryArrayConfig & { queryMode: 'extended' } = { text: m.query, queryMode: 'extended', rowMode: 'array' };
        const res = await client.query(query);
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
