/**
 * PostgreSQL behind the DbEngine interface: the URL and argv (postgres.ts), the dump rewriter
 * (dump-rewriter.ts), rows per table of a dump (postgres-rows.ts) and the probes (postgres-probes.ts).
 */
import { OpsError, UsageError } from '../core/errors.js';
import { CommandError, type Shell } from '../remote/shell.js';
import { DumpRewriter } from './dump-rewriter.js';
import { LoadStopped, type AccessProblem, type Db, type DbEngine, type DbLoader, type DbTarget, type DumpSource, type TableDigest } from './engine.js';
import {
  LOAD_PREFIX,
  LOAD_SUFFIX,
  dumpArgv,
  formatPgUrl,
  loadArgv,
  loadTargetArgv,
  parseLoadTarget,
  parsePgUrl,
  psqlArgv,
  quoteIdent,
  quoteQualified,
  withSchemaOnly,
  type PgTarget,
} from './postgres.js';
import { metricSqlProblem } from '../core/metricsql.js';
import { probePostgres } from './postgres-probes.js';
import { CopyCounter } from './postgres-rows.js';
import { postgresRedactionProblem } from './redaction.js';

/** The target as this engine's own; a target of another engine is a mistake of the caller's. */
function pg(t: DbTarget): PgTarget {
  if (t.kind !== 'postgres') throw new OpsError(`internal: a ${t.kind} database given to the PostgreSQL engine`);
  return t as PgTarget;
}

const lastLine = (s: string) => s.trim().split('\n').filter(Boolean).pop() ?? '';

/** Runs SQL from stdin with psql (-At: one row a line, columns split by |); throws unless it exits 0. */
async function psql(shell: Shell, db: Db, sql: string): Promise<string> {
  const res = await shell.exec(psqlArgv(pg(db.target), ['-At', '-f', '-']), { secretLine: db.password, stdin: sql, maxBuffer: 1 << 28 });
  if (res.code !== 0) throw new CommandError(shell.label, ['psql'], res);
  return res.stdout;
}

/** Runs one SQL command as the instance's role against `database` (default: its own). */
function roleSql(shell: Shell, db: Db, sql: string, database = db.target.database) {
  return shell.exec(psqlArgv({ ...pg(db.target), database }, ['-At', '-c', sql]), { secretLine: db.password });
}

async function loader(shell: Shell, db: Db, from: DumpSource, signal?: AbortSignal): Promise<DbLoader> {
  if (from.kind !== 'postgres') {
    throw new UsageError(`the dump is of a ${from.kind} database and cannot load into PostgreSQL database ${db.target.database}`, 'restore it onto an instance whose database is of the same kind');
  }
  const target = pg(db.target);
  // The roles and kept extensions where the dump loads, for mapping its owners and grants there
  // (same instance: nothing to map, unless a role was dropped since).
  const res = await shell.exec(loadTargetArgv(target), { secretLine: db.password, signal });
  if (res.code !== 0) throw new CommandError(shell.label, ['psql'], res);
  const t = parseLoadTarget(res.stdout);
  const rewrite = new DumpRewriter(t, from.role);
  return {
    // One transaction that first empties what the role may replace (LOAD_PREFIX) and commits only
    // when LOAD_SUFFIX arrives: a dump cut short reaches EOF without COMMIT and changes nothing.
    head: LOAD_PREFIX,
    feed: (chunk) => rewrite.feed(chunk),
    // Redaction after the whole dump, in the same transaction: the unredacted copy never commits.
    // The dump leaves search_path empty; the rules name tables as the app does.
    finish: () => (from.redact?.length ? Buffer.concat([rewrite.flush(), Buffer.from(`\nSET search_path TO DEFAULT;\n${from.redact.join('\n')}\n`)]) : rewrite.flush()),
    commit: LOAD_SUFFIX,
    how: 'in one transaction',
    before: from.role && from.role !== t.role ? [`what ${from.role} owns in the dump, ${t.role} owns here`] : [],
    notes: () => rewrite.notes(),
    kept: () => undefined,
    run: async (input, signal) => {
      const r = await shell.exec(loadArgv(target), { stdin: input, secretLine: db.password, signal });
      // psql exits 3 when ON_ERROR_STOP stopped the script at a failed statement: the statements
      // after it, the COMMIT among them, never ran, so the load did not commit even if COMMIT was sent.
      if (r.code === 3) throw new LoadStopped(shell.label, ['psql'], r);
      if (r.code !== 0) throw new CommandError(shell.label, ['psql'], r);
    },
  };
}

