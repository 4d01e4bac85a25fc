import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { OpsError, UsageError } from '../src/core/errors.js';
import type { Dialect, Param, RunResult, SqlDriver, Statement } from './driver.js';
import type pg from 'pg';
import { newClient } from './pg-client.js';
import type { Answer, Op, Reply } from './pg-worker.js';
import { PG_GRANTS, PG_MIGRATIONS, PG_SCHEMA } from './pg-migrations.js';
import { PG_CHANGES_GRANTS, PG_RIGHTS_GRANTS } from './pg-rights.js';
import { checkRoleNames, PG_TEAM_ROLES_GRANTS, teamRoleNames, withRoles, type TeamRoles } from './pg-team-roles.js';

const dialect: Dialect = { name: 'postgres', insertOrder: 'id' };

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

/**
 * The worker's compiled file: beside this one; under inventory/ when this code is in the console's
 * bundle; in dist/ when this is the TypeScript source (the tests import it). Its bundle
 * (build/bundle.mjs) while that is newer than tsc's output, as bin/opsdeck chooses: pg as one file,
 * without the Cloudflare probe that loads Node's HTTP client, is most of the worker's start-up.
 */
function workerFile(): string {
  for (const rel of ['./pg-worker.js', './inventory/pg-worker.js', '../dist/inventory/pg-worker.js']) {
    const f = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(f)) continue;
    const bundle = f.replace(/\.js$/, '.bundle.mjs');
    try {
      if (statSync(bundle).mtimeMs >= statSync(f).mtimeMs) return bundle;
    } catch {
      // No bundle built: the module.
    }
    return f;
  }
  throw new OpsError('the PostgreSQL inventory worker (dist/inventory/pg-worker.js) is missing', 1, 'build opsdeck again: npm run build');
}

/**
 * A query the server refused, with its SQLSTATE (42501: not allowed, e.g. by row-level security or a
 * grant: exit 2 like any refusal; P0001: raised by a trigger).
 */
export class PgError extends OpsError {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message, code === '42501' ? 2 : 1);
    this.name = 'PgError';
  }
}

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The worker thread and its port, for one connection. Requests carry ids and may be posted several
 * at a time; take() sleeps until its own reply, keeping the ones that came before it for their takers.
 */
class WorkerLink {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag: Int32Array;
  private next = 1;
  /** Ids whose replies someone will take, and replies that came before their taker asked. */
  private readonly wanted = new Set<number>();
  private readonly kept = new Map<number, Reply>();
  /** Named statements are per connection: the same name for the same text, whoever posts it. */
  private readonly names = new Map<string, { name: string; text: string }>();
  stopped = false;

  constructor() {
    this.flag = new Int32Array(new SharedArrayBuffer(4));
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    // execArgv: [] so that the process's own flags (node -e, --input-type) do not reach the worker's loader.
    this.worker = new Worker(workerFile(), { workerData: { counter: this.flag.buffer, port: port2 }, transferList: [port2], execArgv: [] });
    // The process may end while the connection is open (cron, a crash): the server then drops the
    // session and its locks; the worker must not keep the process alive.
    this.worker.unref();
  }

  send(op: Op): number {
    const id = this.next++;
    this.wanted.add(id);
    this.port.postMessage({ ...op, id });
    return id;
  }

  query(sql: string, params: Param[]): Op {
    let named = this.names.get(sql);
    if (!named) {
      named = { name: `opsdeck_${this.names.size + 1}`, text: numberPlaceholders(sql) };
      this.names.set(sql, named);
    }
    return { op: 'query', name: named.name, sql: named.text, params };
  }

  forget(id: number): void {
    this.wanted.delete(id);
    this.kept.delete(id);
  }

