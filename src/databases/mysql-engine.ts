/**
 * MariaDB and MySQL behind the DbEngine interface: the URL, argv and the swap-in load (mysql.ts),
 * rows per table of a dump (mysql-rows.ts) and the probes (mysql-probes.ts).
 *
 * A load cannot be one transaction here (DDL commits on its own), so it goes into a scratch
 * database beside the target; only once the whole dump loaded (the loader's commit is an end
 * marker the client prints back, with a nonce a dump cannot forge) and every table's rows match
 * the dump's own count (and the backup's manifest, when given) is everything swapped in with one
 * RENAME TABLE. The old tables are kept for the undo (kept()), dropped by the run's cleanup.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { OpsError, UsageError } from '../core/errors.js';
import { CommandError, type ExecResult, type Shell } from '../remote/shell.js';
import { LoadStopped, type AccessProblem, type Db, type DbEngine, type DbLoader, type DbTarget, type DumpSource, type TableDigest } from './engine.js';
import {
  clientArgv,
  dropDatabases,
  dropKept,
  dumpArgv,
  formatMysqlUrl,
  grantsHint,
  loadProblem,
  normalizeSchema,
  parseMysqlUrl,
  quoteName,
  quoteString,
  keptIntact,
  MysqlConversation,
  schemaDumpArgv,
  sql,
  swapBack,
  swapIn,
  swapNames,
  SwapNotUndone,
  tableChecksums,
  type Kept,
  type MysqlSession,
  type MysqlTarget,
} from './mysql.js';
import { mysqlMetricProblem, probeMysql } from './mysql-probes.js';
import { InsertCounter, LoadRewriter } from './mysql-rows.js';
import { mysqlRedactionProblem } from './redaction.js';

/** The target as this engine's own; a target of another engine is a mistake of the caller's. */
function my(t: DbTarget): MysqlTarget {
  if (t.kind !== 'mysql') throw new OpsError(`internal: a ${t.kind} database given to the MariaDB/MySQL engine`);
  return t as MysqlTarget;
}

const session = (shell: Shell, db: Db): MysqlSession => ({ shell, t: my(db.target), password: db.password });
const lastLine = (s: string) => s.trim().split('\n').filter(Boolean).pop() ?? '';
/** A run id for the swap databases' names (DB_opsdeck_ID_new): lowercase, short. */
const newRunId = () => randomBytes(5).toString('hex');

/** A failure before anything of the target changed, as LoadStopped (the caller has nothing to put back). */
function stopped(shell: Shell, why: string, res?: ExecResult): LoadStopped {
  return new LoadStopped(shell.label, ['mariadb'], res ?? { code: 1, signal: null, stdout: '', stderr: why });
}

/** Tables whose rows differ between what loaded and what the dump (or the backup's manifest) holds. */
function rowProblems(loaded: Map<string, number>, want: Record<string, number>, what: string): string[] {
  const names = new Set([...loaded.keys(), ...Object.keys(want)]);
  const got = (n: string) => (!loaded.has(n) ? 'missing' : Number.isNaN(loaded.get(n)) ? 'a table the dump does not make' : `${loaded.get(n)} rows loaded`);
  return [...names].filter((n) => loaded.get(n) !== want[n]).map((n) => `${n}: ${got(n)}, ${want[n] ?? 'none'} in ${what}`);
}