export const postgresEngine: DbEngine = {
  kind: 'postgres',
  name: 'PostgreSQL',
  schemes: ['postgres', 'postgresql'],
  urlForm: 'postgres://ROLE@HOST:PORT/DB',
  client: 'the PostgreSQL client (psql)',
  loadWords: 'loads the database in one transaction (on any error nothing changes)',

  loadsBeside: false,
  parse: parsePgUrl,
  format: (t) => formatPgUrl(pg(t)),

  async checkAccess(shell, db, timeoutMs): Promise<AccessProblem | undefined> {
    const res = await shell.exec(psqlArgv(pg(db.target), ['-At', '-c', 'SELECT 1']), { secretLine: db.password, timeoutMs });
    if (res.code === 0 && res.stdout.trim() === '1') return undefined;
    const why = lastLine(res.stderr) || `psql exited ${res.code}`;
    if (/password authentication failed|no password supplied|authentication failed/i.test(why)) return { why, cause: 'password' };
    if (/database .* does not exist|role .* does not exist/i.test(why)) return { why, cause: 'names' };
    if (res.code === 127 || /not found/.test(why)) return { why, cause: 'no-client' };
    return { why, cause: 'unreachable' };
  },
  // What a restore needs (not a superuser, nothing of other roles' in the way) is checked inside the
  // load's one transaction, which changes nothing when it refuses.
  checkLoad: async () => {},

  dumpArgv: (t) => dumpArgv(pg(t)),
  rowCounter: () => new CopyCounter(),
  loader,
  // The one transaction replaces in place and keeps nothing aside: an undo loads the safety backup.
  putBack: async () => {
    throw new OpsError('internal: a PostgreSQL load keeps nothing to put back');
  },
  canPutBack: async () => false,
  dropKept: async () => {},

  async schema(shell, db) {
    const res = await shell.exec(withSchemaOnly(pg(db.target)), { secretLine: db.password, maxBuffer: 1 << 28 });
    if (res.code !== 0) throw new CommandError(shell.label, ['pg_dump'], res);
    // Without what differs between any two dumps: the \restrict keys and comments.
    return res.stdout
      .split('\n')
      .filter((l) => !/^\\(un)?restrict /.test(l) && !l.startsWith('--'))
      .join('\n')
      .replace(/\n{3,}/g, '\n\n');
  },

  async tableDigests(shell, db) {
    const tables = (await psql(shell, db, "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2;"))
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('|') as [string, string]);
    const out = new Map<string, TableDigest>();
    if (!tables.length) return out;
    // An order-independent hash: each row's md5, sorted, hashed again.
    const sql =
      tables
        .map(([s, t]) => {
          const q = `${quoteIdent(s)}.${quoteIdent(t)}`;
          return `SELECT '${`${s}.${t}`.replace(/'/g, "''")}', count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') FROM (SELECT md5(x::text) AS h FROM ONLY ${q} x) r`;
        })
        .join('\nUNION ALL\n') + ';';
    for (const line of (await psql(shell, db, sql)).split('\n')) {
      if (!line) continue;
      const [name, rows, sum] = line.split('|');
      out.set(name, { rows: Number(rows), sum });
    }
    return out;
  },

  async countRows(shell, db, tables) {
    const out = new Map<string, number>();
    if (!tables.length) return out;
    const sql = tables.map((t) => `SELECT '${t.replace(/'/g, "''")}', count(*) FROM ONLY ${quoteQualified(t)}`).join(' UNION ALL ') + ';';
    for (const line of (await psql(shell, db, sql)).split('\n')) {
      if (!line) continue;
      const [name, rows] = line.split('|');
      out.set(name, Number(rows));
    }
    return out;
  },

  async emptiness(shell, db) {
    const probe = await roleSql(
      shell,
      db,
      "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
    );
    if (probe.code === 0) return probe.stdout.trim() === '0' ? 'empty' : 'not-empty';
    if (/does not exist/.test(probe.stderr)) return 'missing';
    throw new OpsError(`cannot reach database ${db.target.database}: ${lastLine(probe.stderr)}`);
  },

  async createDatabase(shell, db) {
    const res = await roleSql(shell, db, `CREATE DATABASE ${quoteIdent(db.target.database)}`, 'postgres');
    if (res.code !== 0)
      throw new OpsError(`cannot create database ${db.target.database} as ${db.target.user}: ${lastLine(res.stderr)}`, 1, 'create it (owned by that role), or grant the role CREATEDB');
  },

  async dropDatabase(shell, db) {
    const res = await roleSql(shell, db, `DROP DATABASE IF EXISTS ${quoteIdent(db.target.database)} WITH (FORCE)`, 'postgres');
    if (res.code !== 0) throw new OpsError(`cannot drop database ${db.target.database}: ${lastLine(res.stderr)}`);
  },

  // A migrate script can just call psql.
  hookEnv: (t) => ({ env: [`PGHOST=${t.host}`, `PGPORT=${t.port}`, `PGUSER=${t.user}`, `PGDATABASE=${t.database}`], passwordVar: 'PGPASSWORD' }),

  probe: (db, stream, sqlMetrics, timeoutMs) => probePostgres(pg(db.target), db.password, stream, sqlMetrics, timeoutMs),
  metricProblem: metricSqlProblem,
  redactionProblem: postgresRedactionProblem,
};
