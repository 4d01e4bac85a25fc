/**
 * The one SQL interface the inventory talks to: SQLite (better-sqlite3, in the home) or PostgreSQL
 * (node-postgres in a worker thread, a team's shared inventory). Both are synchronous: the engine,
 * the actions, the CLI and the console call the inventory synchronously everywhere.
 * SQL is written with `?` placeholders and in the subset both accept; what differs is in `Dialect`.
 */
export type Param = string | number | bigint | null | Buffer | Uint8Array;

export interface RunResult {
  changes: number;
}

export interface Statement {
  all(...params: Param[]): unknown[];
  get(...params: Param[]): unknown;
  run(...params: Param[]): RunResult;
}

/** The few places the two databases need different SQL, in one place each. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** The column that orders rows as they were inserted. */
  readonly insertOrder: string;
}

export interface SqlDriver {
  readonly dialect: Dialect;
  /** Where the inventory lives, for people: a file, or postgres://ROLE@HOST:PORT/DB. */
  readonly where: string;
  /** A statement, compiled once and kept (the panels ask the same few questions thousands of times a minute). */
  prepare(sql: string): Statement;
  /** Statements without parameters, several at once (migrations). */
  exec(sql: string): void;
  /**
   * fn in one transaction (nested: a savepoint), as better-sqlite3 shapes it: returns the function to
   * call. `immediate`: SQLite takes the write lock at BEGIN, so two processes cannot both read and then write.
   */
  transaction<T>(fn: () => T, mode?: 'immediate'): () => T;
  close(): void;
}
