import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { OpsError } from '../src/core/errors.js';
import type { Dialect, Param, RunResult, SqlDriver, Statement } from './driver.js';
import { adopt, HAS_SCHEMA_SQL, readKey, SEARCH_PATH_SQL, VERSION_SQL, type FirstConnection } from './pg-first.js';
import type { Answer, Op, Reply } from './pg-worker.js';
import { PG_GRANTS, PG_MIGRATIONS, PG_SCHEMA } from './pg-migrations.js';
import { PG_CHANGES_GRANTS, PG_RIGHTS_GRANTS } from './pg-rights.js';
import { CONNECT_TIMEOUT_MS, formatTarget, numberPlaceholders, type PgTarget } from './pg-target.js';
import { checkRoleNames, PG_TEAM_ROLES_GRANTS, teamRoleNames, withRoles, type TeamRoles } from './pg-team-roles.js';

const dialect: Dialect = { name: 'postgres', insertOrder: 'id' };

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

function open(link: WorkerLink, target: PgTarget, password: string | undefined, connectTimeoutMs: number, checkSchema: boolean): Opening {
  const connect = link.send({ op: 'connect', config: { ...target, password, connectTimeoutMs } });
  const searchPath = link.send({ op: 'exec', sql: SEARCH_PATH_SQL });
  if (!checkSchema) return { connect, searchPath };
  // The version is asked for before the answer on the schema is in: when there is none, its error goes unread.
  return { connect, searchPath, hasSchema: link.send(link.query(HAS_SCHEMA_SQL, [])), version: link.send(link.query(VERSION_SQL, [])) };
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