  take(id: number, where: string, limitMs = 300_000): Reply {
    // A port that is closed never answers: without this a late caller would block the thread for limitMs.
    if (this.stopped) throw new OpsError(`the inventory at ${where} is closed`);
    const deadline = Date.now() + limitMs;
    for (;;) {
      const kept = this.kept.get(id);
      if (kept) {
        this.forget(id);
        return kept;
      }
      // Read before looking at the port: a reply posted after the look changes it, and the wait returns.
      const before = Atomics.load(this.flag, 0);
      const got = receiveMessageOnPort(this.port)?.message as Reply | undefined;
      if (got) {
        if (got.id === id) {
          this.wanted.delete(id);
          return got;
        }
        if (this.wanted.has(got.id)) this.kept.set(got.id, got);
        continue;
      }
      Atomics.wait(this.flag, 0, before, 1000);
      if (Date.now() > deadline) throw new OpsError(`the inventory at ${where} did not answer within ${Math.round(limitMs / 1000)} s`);
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.port.close();
    void this.worker.terminate();
  }
}

/** What opening a connection posts, all at once: the log-in, the search path, the schema's version. */
interface Opening {
  connect: number;
  searchPath: number;
  /** The schema check (absent for team init, which makes the schema, and after a first connection checked it). */
  hasSchema?: number;
  version?: number;
}

const HAS_SCHEMA_SQL = `SELECT to_regclass('${PG_SCHEMA}.schema_version') IS NOT NULL AS ok`;
const VERSION_SQL = 'SELECT max(version) AS v FROM schema_version';
const SEARCH_PATH_SQL = `SET search_path = ${PG_SCHEMA}, pg_catalog`;

function open(link: WorkerLink, target: PgTarget, password: string | undefined, connectTimeoutMs: number, checkSchema: boolean): Opening {
  const connect = link.send({ op: 'connect', config: { ...target, password, connectTimeoutMs } });
  const searchPath = link.send({ op: 'exec', sql: SEARCH_PATH_SQL });
  if (!checkSchema) return { connect, searchPath };
  // The version is asked for before the answer on the schema is in: when there is none, its error goes unread.
  return { connect, searchPath, hasSchema: link.send(link.query(HAS_SCHEMA_SQL, [])), version: link.send(link.query(VERSION_SQL, [])) };
}

const failed = (err: unknown): Answer => ({ ok: false, message: (err as Error).message, code: (err as { code?: string }).code });
const readKey = (sql: string, params: Param[]) => (params.length ? `${sql}\n${JSON.stringify(params)}` : sql);

/**
 * The console's first connection, on the main thread with pg's asynchronous client: it logs in and
 * reads what the first frame shows while the console's modules load, without a worker thread (whose
 * start-up, some 100 ms of CPU under load, came before the first frame). The PgDriver opened on it
 * answers those reads from here; its first other query starts the worker, the connection the rest
 * of the session uses, and this one is closed.
 */
class FirstConnection {
  private client: pg.Client | undefined;
  /** The log-in's failure; else the schema check's two answers. */
  opened: { ok: false; answer: Answer } | { ok: true; hasSchema: Answer; version: Answer } | undefined;
  /** Rows read, by SQL (and parameters): each taken once. */
  readonly reads = new Map<string, Answer>();
  /** Settled once logged in and the reads are in (or failed): never rejects. */
  readonly done: Promise<void>;
  settled = false;
  private loggedInNow = () => {};
  /** Settled once logged in (or failed to): never rejects. */
  readonly loggedIn = new Promise<void>((resolve) => (this.loggedInNow = resolve));

  constructor(
    lib: Promise<typeof pg>,
    readonly target: PgTarget,
    readonly password: string | undefined,
    reads: string[],
  ) {
    this.done = this.run(lib, reads).finally(() => {
      this.settled = true;
    });
  }

