/**
 * The console's first connection to a team inventory: started before the inventory is opened (pg
 * loading beside the console's modules, the log-in and the first frame's reads on the main thread),
 * then adopted by the PgDriver opened for the same target and password (inventory/postgres.ts).
 */
import type pg from 'pg';
import type { Param } from './driver.js';
import { newClient } from './pg-client.js';
import { PG_SCHEMA } from './pg-migrations.js';
import { CONNECT_TIMEOUT_MS, formatTarget, numberPlaceholders, parseInventoryUrl, type PgTarget } from './pg-target.js';
import type { Answer } from './pg-worker.js';

export const HAS_SCHEMA_SQL = `SELECT to_regclass('${PG_SCHEMA}.schema_version') IS NOT NULL AS ok`;
export const VERSION_SQL = 'SELECT max(version) AS v FROM schema_version';
export const SEARCH_PATH_SQL = `SET search_path = ${PG_SCHEMA}, pg_catalog`;

export const failed = (err: unknown): Answer => ({ ok: false, message: (err as Error).message, code: (err as { code?: string }).code });
export const readKey = (sql: string, params: Param[]) => (params.length ? `${sql}\n${JSON.stringify(params)}` : sql);

/**
 * The console's first connection, on the main thread with pg's asynchronous client: it logs in and
 * reads what the first frame shows while the console's modules load, without a worker thread (whose
 * start-up, some 100 ms of CPU under load, came before the first frame). The PgDriver opened on it
 * answers those reads from here; its first other query starts the worker, the connection the rest
 * of the session uses, and this one is closed.
 */
export class FirstConnection {
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
export function adopt(target: PgTarget, password: string | undefined, connectTimeoutMs: number, forInit: boolean): FirstConnection | undefined {
  const s = started;
  started = undefined;
  const first = s?.first;
  if (!first) return undefined;
  if (first.settled && s.where === formatTarget(target) && first.password === password && connectTimeoutMs === CONNECT_TIMEOUT_MS && !forInit) return first;
  first.end();
  return undefined;
}