async function loader(shell: Shell, db: Db, from: DumpSource, signal?: AbortSignal): Promise<DbLoader> {
  if (from.kind !== 'mysql') {
    throw new UsageError(`the dump is of a ${from.kind} database and cannot load into MariaDB/MySQL database ${db.target.database}`, 'restore it onto an instance whose database is of the same kind');
  }
  signal?.throwIfAborted();
  const s = session(shell, db);
  const runId = newRunId();
  const { scratch, old } = swapNames(s.t, runId);
  const rewriter = new LoadRewriter();
  const marker = `opsdeck: the dump arrived whole ${randomBytes(8).toString('hex')}`;
  let kept: Kept | undefined;
  return {
    // The scratch database is made by the load's own session: one login over SSH fewer.
    head: `CREATE DATABASE ${quoteName(scratch)};\nUSE ${quoteName(scratch)};\n`,
    // Definers dropped, rows counted by the server as they go in (LoadRewriter).
    feed: (chunk) => rewriter.feed(chunk),
    finish: () => rewriter.finish(),
    // The client prints the marker back only if it got this far: a dump cut short never does.
    commit: `\nSELECT ${quoteString(marker)};\n`,
    how: `into ${scratch}, rows checked, swapped in with one RENAME TABLE`,
    before: from.role && from.role !== s.t.user ? [`views, routines, triggers and events are defined by ${s.t.user} here (the dump's definers are dropped)`] : [],
    notes: () => [],
    kept: () => (kept ? JSON.stringify(kept) : undefined),
    run: async (input, runSignal, keep) => {
      // Said before the scratch database exists: a crash from here on leaves a record of what to drop.
      await keep?.(JSON.stringify({ runId, scratch, old } satisfies Kept));
      // The swap's session logs in while the dump loads (an SSH channel, a shell, the client's start
      // and its authentication, off the restore's critical path) and waits for its turns. The load
      // has a session of its own: only the end of its input ends a statement cut anywhere (inside a
      // quoted string too), so a dump cut short cannot run on into what follows it.
      let talk = new MysqlConversation(s, undefined, runSignal, { idle: true });
      // Drops the scratch database in the swap's session, else in one of its own.
      const dropScratch = async () => {
        const res = await talk.end(`DROP DATABASE IF EXISTS ${quoteName(scratch)};`).catch(() => undefined);
        if (res?.code !== 0) await dropDatabases(s, [scratch]).catch(() => {});
      };
      let made = true;
      try {
        const res = await shell.exec(clientArgv(s.t, undefined), { stdin: input, secretLine: db.password, signal: runSignal });
        // ER_DB_CREATE_EXISTS: not this run's database, not this run's to drop.
        if (res.code !== 0 && /ERROR 1007\b/.test(res.stderr)) made = false;
        if (res.code !== 0) throw stopped(shell, '', res);
        if (!res.stdout.split('\n').includes(marker)) throw stopped(shell, `the dump did not arrive whole; ${s.t.database} was not changed`);
        const loaded = rewriter.loaded(res.stdout);
        const wrong = [...rowProblems(loaded, rewriter.tables, 'the dump'), ...(from.tables ? rowProblems(loaded, from.tables, "the backup's manifest") : [])];
        if (wrong.length) throw stopped(shell, `the loaded database does not match the backup (${wrong.slice(0, 5).join('; ')}); ${s.t.database} was not changed`);
        // A session that ended while it waited (the server's or the network's doing) is opened again.
        if (talk.over) talk = new MysqlConversation(s, undefined, runSignal);
        // Redaction in the scratch database, after the rows were checked and before the swap.
        if (from.redact?.length) await talk.ask(`USE ${quoteName(scratch)};\n${from.redact.join('\n')}`);
      } catch (err) {
        if (made) await dropScratch();
        else await talk.end().catch(() => {});
        // Nothing before the swap touches the target: a connection lost mid-load (even after the
        // caller sent its go-ahead, which only ends the input) left it as it was.
        if (err instanceof LoadStopped || runSignal.aborted) throw err;
        throw stopped(shell, `${(err as Error).message}; ${s.t.database} was not changed`);
      }
      try {
        kept = await swapIn(s, runId, talk, keep && ((k) => keep(JSON.stringify(k))));
      } catch (err) {
        // Not put back: the caller's undo (putBack) or opsdeck recover does it from what keep was told.
        if (err instanceof SwapNotUndone) throw err;
        // swapIn swapped back before it rejected (or failed before its first change): the target is as it was.
        await dropScratch();
        throw stopped(shell, `the swap failed and was undone: ${(err as Error).message}`);
      }
    },
  };
}

/**
 * The whole restore of a dump onto the target through the engine's own loader, as one call (tests;
 * the operations drive the loader as steps): refused before any change without the rights; loaded
 * beside; rows checked against the dump and `expectedRows`; swapped in. Any failure leaves the target
 * as it was and no swap database behind. Returns what an undo needs (putBack).
 */
export async function restoreBySwap(shell: Shell, db: Db, dump: Readable, expectedRows: Record<string, number>): Promise<string> {
  await mysqlEngine.checkLoad(shell, db);
  const l = await loader(shell, db, { kind: 'mysql', role: db.target.user, tables: expectedRows });
  const input = new PassThrough();
  const loading = l.run(input, new AbortController().signal);
  input.write(l.head);
  let whole = true;
  try {
    for await (const chunk of dump) input.write(l.feed(chunk as Buffer));
  } catch {
    whole = false;
  }
  if (whole) input.write(l.finish());
  input.end(whole ? l.commit : undefined);
  await loading;
  return l.kept()!;
}