  private async run(lib: Promise<typeof pg>, reads: string[]): Promise<void> {
    let client: pg.Client;
    try {
      client = newClient(await lib, { ...this.target, password: this.password, connectTimeoutMs: CONNECT_TIMEOUT_MS });
      this.client = client;
      await client.connect();
    } catch (err) {
      this.opened = { ok: false, answer: failed(err) };
      this.end();
      return;
    } finally {
      this.loggedInNow();
    }
    // Statements sent as one (the simple protocol): their results in order.
    const many = async (sql: string[]): Promise<pg.QueryResult[]> => {
      const r = (await client.query(sql.join(';\n'))) as unknown as pg.QueryResult | pg.QueryResult[];
      return Array.isArray(r) ? r : [r];
    };
    const answer = (r: pg.QueryResult): Answer => ({ ok: true, rows: r.rows as Record<string, unknown>[], rowCount: r.rowCount ?? 0 });
    const one = (sql: string) => many([sql]).then((r) => answer(r[0]), failed);
    // pg sends a query once the one before is answered: two round trips, the second with every read
    // (a multi-statement query runs them in order; one failing stops the rest, which are then not kept).
    const hasSchema = await many([SEARCH_PATH_SQL, HAS_SCHEMA_SQL]).then((r) => answer(r[1]), failed);
    if (!hasSchema.ok || !hasSchema.rows[0]?.ok) {
      this.opened = { ok: true, hasSchema, version: hasSchema.ok ? { ok: false, message: 'no schema' } : hasSchema };
      return;
    }
    try {
      const results = await many([VERSION_SQL, ...reads]);
      this.opened = { ok: true, hasSchema, version: answer(results[0]) };
      reads.forEach((sql, i) => this.reads.set(sql, answer(results[i + 1])));
    } catch {
      // A read that failed is asked again by its caller, who then meets its error; the version alone here.
      this.opened = { ok: true, hasSchema, version: await one(VERSION_SQL) };
    }
  }

  /** Reads `sql` with `params` on this connection, for the first caller that asks the same. */
  async read(sql: string, params: Param[]): Promise<void> {
    if (!this.client || this.opened?.ok !== true) return;
    try {
      const r = await this.client.query(numberPlaceholders(sql), params);
      this.reads.set(readKey(sql, params), { ok: true, rows: r.rows as Record<string, unknown>[], rowCount: r.rowCount ?? 0 });
    } catch {
      // Asked again by its caller, who then meets its error.
    }
  }

  end(): void {
    this.reads.clear();
    const c = this.client;
    this.client = undefined;
    // Nothing is held on this session; its end is not waited for.
    c?.end().catch(() => undefined);
  }
}

/** The console's connection started before the inventory is opened (startInventoryAhead), for it to adopt. */
let started: { lib: Promise<typeof pg>; target: PgTarget; where: string; first?: FirstConnection } | undefined;

/**
 * Starts loading pg now, so that it loads while the caller (the console) loads the rest of the
 * program; then loginAhead once the password is known, and inventoryAhead() before opening the
 * inventory: the PgDriver opened then for the same target and password adopts that connection.
 * Never throws: opening the inventory says what is wrong.
 */
export function startInventoryAhead(url: string): void {
  try {
    const target = parseInventoryUrl(url);
    started?.first?.end();
    const lib = import('pg').then((m) => m.default);
    // Awaited by the log-in; a failure to load is met there (or by the worker) in words.
    lib.catch(() => undefined);
    started = { lib, target, where: formatTarget(target) };
  } catch {
    started = undefined;
  }
}

/**
 * Logs the connection started ahead in (undefined: ~/.pgpass or none), checks the schema and reads
 * `reads` (queries without parameters), without waiting: the first that asks the same takes them.
 */
export function loginAhead(password: string | undefined, reads: string[] = []): void {
  if (!started || started.first) return;
  started.first = new FirstConnection(started.lib, started.target, password, reads);
}

/** Settles once the connection started ahead has logged in (or failed to). Never rejects. */
export async function inventoryLoggedIn(): Promise<void> {
  await started?.first?.loggedIn;
}

/** Settles once the connection started ahead has logged in and read (or failed to): the inventory opened after it adopts it. Never rejects. */
export async function inventoryAhead(): Promise<void> {
  await started?.first?.done;
}

/** The connection started ahead, when it is for this target and password and has settled; else it is closed. */
function adopt(target: PgTarget, password: string | undefined, connectTimeoutMs: number, forInit: boolean): FirstConnection | undefined {
  const s = started;
  started = undefined;
  const first = s?.first;
  if (!first) return undefined;
  if (first.settled && s.where === formatTarget(target) && first.password === password && connectTimeoutMs === CONNECT_TIMEOUT_MS && !forInit) return first;
  first.end();
  return undefined;
}

/**
 * The team inventory: a schema `opsdeck` in a PostgreSQL database of the team's, reached with pg from
 * a worker thread and called synchronously. One connection per process: it holds the instance locks.
 * (The console's first frame is read over a connection of the main thread's before that one: see FirstConnection.)
 */
export class PgDriver implements SqlDriver {
  readonly dialect = dialect;
  readonly where: string;
  private worker: WorkerLink | undefined;
  /** The connection the first frame was read on, until anything else is asked. */
  private first: FirstConnection | undefined;
  private statements = new Map<string, Statement>();
  private depth = 0;
  private readonly timeoutMs: number;

