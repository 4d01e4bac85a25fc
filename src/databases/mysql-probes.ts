/**
 * The health of an instance's MariaDB/MySQL database, read over a tunnel on the host's SSH
 * connection (mysql2 on the stream the caller opens): size, connections against max_connections,
 * the longest open transaction, replication, and the instance's read-only `sql:` metrics.
 */
import type { Duplex } from 'node:stream';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { metricSqlProblem } from '../core/metricsql.js';
import type { DbHealth } from './engine.js';
import type { MysqlTarget } from './mysql.js';

/**
 * What READ ONLY does not stop on MariaDB (beyond what metricSqlProblem refuses for every engine):
 * named locks (GET_LOCK outlives the rollback), sleeping and busy loops, reading server files,
 * writing them (INTO OUTFILE/DUMPFILE), user variables (INTO @v, :=) and sequences (NEXTVAL).
 */
const MYSQL_REFUSED =
  /\b(get_lock|release_lock|release_all_locks|is_free_lock|is_used_lock|sleep|benchmark|load_file|master_pos_wait|master_gtid_wait|nextval|setval|lastval)\s*\(|\binto\s+(outfile|dumpfile|@)|:=|\bnext\s+value\s+for\b/i;

/** Why a metric may not run on MariaDB, or null: the shared rules, then MariaDB's own. */
export function mysqlMetricProblem(query: string): string | null {
  const shared = metricSqlProblem(query);
  if (shared) return shared;
  // Quoted text and names cannot call anything: taken out before looking for calls.
  const bare = query.replace(/'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`(?:[^`]|``)*`/g, "''");
  const m = MYSQL_REFUSED.exec(bare);
  return m ? `${m[0].replace(/\s*\($/, '')} acts outside a read-only transaction on MariaDB/MySQL` : null;
}

/** The caller's stream, opened: a tunnel opens on connect(), which node-postgres calls and mysql2 does not. */
function opened(s: Duplex): Duplex {
  (s as Duplex & { connect?: () => unknown }).connect?.();
  return s;
}

const num = (v: unknown): number | null => (v === null || v === undefined || !Number.isFinite(Number(v)) ? null : Number(v));

/**
 * Database health over a stream the caller opens. The session is read-only from its start (SET
 * SESSION TRANSACTION READ ONLY, a statement time limit) and every read runs in a READ ONLY
 * transaction that is rolled back. Each app metric gets its own, one statement (the driver sends
 * no second one: multipleStatements is off), after mysqlMetricProblem: one bad metric fails alone.
 * What needs rights an app account seldom has (PROCESS for other sessions' transactions,
 * REPLICATION CLIENT for replica status) is left out when refused, not reported as down.
 */
export async function probeMysql(t: MysqlTarget, password: string, stream: () => Duplex, sqlMetrics: { name: string; query: string }[] = [], timeoutMs = 8000): Promise<DbHealth> {
  const t0 = Date.now();
  // A CommonJS module: its exports are `default` once bundled (esbuild), and also named under plain Node.
  const { createConnection } = (await import('mysql2/promise')).default;
  const healthMs = Math.max(1000, timeoutMs - 1000);
  const metricMs = Math.max(500, Math.floor(healthMs / (sqlMetrics.length + 1)));
  let conn: Connection | undefined;
  try {
    conn = await createConnection({ user: t.user, password, database: t.database, stream: () => opened(stream()), connectTimeout: timeoutMs, multipleStatements: false });
    // A connection lost later must not become an unhandled 'error' that ends the process.
    conn.on('error', () => {});
    await conn.query('SET SESSION TRANSACTION READ ONLY');
    await conn.query(`SET SESSION max_statement_time = ${(healthMs / 1000).toFixed(3)}, SESSION lock_wait_timeout = ${Math.max(1, Math.ceil(metricMs / 1000))}`);
    const one = async (sql: string): Promise<RowDataPacket | undefined> => ((await conn!.query<RowDataPacket[]>(sql))[0] as RowDataPacket[])[0];
    const maybe = async (sql: string): Promise<RowDataPacket | undefined | null> => one(sql).catch(() => null);
    await conn.query('START TRANSACTION READ ONLY');
    const r = await one(
      `SELECT (SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()) AS size,
        (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'THREADS_CONNECTED') AS conns,
        @@max_connections AS max`,
    );
    // Other sessions' transactions are visible with PROCESS only.
    const trx = await maybe(`SELECT COUNT(*) AS n, MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())) AS longest FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID()`);
    await conn.query('ROLLBACK');
    const out: DbHealth = { ok: true, ms: 0, sizeBytes: num(r?.size) ?? 0, connections: num(r?.conns) ?? undefined, maxConnections: num(r?.max) ?? undefined };
    if (trx) out.longestTransactionSeconds = num(trx.longest);
    const replica = await conn.query<RowDataPacket[]>('SHOW REPLICA STATUS').then(
      ([rows]) => rows[0],
      () => null,
    );
    if (replica) out.replication = { role: 'replica', replicas: 0, lagSeconds: num(replica.Seconds_Behind_Master ?? replica.Seconds_Behind_Source) };
    else {
      const dumps = await maybe(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`);
      if (dumps && Number(dumps.n) > 0) out.replication = { role: 'primary', replicas: Number(dumps.n), lagSeconds: null };
    }
    out.ms = Date.now() - t0;
    if (sqlMetrics.length) out.metrics = await sqlMetricValues(conn, sqlMetrics, metricMs);
    return out;
  } catch (err) {
    return { ok: false, reason: (err as Error).message || String(err), ms: Date.now() - t0 };
  } finally {
    void conn?.end().catch(() => {});
  }
}

/** Each sql: metric in its own READ ONLY transaction, rolled back; a failure is that metric's alone. */
async function sqlMetricValues(conn: Connection, sqlMetrics: { name: string; query: string }[], metricMs: number): Promise<Record<string, number | { error: string }>> {
  const out: Record<string, number | { error: string }> = {};
  let lost: string | undefined;
  for (const m of sqlMetrics) {
    const problem = mysqlMetricProblem(m.query);
    if (problem) {
      out[m.name] = { error: `refused: ${problem}` };
      continue;
    }
    if (lost) {
      out[m.name] = { error: `not run: ${lost}` };
      continue;
    }
    try {
      await conn.query(`SET SESSION max_statement_time = ${(metricMs / 1000).toFixed(3)}`);
      await conn.query('START TRANSACTION READ ONLY');
      try {
        const [rows] = await conn.query<RowDataPacket[]>({ sql: m.query, rowsAsArray: true });
        const first = (rows as unknown as unknown[][])[0]?.[0];
        const v = Number(first);
        out[m.name] = first !== null && first !== undefined && Number.isFinite(v) ? v : { error: 'the query did not return one number' };
      } catch (err) {
        out[m.name] = { error: (err as Error).message };
      }
      await conn.query('ROLLBACK');
    } catch (err) {
      lost = `the connection was lost during metric ${m.name}: ${(err as Error).message}`;
      if (!(m.name in out) || typeof out[m.name] === 'number') out[m.name] = { error: lost };
    }
  }
  return out;
}
