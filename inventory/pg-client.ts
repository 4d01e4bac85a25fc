/**
 * One place for how a PostgreSQL inventory connection is made and how its values are read, for both
 * threads that make one: the worker (pg-worker.ts, the synchronous inventory) and the console's main
 * thread (postgres.ts, the first frame's reads). Only pg's types here: pg is loaded by the caller.
 */
import type pg from 'pg';

export interface WorkerConfig {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
  connectTimeoutMs: number;
}

/** A client for the config, its values read as the inventory expects. Not connected yet. */
export function newClient(lib: typeof pg, c: WorkerConfig): pg.Client {
  // COUNT(*) and BIGINT come back as numbers, as SQLite gives them (no count here nears 2^53).
  lib.types.setTypeParser(20, (v: string) => Number(v));
  const client = new lib.Client({
    host: c.host,
    port: c.port,
    user: c.user,
    database: c.database,
    password: c.password,
    connectionTimeoutMillis: c.connectTimeoutMs,
    application_name: 'opsdeck',
  });
  // A dropped connection fails the next query with its own error; here it must not kill the thread.
  client.on('error', () => {});
  return client;
}
