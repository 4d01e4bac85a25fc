/** The audit trail: runs (append-only), their steps and the commands they ran. */
import { hostname } from 'node:os';
import type { SqlDriver } from './driver.js';
import type { CommandRow, RunRow, StepRow } from './rows.js';
import { rowToRun } from './rows.js';
import { redact, safeUser } from './audit.js';
import type { InstanceLocks } from './locks.js';
import type { CommandLogRecord, RunRecord, StepRecord } from './types.js';

const now = () => new Date().toISOString();

export class RunLog {
  constructor(
    private readonly db: SqlDriver,
    /** PostgreSQL: runs are finished through finish_run() (operators may not UPDATE the trail). */
    private readonly isPg: boolean,
    /** A running run's lock tells whether its process is still there. */
    private readonly locks: InstanceLocks,
  ) {}

  start(command: string, params: Record<string, unknown>, instance: string | null, dryRun: boolean): number {
    const origin = process.env.SSH_CLIENT ? process.env.SSH_CLIENT.split(' ')[0] : 'local';
    // On PostgreSQL the server overwrites started_at and sets db_role and client_addr itself (pg-migrations.ts).
    const res = this.db
      .prepare('INSERT INTO runs (started_at, os_user, origin, host, command, params, instance, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id')
      .get(now(), safeUser(), origin, hostname(), command, JSON.stringify(redact(params)), instance, dryRun ? 'dry-run' : 'running') as { id: number };
    return Number(res.id);
  }
  finish(id: number, status: RunRecord['status'], error: string | null, failedStep: string | null, durationMs: number): void {
    // PostgreSQL: operators may not UPDATE the audit trail; finish_run() ends a run of their own role, once.
    if (this.isPg) this.db.prepare('SELECT finish_run(?, ?, ?, ?, ?)').get(id, status, error, failedStep, Math.round(durationMs));
    else
      this.db
        .prepare('UPDATE runs SET finished_at = ?, status = ?, error = ?, failed_step = ?, duration_ms = ? WHERE id = ? AND finished_at IS NULL')
        .run(now(), status, error, failedStep, durationMs, id);
  }
  /** A command a run ran, for its command log (opsdeck runs ID --commands). */
  addCommand(runId: number, seq: number | null, c: CommandLogRecord): void {
    this.db
      .prepare('INSERT INTO run_commands (run_id, seq, at, place, line, code, signal, ms, bytes_in, bytes_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(runId, seq, new Date(c.at).toISOString(), c.where, c.line, c.code, c.signal, c.ms, c.bytesIn, c.bytesOut);
  }

  /** The commands a run ran, in the order they ended. */
  commands(runId: number): (CommandLogRecord & { seq: number | null })[] {
    return (this.db.prepare(`SELECT * FROM run_commands WHERE run_id = ? ORDER BY ${this.db.dialect.insertOrder}`).all(runId) as CommandRow[]).map((r) => ({
      seq: r.seq,
      at: Date.parse(r.at),
      where: r.place,
      line: r.line,
      code: r.code,
      signal: r.signal,
      ms: r.ms,
      bytesIn: r.bytes_in,
      bytesOut: r.bytes_out,
    }));
  }

  addStep(s: StepRecord): void {
    this.db
      .prepare('INSERT INTO run_steps (run_id, seq, name, title, status, started_at, finished_at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(s.runId, s.seq, s.name, s.title, s.status, s.startedAt, s.finishedAt, s.error);
  }
  list(limit = 20, instance?: string): RunRecord[] {
    const rows = instance
      ? this.db.prepare('SELECT * FROM runs WHERE instance = ? ORDER BY id DESC LIMIT ?').all(instance, limit)
      : this.db.prepare('SELECT * FROM runs ORDER BY id DESC LIMIT ?').all(limit);
    return (rows as RunRow[]).map((r) => this.alive(rowToRun(r)));
  }
  get(id: number): RunRecord | undefined {
    const r = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
    return r ? this.alive(rowToRun(r)) : undefined;
  }
  /**
   * A run still marked running whose process is gone (killed, machine rebooted) never finished: it
   * is shown as interrupted. Known only for runs on an instance (they hold its lock) on this machine.
   */
  private alive(r: RunRecord): RunRecord {
    if (r.status !== 'running' || !r.instance) return r;
    const l = this.locks.get(r.instance);
    // Stale: its process died, or its pid now belongs to another process (told by start time).
    const holds = l && (l.runId === r.id || l.runId === null) && !this.locks.isStale(l);
    return holds ? r : { ...r, status: 'interrupted' };
  }
  /** A run's steps and undos in the order they happened (an undo after the failure that caused it). */
  steps(runId: number): StepRecord[] {
    return (this.db.prepare(`SELECT * FROM run_steps WHERE run_id = ? ORDER BY ${this.db.dialect.insertOrder}`).all(runId) as StepRow[]).map((r) => ({
      runId: r.run_id,
      seq: r.seq,
      name: r.name,
      title: r.title,
      status: r.status,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      error: r.error,
    }));
  }
}
