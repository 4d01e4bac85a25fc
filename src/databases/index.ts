/**
 * The database engines and the one way to pick one: by the URL's scheme (an instance's --db), or by
 * the kind a backup's manifest records. Everything outside src/databases/ imports this file (and the
 * types of engine.ts), never an engine's own modules.
 */
import { UsageError } from '../core/errors.js';
import type { Db, DbEngine, DbKind, DbTarget } from './engine.js';
import { mysqlEngine } from './mysql-engine.js';
import { postgresEngine } from './postgres-engine.js';

export type { AccessProblem, Db, DbEngine, DbHealth, DbKind, DbLoader, DbTarget, DumpRowCounter, DumpSource, TableDigest } from './engine.js';
export { LoadStopped } from './engine.js';

/**
 * Every engine opsdeck supports, one line each. A new engine is a module implementing DbEngine
 * (see postgres-engine.ts) and its line here; its kind joins the manifest's kind in inventory/.
 */
const ENGINES: readonly DbEngine[] = [postgresEngine, mysqlEngine];

const schemes = () => ENGINES.flatMap((e) => e.schemes.map((s) => `${s}://`)).join(', ');

/** The URL forms opsdeck takes, for help texts: "postgres://ROLE@HOST:PORT/DB". */
export function dbUrlForms(): string {
  return ENGINES.map((e) => e.urlForm).join(' or ');
}

/** The engine of a database URL, by its scheme; any other scheme is refused, naming those supported. */
export function engineFor(url: string): DbEngine {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  if (!m) {
    throw new UsageError(`invalid database URL ${JSON.stringify(url)}`, `write it as ${dbUrlForms()}`);
  }
  const scheme = m[1].toLowerCase();
  const engine = ENGINES.find((e) => e.schemes.includes(scheme));
  if (!engine) throw new UsageError(`unsupported database kind ${JSON.stringify(scheme)} in ${JSON.stringify(url)}`, `opsdeck supports ${schemes()}: ${ENGINES.map((e) => e.urlForm).join(', ')}`);
  return engine;
}

/** The engine that wrote a backup's dump (its manifest's kind) or owns a parsed target. */
export function engineOf(what: DbKind | DbTarget): DbEngine {
  const kind = typeof what === 'string' ? what : what.kind;
  const engine = ENGINES.find((e) => e.kind === kind);
  if (!engine) throw new UsageError(`this opsdeck knows no database engine ${JSON.stringify(kind)}`, `it supports ${schemes()}`);
  return engine;
}

/** Parses a database URL with its engine (a password or connection parameters in it are refused). */
export function parseDbUrl(url: string): DbTarget {
  return engineFor(url).parse(url);
}

/** A database URL as the inventory keeps it (the engine's own spelling, default port written out). */
export function normalizeDbUrl(url: string): string {
  const engine = engineFor(url);
  return engine.format(engine.parse(url));
}

/** An instance's database: its URL parsed by its engine, with the role's password. */
export function dbAt(url: string, password: string): Db {
  const engine = engineFor(url);
  return { engine, target: engine.parse(url), password };
}

/**
 * Why the probe of this database would refuse an `sql:` metric, by its engine's rules (MariaDB's
 * include named locks, SLEEP, INTO OUTFILE...), or null: `instance set` asks before it saves one.
 */
export function sqlMetricProblem(url: string, query: string): string | null {
  return engineFor(url).metricProblem(query);
}