  /** `forInit`: team init, which makes the schema; everyone else needs it there and up to date. */
  constructor(
    private readonly target: PgTarget,
    private readonly password: string | undefined,
    opts: { connectTimeoutMs?: number; forInit?: boolean } = {},
  ) {
    this.where = formatTarget(target);
    this.timeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const first = adopt(target, password, this.timeoutMs, !!opts.forInit);
    if (first?.opened) {
      try {
        if (!first.opened.ok) throw connectError(this.where, target, password, first.opened.answer);
        this.checkSchema(target, first.opened.hasSchema, first.opened.version);
      } catch (err) {
        first.end();
        throw err;
      }
      this.first = first;
      return;
    }
    first?.end();
    this.worker = this.start(!opts.forInit);
  }

  /** The worker thread's connection: logged in, its search path set, and (`checkSchema`) the schema checked. */
  private start(checkSchema: boolean): WorkerLink {
    const link = new WorkerLink();
    const opening = open(link, this.target, this.password, this.timeoutMs, checkSchema);
    try {
      // A worker that cannot even start never answers: the connect waits no longer than its own limit, and then some.
      const r = link.take(opening.connect, this.where, this.timeoutMs + 15_000);
      if (!r.ok) throw connectError(this.where, this.target, this.password, r);
      this.rows(link.take(opening.searchPath, this.where));
      if (opening.hasSchema !== undefined && opening.version !== undefined) {
        const hasSchema = link.take(opening.hasSchema, this.where);
        this.checkSchema(this.target, hasSchema, link.take(opening.version, this.where));
      }
    } catch (err) {
      link.stop();
      throw err;
    }
    return link;
  }

  /** The worker's connection, started at the first question the first connection did not read ahead (which then ends). */
  private link(): WorkerLink {
    if (this.first) {
      this.first.end();
      this.first = undefined;
    }
    // The schema was checked by the first connection.
    this.worker ??= this.start(false);
    return this.worker;
  }

  private rows(r: Answer): { rows: Record<string, unknown>[]; rowCount: number } {
    if (!r.ok) throw new PgError(r.message, r.code);
    return r;
  }

  private query(sql: string, params: Param[]): { rows: Record<string, unknown>[]; rowCount: number } {
    const key = readKey(sql, params);
    const ahead = this.first?.reads.get(key);
    if (ahead) {
      this.first!.reads.delete(key);
      return this.rows(ahead);
    }
    const link = this.link();
    return this.rows(link.take(link.send(link.query(sql, params)), this.where));
  }

