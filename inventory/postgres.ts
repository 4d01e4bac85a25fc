import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { OpsError, UsageError } from '../src/core/errors.js';
import type { Dialect, Param, RunResult, SqlDriver, Statement } from './driver.js';
import type { Reply, Request, WorkerConfig } from './pg-worker.js';
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

/**
 * The team inventory: a schema `opsdeck` in a PostgreSQL database of the team's, reached with pg from
 * a worker thread and called synchronously. One connection per process: it holds the instance locks.
 */
export class PgDriver implements SqlDriver {
  readonly dialect = dialect;
  readonly where: string;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag: Int32Array;
  private readonly names = new Map<string, { name: string; text: string }>();
  private statements = new Map<string, Statement>();
  private depth = 0;

  /** `forInit`: team init, which makes the schema; everyone else needs it there and up to date. */
  constructor(target: PgTarget, password: string | undefined, opts: { connectTimeoutMs?: number; forInit?: boolean } = {}) {
    this.where = formatTarget(target);
    const counter = new SharedArrayBuffer(4);
    this.flag = new Int32Array(counter);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const config: WorkerConfig = { ...target, password, connectTimeoutMs: opts.connectTimeoutMs ?? 10_000 };
    // execArgv: [] so that the process's own flags (node -e, --input-type) do not reach the worker's loader.
    this.worker = new Worker(workerFile(), { workerData: { counter, port: port2, config }, transferList: [port2], execArgv: [] });
    // The process may end while the connection is open (cron, a crash): the server then drops the
    // session and its locks; the worker must not keep the process alive.
    this.worker.unref();
    // A worker that cannot even start never answers: the connect waits no longer than its own limit, and then some.
    let r: Reply;
    try {
      r = this.call({ op: 'connect' }, config.connectTimeoutMs + 15_000);
    } catch (err) {
      this.stop();
      throw err;
    }
    if (!r.ok) {
      this.stop();
      throw connectError(this.where, target, password, r);
    }
    this.exec(`SET search_path = ${PG_SCHEMA}, pg_catalog`);
    if (!opts.forInit) this.checkSchema(target);
  }

  private call(m: Request, limitMs = 300_000): Reply {
    // A port that is closed never answers: without this a late caller would block the thread for limitMs.
    if (this.stopped) throw new OpsError(`the inventory at ${this.where} is closed`);
    const before = Atomics.load(this.flag, 0);
    this.port.postMessage(m);
    const deadline = Date.now() + limitMs;
    for (;;) {
      Atomics.wait(this.flag, 0, before, 1000);
      const got = receiveMessageOnPort(this.port);
      if (got) return got.message as Reply;
      if (Date.now() > deadline) throw new OpsError(`the inventory at ${this.where} did not answer within ${Math.round(limitMs / 1000)} s`);
    }
  }

  private query(sql: string, params: Param[]): { rows: Record<string, unknown>[]; rowCount: number } {
    let named = this.names.get(sql);
    if (!named) {
      named = { name: `opsdeck_${this.names.size + 1}`, text: numberPlaceholders(sql) };
      this.names.set(sql, named);
    }
    const r = this.call({ op: 'query', name: named.name, sql: named.text, params });
    if (!r.ok) throw new PgError(r.message, r.code);
    return r;
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
    const r = this.call({ op: 'exec', sql });
    if (!r.ok) throw new PgError(r.message, r.code);
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
    this.call({ op: 'end' });
    this.stop();
  }

  private stopped = false;
  private stop(): void {
    this.stopped = true;
    this.port.close();
    void this.worker.terminate();
  }

  /** The schema's version, or null when there is none (team init not run on this database). */
  schemaVersion(): number | null {
    const has = this.prepare(`SELECT to_regclass('${PG_SCHEMA}.schema_version') IS NOT NULL AS ok`).get() as { ok: boolean };
    if (!has.ok) return null;
    return (this.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null }).v ?? 0;
  }

  private checkSchema(t: PgTarget): void {
    let v: number | null;
    try {
      v = this.schemaVersion();
    } catch (err) {
      this.stop();
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
      this.stop();
      throw new OpsError(
        `the database ${t.database} at ${t.host}:${t.port} holds no opsdeck inventory (no schema ${PG_SCHEMA})`,
        1,
        `create it once, as a role that may create schemas and roles: opsdeck team init --inventory ${this.where}`,
      );
    }
    if (v !== PG_MIGRATIONS.length) {
      this.stop();
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

function connectError(where: string, t: PgTarget, password: string | undefined, r: Extract<Reply, { ok: false }>): OpsError {
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
