/**
 * MariaDB and MySQL: the URL, dump argv, and the load that cannot leave a half-loaded database.
 *
 * DDL is not transactional here, so a load goes into a scratch database beside the target
 * (`DB_opsdeck_RUN_new`), its rows are checked, and then every table is swapped in by one RENAME
 * TABLE (atomic for all the tables it names: https://mariadb.com/kb/en/rename-table/ "the rename
 * operation is done atomically, which means that no other session can access any of the tables
 * while the rename is running"; since 10.6 also crash-safe, "atomic DDL"). The old tables move to
 * `DB_opsdeck_RUN_old`, kept until the run is done so an undo swaps them back. Views, routines,
 * triggers and events do not move across databases with RENAME TABLE (a table with triggers cannot
 * move at all: ER_TRG_IN_WRONG_SCHEMA), so they are dropped before it and created again from their
 * SHOW CREATE right after it, in the same session; their old definitions are kept for the undo.
 *
 * Definers: a dump's DEFINER=`user`@`host` clauses are dropped on the way in, so every view,
 * routine, trigger and event is defined by the account that loads (the instance's own). Keeping
 * them would need SET USER (or SUPER), which an app account does not have, and a definer from
 * another server may not exist here. An object the source defined as another account comes back
 * as the instance's: for SQL SECURITY DEFINER routines it then runs with the instance's rights.
 *
 * Passwords reach the client through an option file read from a pipe (/dev/fd/3, a here-document)
 * built on the host from the first line of stdin: never argv, never a file on disk; stdin stays
 * free for a dump.
 */
import { CommandError } from '../remote/shell.js';
import { OpsError } from '../core/errors.js';
import { clientArgv, DEFINER_RE, MysqlConversation, quoteName, quoteString, sql, unescapeField, type MysqlSession, type MysqlTarget } from './mysql-client.js';

export * from './mysql-client.js';

export function swapNames(t: MysqlTarget, runId: string): { scratch: string; old: string } {
  if (!/^[a-z0-9]{1,12}$/.test(runId)) throw new Error(`bad run id ${runId} for a swap database`);
  return { scratch: `${t.database}_opsdeck_${runId}_new`, old: `${t.database}_opsdeck_${runId}_old` };
}

/** The MariaDB rights a swap-in load needs on the database and on the two beside it. */
export const LOAD_PRIVILEGES = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'ALTER',
  'INDEX',
  'REFERENCES',
  'CREATE VIEW',
  'SHOW VIEW',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
  'TRIGGER',
  'EVENT',
];

/** The grants to give an app account, for messages and the README. */
export function grantsHint(t: MysqlTarget): string {
  const pattern = `${t.database.replace(/_/g, '\\_')}\\_opsdeck\\_%`;
  return `GRANT ALL ON ${quoteName(t.database)}.* TO ${quoteName(t.user)}@'HOST'; GRANT ALL ON ${quoteName(pattern)}.* TO ${quoteName(t.user)}@'HOST';`;
}

/**
 * Why a swap-in load of run `runId` cannot go ahead, asked before anything changes; undefined when
 * it can. The account needs LOAD_PRIVILEGES on the database and on both swap databases, and must be
 * able to create and drop those (tried: created and dropped at once, both empty). One session: the
 * try is skipped (SIGNAL) when a swap database exists or a right is missing, so an account that could
 * create but not drop one never leaves it behind.
 */