export const mysqlEngine: DbEngine = {
  kind: 'mysql',
  name: 'MariaDB/MySQL',
  schemes: ['mysql', 'mariadb'],
  urlForm: 'mysql://USER@HOST:PORT/DB',
  client: 'the MariaDB client (mariadb, mariadb-dump: Debian package mariadb-client)',
  loadWords:
    "loads the database into a scratch database beside it, checks every table's rows against the backup, then swaps all tables in with one RENAME TABLE (on any error the database is not changed; the old tables are kept until the run is done)",

  loadsBeside: true,
  parse: parseMysqlUrl,
  format: (t) => formatMysqlUrl(my(t)),

  async checkAccess(shell, db, timeoutMs): Promise<AccessProblem | undefined> {
    const t = my(db.target);
    const res = await shell.exec(clientArgv(t, t.database), { secretLine: db.password, stdin: 'SELECT 1;\n', timeoutMs });
    if (res.code === 0 && res.stdout.trim() === '1') return undefined;
    const why = lastLine(res.stderr) || `mariadb exited ${res.code}`;
    if (res.code === 127 || /not found/.test(why)) return { why, cause: 'no-client' };
    if (res.code === 96 || /ERROR 1045\b/.test(why)) return { why, cause: 'password' };
    if (/ERROR (1044|1049)\b/.test(why)) return { why, cause: 'names' };
    return { why, cause: 'unreachable' };
  },

  async checkLoad(shell, db, signal) {
    signal?.throwIfAborted();
    const problem = await loadProblem(session(shell, db), newRunId());
    if (problem) throw new OpsError(`cannot restore into ${db.target.database}: ${problem}`, 1, `as an admin: ${grantsHint(my(db.target)).replace(/'HOST'/g, "'THE-APP-HOST'")}`);
  },

  dumpArgv: (t) => dumpArgv(my(t)),
  rowCounter: () => new InsertCounter(),
  loader,
  putBack: (shell, db, kept) => swapBack(session(shell, db), JSON.parse(kept) as Kept),
  canPutBack: (shell, db, kept) => keptIntact(session(shell, db), JSON.parse(kept) as Kept),
  dropKept: (shell, db, kept) => dropKept(session(shell, db), JSON.parse(kept) as Kept),

  async schema(shell, db) {
    const res = await shell.exec(schemaDumpArgv(my(db.target)), { secretLine: db.password, maxBuffer: 1 << 28 });
    if (res.code !== 0) throw new CommandError(shell.label, ['mariadb-dump'], res);
    return normalizeSchema(res.stdout)
      .split('\n')
      .filter((l) => !l.startsWith('--'))
      .join('\n')
      .replace(/\n{3,}/g, '\n\n');
  },

  async tableDigests(shell, db) {
    const sums = await tableChecksums(session(shell, db), db.target.database);
    return new Map<string, TableDigest>([...sums].map(([t, d]) => [t, { rows: d.rows, sum: d.sum }]));
  },

  async countRows(shell, db, tables) {
    const out = new Map<string, number>();
    if (!tables.length) return out;
    const rows = await sql(session(shell, db), tables.map((t) => `SELECT ${quoteString(t)}, COUNT(*) FROM ${quoteName(t)}`).join(' UNION ALL ') + ';', db.target.database);
    for (const line of rows.split('\n').filter(Boolean)) {
      const [name, n] = line.split('\t');
      out.set(name, Number(n));
    }
    return out;
  },

  async emptiness(shell, db) {
    const t = my(db.target);
    const q = 'DATABASE()';
    const res = await shell.exec(clientArgv(t, t.database), {
      secretLine: db.password,
      stdin: `SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${q}) + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${q}) + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${q});\n`,
    });
    if (res.code === 0) return res.stdout.trim() === '0' ? 'empty' : 'not-empty';
    if (/ERROR 1049\b/.test(res.stderr)) return 'missing';
    throw new OpsError(`cannot reach database ${t.database}: ${lastLine(res.stderr)}`);
  },

  async createDatabase(shell, db) {
    const t = my(db.target);
    const res = await shell.exec(clientArgv(t, undefined), { secretLine: db.password, stdin: `CREATE DATABASE ${quoteName(t.database)};\n` });
    if (res.code !== 0)
      throw new OpsError(`cannot create database ${t.database} as ${t.user}: ${lastLine(res.stderr)}`, 1, `create it, or as an admin: ${grantsHint(t).replace(/'HOST'/g, "'THE-APP-HOST'")}`);
  },

  async dropDatabase(shell, db) {
    const t = my(db.target);
    const res = await shell.exec(clientArgv(t, undefined), { secretLine: db.password, stdin: `DROP DATABASE IF EXISTS ${quoteName(t.database)};\n` });
    if (res.code !== 0) throw new OpsError(`cannot drop database ${t.database}: ${lastLine(res.stderr)}`);
  },

  // The client reads MYSQL_HOST, MYSQL_TCP_PORT and MYSQL_PWD; the user and database have no
  // variable of the client's own, so a migrate script passes "-u $DB_USER $DB_NAME".
  hookEnv: (t) => ({
    env: [`MYSQL_HOST=${t.host}`, `MYSQL_TCP_PORT=${t.port}`, `DB_HOST=${t.host}`, `DB_PORT=${t.port}`, `DB_USER=${t.user}`, `DB_NAME=${t.database}`],
    passwordVar: 'MYSQL_PWD',
  }),

  probe: (db, stream, sqlMetrics, timeoutMs) => probeMysql(my(db.target), db.password, stream, sqlMetrics, timeoutMs),
  metricProblem: mysqlMetricProblem,
  redactionProblem: mysqlRedactionProblem,
};