  /**
   * Reads `sql` with `params` on the first connection while it is open (the console: a read of its
   * first frame that needs the opened inventory to be known), for the first that asks the same.
   */
  async readAhead(sql: string, params: Param[]): Promise<void> {
    await this.first?.read(sql, params);
  }

  prepare(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = {
        all: (...p: Param[]) => this.query(sql, p).rows,
        get: (...p: Param[]) => this.query(sql, p).rows[0],
        run: (...p: Param[]): RunResult => ({ changes: this.query(sql, p).rowCount }),
      };
      this.statements.set(sql, st);
    }
    return st;
  }

  exec(sql: string): void {
    const link = this.link();
    this.rows(link.take(link.send({ op: 'exec', sql }), this.where));
  }

  transaction<T>(fn: () => T): () => T {
    return () => {
      const sp = `opsdeck_sp${this.depth}`;
      this.exec(this.depth === 0 ? 'BEGIN' : `SAVEPOINT ${sp}`);
      this.depth++;
      try {
        const out = fn();
        this.depth--;
        this.exec(this.depth === 0 ? 'COMMIT' : `RELEASE SAVEPOINT ${sp}`);
        return out;
      } catch (err) {
        this.depth--;
        this.exec(this.depth === 0 ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${sp}`);
        throw err;
      }
    };
  }

  close(): void {
    this.first?.end();
    this.first = undefined;
    if (!this.worker) return;
    this.worker.take(this.worker.send({ op: 'end' }), this.where);
    this.worker.stop();
  }

  /** The schema's version, or null when there is none (team init not run on this database). */
  schemaVersion(): number | null {
    const has = this.prepare(HAS_SCHEMA_SQL).get() as { ok: boolean };
    if (!has.ok) return null;
    return (this.prepare(VERSION_SQL).get() as { v: number | null }).v ?? 0;
  }

  /** The schema's version from opening's two answers, checked against this opsdeck's. */
  private checkSchema(t: PgTarget, hasSchema: Answer, version: Answer): void {
    let v: number | null;
    try {
      const has = this.rows(hasSchema).rows[0] as { ok: boolean };
      v = has.ok ? ((this.rows(version).rows[0] as { v: number | null }).v ?? 0) : null;
    } catch (err) {
      // No USAGE on the schema: the role is not one of this inventory's operators.
      if (err instanceof PgError && err.code === '42501')
        throw new OpsError(
          `role ${t.user} may not use the inventory at ${this.where}: ${err.message}`,
          2,
          `ask its team admin to make it an operator there: GRANT ${teamRoleNames(t.database).user} TO ${t.user};`,
        );
      throw err;
    }
    if (v === null) {
      throw new OpsError(
        `the database ${t.database} at ${t.host}:${t.port} holds no opsdeck inventory (no schema ${PG_SCHEMA})`,
        1,
        `create it once, as a role that may create schemas and roles: opsdeck team init --inventory ${this.where}`,
      );
    }
    if (v !== PG_MIGRATIONS.length) {
      throw new OpsError(
        v < PG_MIGRATIONS.length
          ? `the inventory at ${this.where} is at schema version ${v}; this opsdeck needs ${PG_MIGRATIONS.length}`
          : `the inventory at ${this.where} is at schema version ${v}, newer than this opsdeck knows (${PG_MIGRATIONS.length})`,
        1,
        v < PG_MIGRATIONS.length ? `upgrade it, as the schema's owner: opsdeck team init --inventory ${this.where}` : 'upgrade opsdeck on this machine',
      );
    }
  }

  /** This inventory's group roles (team_roles), or null before team init made them. */
  teamRoles(): TeamRoles | null {
    const has = this.prepare(`SELECT to_regclass('${PG_SCHEMA}.team_roles') IS NOT NULL AS ok`).get() as { ok: boolean };
    if (!has.ok) return null;
    const r = this.prepare(`SELECT user_role, admin_role FROM ${PG_SCHEMA}.team_roles`).get() as { user_role: string; admin_role: string } | undefined;
    return r ? { user: r.user_role, admin: r.admin_role } : null;
  }

  /**
   * team init: the inventory's group roles, the schema, its migrations and the grants to the user
   * role, in one transaction; two running at once take turns (an advisory lock), the second finding
   * nothing to do. Returns the versions before and after, and the roles.
   */
  init(): { from: number; to: number; roles: TeamRoles } {
    return this.transaction(() => {
      this.exec(`SELECT pg_advisory_xact_lock(hashtext('opsdeck team init'))`);
      const made = this.teamRoles();
      const roles = made ?? teamRoleNames((this.prepare('SELECT current_database() AS db').get() as { db: string }).db);
      checkRoleNames(roles);
      for (const role of [roles.user, roles.admin]) {
        const found = this.prepare('SELECT (SELECT count(*) FROM pg_auth_members m WHERE m.roleid = r.oid) AS members FROM pg_roles r WHERE r.rolname = ?').get(role) as
          { members: number } | undefined;
        // Roles are the cluster's: one with members that this inventory did not make belongs to another
        // database of a name that maps to the same (or one dropped since); its members must not get in here.
        if (found && !made && Number(found.members) > 0)
          throw new OpsError(
            `the role ${role} exists already, with members, and is not this inventory's: another inventory's (a database whose name gives the same role names), or one dropped since`,
            1,
            `if no inventory uses it: DROP ROLE ${role}; then run team init again`,
          );
        if (!found) this.exec(`CREATE ROLE ${role} NOLOGIN`);
      }
      this.exec(`CREATE SCHEMA IF NOT EXISTS ${PG_SCHEMA}`);
      this.exec(`CREATE TABLE IF NOT EXISTS ${PG_SCHEMA}.schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_by TEXT NOT NULL DEFAULT session_user)`);
      const from = this.schemaVersion() ?? 0;
      for (let v = from; v < PG_MIGRATIONS.length; v++) {
        this.exec(withRoles(PG_MIGRATIONS[v], roles));
        this.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v + 1);
      }
      for (const grants of [PG_GRANTS, PG_RIGHTS_GRANTS, PG_CHANGES_GRANTS, PG_TEAM_ROLES_GRANTS]) this.exec(withRoles(grants, roles));
      return { from, to: PG_MIGRATIONS.length, roles };
    })();
  }
}