export async function loadProblem(s: MysqlSession, runId: string): Promise<string | undefined> {
  const { scratch, old } = swapNames(s.t, runId);
  const names = [s.t.database, scratch, old];
  const wanted = LOAD_PRIVILEGES.map((p) => `SELECT ${quoteString(p)} AS p`).join(' UNION ALL ');
  // A database-level grant names a LIKE pattern (`shop\_opsdeck\_%`): matched as the server does.
  const missing = names
    .map(
      (n) =>
        `SELECT 'lacks', ${quoteString(n)}, w.p FROM (${wanted}) w WHERE NOT EXISTS (SELECT 1 FROM information_schema.USER_PRIVILEGES u WHERE u.PRIVILEGE_TYPE = w.p) AND NOT EXISTS (SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES g WHERE g.PRIVILEGE_TYPE = w.p AND ${quoteString(n)} LIKE g.TABLE_SCHEMA)`,
    )
    .join(' UNION ALL ');
  const exists = `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (${[scratch, old].map(quoteString).join(', ')})`;
  const res = await s.shell.exec(clientArgv(s.t, undefined), {
    secretLine: s.password,
    stdin: [
      `SELECT 'exists', (${exists});`,
      `${missing};`,
      `DELIMITER ${DELIM}`,
      `BEGIN NOT ATOMIC IF (${exists}) + (SELECT COUNT(*) FROM (${missing}) m) > 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'opsdeck: checked'; END IF; END${DELIM}`,
      `CREATE DATABASE ${quoteName(scratch)}${DELIM} DROP DATABASE ${quoteName(scratch)}${DELIM} CREATE DATABASE ${quoteName(old)}${DELIM} DROP DATABASE ${quoteName(old)}${DELIM}`,
      '',
    ].join('\n'),
  });
  const lines = res.stdout.split('\n').map((l) => l.split('\t'));
  const found = lines.find((l) => l[0] === 'exists');
  const why = res.stderr.trim().split('\n').pop() ?? `mariadb exited ${res.code}`;
  if (!found) return why;
  if (found[1] !== '0') return `databases ${scratch} or ${old} already exist (left by run ${runId}?): drop them first`;
  const lacks = new Map<string, string[]>();
  for (const [tag, db, p] of lines) if (tag === 'lacks') lacks.set(db, [...(lacks.get(db) ?? []), p]);
  if (lacks.size) {
    return `account ${s.t.user} lacks ${[...lacks].map(([db, ps]) => `${ps.join(', ')} on ${db}`).join('; ')}: a restore loads into a database beside ${s.t.database} and swaps it in; give it ${grantsHint(s.t)}; nothing was changed`;
  }
  if (res.code !== 0) return `account ${s.t.user} cannot create the databases a restore loads into (${why}); give it ${grantsHint(s.t)}`;
  return undefined;
}

export async function dropDatabases(s: MysqlSession, dbs: string[]): Promise<void> {
  await sql(s, dbs.map((d) => `DROP DATABASE IF EXISTS ${quoteName(d)};`).join('\n'));
}

