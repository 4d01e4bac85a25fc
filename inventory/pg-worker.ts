/**
 * The PostgreSQL inventory's connection, in a worker thread: node-postgres is asynchronous and the
 * inventory is called synchronously, so the main thread posts a request and sleeps on a shared
 * counter (Atomics.wait) until this thread has the answer on the port (the synckit pattern).
 * The connection lives as long as the process: session advisory locks (instance locks) are held by it.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import pg from 'pg';

export interface WorkerConfig {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
  connectTimeoutMs: number;
}
export type Request = { op: 'connect' } | { op: 'exec'; sql: string } | { op: 'query'; name: string; sql: string; params: unknown[] } | { op: 'end' };
export type Reply = { ok: true; rows: Record<string, unknown>[]; rowCount: number } | { ok: false; message: string; code?: string };

const { counter, port, config } = workerData as { counter: SharedArrayBuffer; port: MessagePort; config: WorkerConfig };
const flag = new Int32Array(counter);
// COUNT(*) and BIGINT come back as numbers, as SQLite gives them (no count here nears 2^53).
pg.types.setTypeParser(20, (v: string) => Number(v));
const client = new pg.Client({
  host: config.host,
  port: config.port,
  user: config.user,
  database: config.database,
  password: config.password,
  connectionTimeoutMillis: config.connectTimeoutMs,
  application_name: 'opsdeck',
});
// A dropped connection fails the next query with its own error; here it must not kill the thread.
client.on('error', () => {});

// Buffers cross the thread boundary as plain Uint8Arrays; node-postgres sends Buffers as bytea.
const param = (v: unknown) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v);

async function answer(m: Request): Promise<Reply> {
  try {
    if (m.op === 'connect') {
      await client.connect();
      return { ok: true, rows: [], rowCount: 0 };
    }
    if (m.op === 'end') {
      await client.end();
      return { ok: true, rows: [], rowCount: 0 };
    }
    // Named statements are parsed once per connection, as better-sqlite3's prepared ones are.
    const r = m.op === 'exec' ? await client.query(m.sql) : await client.query({ name: m.name, text: m.sql, values: m.params.map(param) });
    const last = Array.isArray(r) ? r[r.length - 1] : r;
    return { ok: true, rows: last?.rows ?? [], rowCount: last?.rowCount ?? 0 };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { ok: false, message: e.message, code: e.code };
  }
}

port.on('message', (m: Request) => {
  void answer(m).then((reply) => {
    port.postMessage(reply);
    Atomics.add(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
});