function connectError(where: string, t: PgTarget, password: string | undefined, r: Answer): OpsError {
  if (r.ok) return new OpsError(`cannot open the inventory at ${where}`, 1);
  const pwHint = 'give the password in OPSDECK_INVENTORY_PASSWORD, --inventory-password-file FILE (mode 600), or at the prompt';
  if (r.code === '28P01' || /password authentication failed/.test(r.message))
    return new OpsError(`cannot log in to the inventory at ${where}: wrong password for role ${t.user} (or no such role)`, 1, pwHint);
  if (!password && /password|SASL/i.test(r.message)) return new OpsError(`the inventory at ${where} asks for a password for role ${t.user} and none was given`, 1, pwHint);
  if (r.code === '3D000')
    return new OpsError(`the database ${t.database} does not exist on ${t.host}:${t.port}`, 1, `create it (createdb ${t.database}), then: opsdeck team init --inventory ${where}`);
  if (r.code === '28000') return new OpsError(`the server at ${t.host}:${t.port} refuses role ${t.user}: ${r.message}`, 1, 'ask its administrator for a pg_hba.conf entry and a role');
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|timeout/i.test(`${r.code} ${r.message}`))
    return new OpsError(`cannot reach the inventory at ${where}: ${r.message}`, 1, 'check the host and port in the inventory URL, and that PostgreSQL is running and reachable from here');
  return new OpsError(`cannot open the inventory at ${where}: ${r.message}`, 1);
}