/** Rows of every base table of `db` (exact counts), by table name. */
export async function rowsPerTable(s: MysqlSession, db: string): Promise<Map<string, number>> {
  const tables = (await sql(s, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(db)} AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1;`)).split('\n').filter(Boolean);
  const out = new Map<string, number>();
  if (!tables.length) return out;
  const counts = await sql(s, tables.map((t) => `SELECT ${quoteString(t)}, COUNT(*) FROM ${quoteName(db)}.${quoteName(t)}`).join(' UNION ALL ') + ';');
  for (const line of counts.split('\n').filter(Boolean)) out.set(line.split('\t')[0], Number(line.split('\t')[1]));
  return out;
}

/** CHECKSUM TABLE of every base table, with its rows, for compare. */
export async function tableChecksums(s: MysqlSession, db: string): Promise<Map<string, { rows: number; sum: string }>> {
  const rows = await rowsPerTable(s, db);
  const out = new Map<string, { rows: number; sum: string }>();
  if (!rows.size) return out;
  const sums = await sql(s, `CHECKSUM TABLE ${[...rows.keys()].map((t) => `${quoteName(db)}.${quoteName(t)}`).join(', ')} EXTENDED;`);
  for (const line of sums.split('\n').filter(Boolean)) {
    const [name, sum] = line.split('\t');
    const t = name.slice(db.length + 1);
    out.set(t, { rows: rows.get(t) ?? 0, sum });
  }
  return out;
}

/** A view, routine, trigger or event: how to drop it and create it again in its database. */
interface ObjectDef {
  kind: 'VIEW' | 'PROCEDURE' | 'FUNCTION' | 'TRIGGER' | 'EVENT';
  name: string;
  create: string;
  sqlMode: string;
  charset: string;
  collation: string;
}

/**
 * What an undo needs: the swap databases and, from just before the swap's first change, the target's
 * base tables and its other objects as they were (undefined: the swap had not begun, so the target
 * was never touched and only the swap databases are left to drop).
 */
export interface Kept {
  runId: string;
  scratch: string;
  old: string;
  tables?: string[];
  objects?: ObjectDef[];
}

/** Tags the rows of readObjects' listing: `opsdeck-obj INDEX KIND HEX(NAME)`. */
const OBJ_TAG = 'opsdeck-obj';

const LIST = (q: string, i: number) => {
  const row = (kind: string, name: string) => `SELECT '${OBJ_TAG}', ${i}, ${kind}, HEX(${name})`;
  return `${row("'TABLE'", 'TABLE_NAME')} FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${q} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME;
${row("'VIEW'", 'TABLE_NAME')} FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ${q} ORDER BY TABLE_NAME;
${row('ROUTINE_TYPE', 'ROUTINE_NAME')} FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${q} ORDER BY ROUTINE_TYPE, ROUTINE_NAME;
${row("'TRIGGER'", 'TRIGGER_NAME')} FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${q} ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER;
${row("'EVENT'", 'EVENT_NAME')} FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${q} ORDER BY EVENT_NAME;`;
};

/**
 * Where SHOW CREATE puts the definition in its row (the character set and collation follow it), and
 * its sql_mode (a view has none): the same in MariaDB and MySQL.
 */
const SHOWN: Record<ObjectDef['kind'], { create: number; mode?: number }> = {
  VIEW: { create: 1 },
  PROCEDURE: { create: 2, mode: 1 },
  FUNCTION: { create: 2, mode: 1 },
  TRIGGER: { create: 2, mode: 1 },
  EVENT: { create: 3, mode: 1 },
};

/**
 * Base tables and the other objects of each database named, with their definitions (definers
 * dropped): two turns of one session, whatever their number.
 */
async function readObjects(talk: MysqlConversation, user: string, dbs: string[]): Promise<{ tables: string[]; objects: ObjectDef[] }[]> {
  // As a fresh session reads them: SHOW CREATE quotes names by the session's sql_mode (ANSI_QUOTES),
  // and an earlier turn (a redaction, the objects a swap created) may have changed it.
  const reset = 'SET SESSION sql_mode = DEFAULT, time_zone = DEFAULT;\nSET NAMES utf8mb4;\n';
  const rows = (await talk.ask(reset + dbs.map((db, i) => LIST(quoteString(db), i)).join('\n'))).map((l) => l.split('\t')).filter((r) => r[0] === OBJ_TAG);
  const listed = dbs.map((db, i) => {
    const mine = rows.filter((r) => r[1] === String(i)).map((r) => ({ kind: r[2] as ObjectDef['kind'] | 'TABLE', name: Buffer.from(r[3], 'hex').toString('utf8') }));
    const wanted = mine.filter((o): o is { kind: ObjectDef['kind']; name: string } => o.kind !== 'TABLE');
    return { db, tables: mine.filter((o) => o.kind === 'TABLE').map((o) => o.name), wanted };
  });
  // With each database in turn the session's own (USE, which answers nothing), SHOW CREATE names
  // its tables without the database, so a definition reads the same created in another database.
  // Each SHOW answers one row, one line.
  const shows = listed.filter((l) => l.wanted.length).map((l) => [`USE ${quoteName(l.db)};`, ...l.wanted.map((w) => `SHOW CREATE ${w.kind} ${quoteName(w.name)};`)].join('\n'));
  const shown = shows.length ? (await talk.ask(shows.join('\n'))).map((l) => l.split('\t')) : [];
  let at = 0;
  return listed.map(({ db, tables, wanted }) => {
    const objects = wanted.map((w): ObjectDef => {
      const row = shown[at++] ?? [];
      const col = SHOWN[w.kind];
      const create = row[col.create];
      // NULL: the account may not read it (a routine of another definer without SHOW CREATE ROUTINE).
      if (create === undefined || create === 'NULL') throw new OpsError(`account ${user} cannot read the definition of ${w.kind.toLowerCase()} ${db}.${w.name}`);
      return {
        kind: w.kind,
        name: w.name,
        create: unescapeField(create).replace(DEFINER_RE, ''),
        sqlMode: col.mode === undefined ? '' : unescapeField(row[col.mode]),
        charset: unescapeField(row[col.create + 1] ?? 'utf8mb4'),
        collation: unescapeField(row[col.create + 2] ?? 'utf8mb4_general_ci'),
      };
    });
    return { tables, objects: orderViews(objects) };
  });
}

/** Views after the views they name, so each is created after what it reads. */
function orderViews(objects: ObjectDef[]): ObjectDef[] {
  const views = objects.filter((o) => o.kind === 'VIEW');
  const done: ObjectDef[] = [];
  const visit = (v: ObjectDef, path: Set<string>) => {
    if (done.includes(v) || path.has(v.name)) return;
    path.add(v.name);
    for (const w of views) if (w !== v && v.create.includes(quoteName(w.name))) visit(w, path);
    done.push(v);
  };
  for (const v of views) visit(v, new Set());
  return [...done, ...objects.filter((o) => o.kind !== 'VIEW')];
}

const DELIM = '$$opsdeck$$';

function dropSql(db: string, o: { kind: ObjectDef['kind']; name: string }): string {
  return `DROP ${o.kind} IF EXISTS ${quoteName(db)}.${quoteName(o.name)}${DELIM}`;
}

function createSql(o: ObjectDef): string {
  return `SET SESSION sql_mode = ${quoteString(o.sqlMode)}, character_set_client = ${quoteString(o.charset)}, collation_connection = ${quoteString(o.collation)}${DELIM}\n${o.create}${DELIM}`;
}

function rename(pairs: [string, string][]): string {
  return pairs.length ? `RENAME TABLE ${pairs.map(([a, b]) => `${a} TO ${b}`).join(', ')}${DELIM}` : '';
}

/** A script of statements ended by DELIM, run on `db` (the session's own from here on). */
function script(db: string, lines: string[]): string {
  return [`USE ${quoteName(db)};`, `DELIMITER ${DELIM}`, ...lines.filter(Boolean), 'DELIMITER ;'].join('\n') + '\n';
}

/**
 * The sessions of swaps this process made, by run id, still open for the run's end: dropKept and
 * swapBack take theirs from here (one turn, no login), or open one when there is none (another
 * process's run: opsdeck recover).
 */
const swapSessions = new Map<string, MysqlConversation>();

/** The open session of run `runId`'s swap, taken (its user ends it); undefined when there is none alive. */
function swapSession(runId: string): MysqlConversation | undefined {
  const talk = swapSessions.get(runId);
  swapSessions.delete(runId);
  return talk && !talk.over ? talk : undefined;
}

/** A swap that failed part-way and could not be put back: the target may be half-swapped until an undo (putBack) or recover. */
export class SwapNotUndone extends OpsError {}

/**
 * Swaps the loaded scratch database in, on `talk` (the load's own session, its dump in whole): reads
 * both databases' objects, tells `keep` what an undo needs before the first change is sent (awaited:
 * a crash from then on can still be swapped back), then in one script moves every table at once (one
 * RENAME TABLE: the target's tables to the old-table database, the scratch's into the target),
 * replaces the target's views, routines, triggers and events by the load's and drops the scratch
 * database. Returns what an undo needs; the session stays open for the run's end (swapSessions). A
 * swap that fails part-way is swapped back before this rejects; should that fail too, it rejects
 * with SwapNotUndone.
 */
export async function swapIn(s: MysqlSession, runId: string, talk: MysqlConversation, keep?: (kept: Kept) => Promise<void>): Promise<Kept> {
  const { scratch, old } = swapNames(s.t, runId);
  const T = quoteName(s.t.database);
  const [before, loaded] = await readObjects(talk, s.t.user, [s.t.database, scratch]);
  const kept: Kept = { runId, scratch, old, tables: before.tables, objects: before.objects };
  await keep?.(kept);
  // A swap stopped half-way by a cancel would only leave an undo to do: it runs to its end.
  talk.shield();
  const failed = await talk
    .ask(
      script(s.t.database, [
        `CREATE DATABASE ${quoteName(old)}${DELIM}`,
        // A table with triggers cannot move to another database.
        ...before.objects.filter((o) => o.kind === 'TRIGGER').map((o) => dropSql(s.t.database, o)),
        ...loaded.objects.filter((o) => o.kind === 'TRIGGER').map((o) => dropSql(scratch, o)),
        rename([
          ...before.tables.map((t): [string, string] => [`${T}.${quoteName(t)}`, `${quoteName(old)}.${quoteName(t)}`]),
          ...loaded.tables.map((t): [string, string] => [`${quoteName(scratch)}.${quoteName(t)}`, `${T}.${quoteName(t)}`]),
        ]),
        ...before.objects.filter((o) => o.kind !== 'TRIGGER').map((o) => dropSql(s.t.database, o)),
        ...loaded.objects.map(createSql),
        // What is left there is the load's views and routines, now the target's: only the old tables stay.
        `DROP DATABASE ${quoteName(scratch)}${DELIM}`,
      ]),
    )
    .then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    );
  if (!failed) {
    // The session stays open for what the run does with the old tables at its end (dropKept, or
    // putBack in an undo): one turn then instead of a login.
    swapSessions.set(runId, talk);
    return kept;
  }
  try {
    await swapBack(s, kept);
  } catch (err) {
    throw new SwapNotUndone(
      `the swap into ${s.t.database} failed (${failed.message}) and putting the old tables back failed too (${(err as Error).message}): they are kept in ${old}`,
      1,
      "when the database answers again, the run's undo or opsdeck recover swaps them back",
    );
  }
  throw failed;
}

/**
 * Whether swapBack can put the target back exactly from what the swap kept: the old tables all in
 * the old-table database (the RENAME happened), or all still in the target and none moved (it did
 * not). False when some are missing from both, or the record is from before the swap began.
 */
export async function keptIntact(s: MysqlSession, kept: Kept): Promise<boolean> {
  if (!kept.tables) return true;
  const q = `SELECT TABLE_SCHEMA, HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (${[s.t.database, kept.old].map(quoteString).join(', ')}) AND TABLE_TYPE = 'BASE TABLE';`;
  const where = new Map<string, string[]>([
    [s.t.database, []],
    [kept.old, []],
  ]);
  for (const line of (await sql(s, q)).split('\n').filter(Boolean)) {
    const [db, hex] = line.split('\t');
    where.get(db)?.push(Buffer.from(hex, 'hex').toString('utf8'));
  }
  const old = new Set(where.get(kept.old));
  const inTarget = new Set(where.get(s.t.database));
  if (old.size) return old.size === kept.tables.length && kept.tables.every((t) => old.has(t));
  return kept.tables.every((t) => inTarget.has(t));
}

/**
 * Puts the target back as it was before swapIn (an undo): its current tables out to the scratch
 * database, the old tables back, in one RENAME TABLE; its objects as they were; both swap databases
 * dropped. Safe to run again, and after a swap that stopped anywhere (even before its RENAME, or
 * before it began: then only the swap databases go).
 */
export async function swapBack(s: MysqlSession, kept: Kept): Promise<void> {
  if (!kept.objects) return dropKept(s, kept);
  const T = quoteName(s.t.database);
  const talk = swapSession(kept.runId) ?? new MysqlConversation(s);
  try {
    const [now, atOld] = await readObjects(talk, s.t.user, [s.t.database, kept.old]);
    // The old tables went out whole in one statement: when there are any (or the target had none),
    // every table now here is the load's.
    const swapped = atOld.tables.length > 0 || kept.tables?.length === 0;
    const res = await talk.end(
      script(s.t.database, [
        `CREATE DATABASE IF NOT EXISTS ${quoteName(kept.scratch)}${DELIM}`,
        ...now.objects.map((o) => dropSql(s.t.database, o)),
        ...(swapped
          ? [
              rename([
                ...now.tables.map((t): [string, string] => [`${T}.${quoteName(t)}`, `${quoteName(kept.scratch)}.${quoteName(t)}`]),
                ...atOld.tables.map((t): [string, string] => [`${quoteName(kept.old)}.${quoteName(t)}`, `${T}.${quoteName(t)}`]),
              ]),
            ]
          : []),
        ...kept.objects.map((o) => dropSql(s.t.database, o)),
        ...kept.objects.map(createSql),
        `DROP DATABASE IF EXISTS ${quoteName(kept.scratch)}${DELIM}`,
        `DROP DATABASE IF EXISTS ${quoteName(kept.old)}${DELIM}`,
      ]),
    );
    if (res.code !== 0) throw new CommandError(s.shell.label, ['mariadb'], res);
  } finally {
    // A turn that failed left the session waiting for input: it ends here, having changed nothing.
    await talk.end().catch(() => {});
  }
}

/** Drops what a swap kept for its undo (the old tables), once the run no longer needs them. */
export async function dropKept(s: MysqlSession, kept: Kept): Promise<void> {
  const drop = [kept.scratch, kept.old].map((d) => `DROP DATABASE IF EXISTS ${quoteName(d)};`).join('\n');
  const res = await swapSession(kept.runId)
    ?.end(drop)
    .catch(() => undefined);
  if (res?.code !== 0) await sql(s, drop + '\n');
}
