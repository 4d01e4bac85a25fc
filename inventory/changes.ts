import { hostname, userInfo } from 'node:os';
import { UsageError } from '../src/core/errors.js';
import type { SqlDriver } from './driver.js';

/** A change request on a protected environment (four eyes), as stored and shown. */
export interface ChangeRequest {
  id: number;
  command: string;
  /** null: a standing change, for every instance of the environment. */
  instance: string | null;
  env: string;
  params: Record<string, unknown>;
  /** The command line that asked for it (without --why, --home, --json, inventory flags): change run runs it again. */
  argv: string[];
  /** The steps, as --dry-run lists them. */
  plan: string[];
  backout: string;
  why: string;
  standing: boolean;
  requestedBy: string;
  requestedAt: string;
  osUser: string;
  host: string;
  /** expired: approved, not run, and the window has passed (computed, not stored). */
  status: 'pending' | 'approved' | 'rejected' | 'ran' | 'expired';
  decidedBy: string | null;
  decidedAt: string | null;
  decisionWhy: string | null;
  runId: number | null;
  /** Every run made under it. */
  runs: number[];
}

interface ChangeRow {
  id: number;
  command: string;
  instance: string | null;
  env: string;
  params: string;
  argv: string;
  plan: string;
  backout: string;
  why: string;
  standing: number;
  requested_by: string;
  requested_at: string;
  os_user: string;
  host: string;
  status: 'pending' | 'approved' | 'rejected' | 'ran';
  decided_by: string | null;
  decided_at: string | null;
  decision_why: string | null;
  run_id: number | null;
  in_window: boolean | null;
  runs: number[] | null;
}

const SELECT = `SELECT c.*, CASE WHEN c.decided_at IS NULL THEN NULL ELSE change_window_ok(c.decided_at) END AS in_window,
  ARRAY(SELECT run_id FROM change_runs r WHERE r.change_id = c.id ORDER BY run_id) AS runs FROM change_requests c`;

function rowToChange(r: ChangeRow): ChangeRequest {
  const expired = r.status === 'approved' && !r.standing && r.in_window === false;
  return {
    id: r.id,
    command: r.command,
    instance: r.instance,
    env: r.env,
    params: JSON.parse(r.params),
    argv: JSON.parse(r.argv),
    plan: JSON.parse(r.plan),
    backout: r.backout,
    why: r.why,
    standing: !!r.standing,
    requestedBy: r.requested_by,
    requestedAt: r.requested_at,
    osUser: r.os_user,
    host: r.host,
    status: expired ? 'expired' : r.status,
    decidedBy: r.decided_by,
    decidedAt: r.decided_at,
    decisionWhy: r.decision_why,
    runId: r.run_id,
    runs: (r.runs ?? []).map(Number),
  };
}

/**
 * Change requests on a team inventory (the database checks who may ask, decide and run: see
 * pg-rights.ts). On SQLite (one operator, nobody to approve) there are none.
 */
export class Changes {
  constructor(private readonly db: SqlDriver) {}

  get enabled(): boolean {
    return this.db.dialect.name === 'postgres';
  }

  private need(): void {
    if (!this.enabled)
      throw new UsageError(
        'change requests are for a team inventory on PostgreSQL (one operator has nobody to approve them)',
        'point opsdeck at the team inventory: --inventory postgres://ROLE@HOST:PORT/DB',
      );
  }

  request(c: Pick<ChangeRequest, 'command' | 'instance' | 'env' | 'params' | 'argv' | 'plan' | 'backout' | 'why'> & { standing?: boolean }): ChangeRequest {
    this.need();
    let user: string;
    try {
      user = userInfo().username;
    } catch {
      user = String(process.getuid?.() ?? 'unknown');
    }
    const r = this.db
      .prepare('SELECT request_change(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) AS id')
      .get(c.command, c.instance, c.env, JSON.stringify(c.params), JSON.stringify(c.argv), JSON.stringify(c.plan), c.backout, c.why, c.standing ? 'true' : 'false', user, hostname()) as {
      id: number;
    };
    return this.require(Number(r.id));
  }

  get(id: number): ChangeRequest | undefined {
    if (!this.enabled) return undefined;
    const r = this.db.prepare(`${SELECT} WHERE c.id = ?`).get(id) as ChangeRow | undefined;
    return r && rowToChange(r);
  }
  require(id: number): ChangeRequest {
    this.need();
    const c = this.get(id);
    if (!c) throw new UsageError(`no change request ${id}`, 'list them with: opsdeck change list');
    return c;
  }

  list(opts: { instance?: string; open?: boolean } = {}): ChangeRequest[] {
    if (!this.enabled) return [];
    const rows = (opts.instance ? this.db.prepare(`${SELECT} WHERE c.instance = ? ORDER BY c.id DESC`).all(opts.instance) : this.db.prepare(`${SELECT} ORDER BY c.id DESC`).all()) as ChangeRow[];
    const all = rows.map(rowToChange);
    return opts.open ? all.filter((c) => c.status === 'pending' || c.status === 'approved') : all;
  }

  decide(id: number, approve: boolean, why: string | null): ChangeRequest {
    this.need();
    this.db.prepare('SELECT decide_change(?, ?, ?)').get(id, approve ? 'true' : 'false', why);
    return this.require(id);
  }

  /**
   * The approved change this run may go ahead under: one for this instance with the same
   * parameters, within its window, or a standing change for the command on the environment.
   */
  approvedFor(command: string, instance: string, env: string, params: Record<string, unknown>): ChangeRequest | undefined {
    if (!this.enabled) return undefined;
    const p = JSON.stringify(params);
    return this.list({ open: true }).find(
      (c) => c.status === 'approved' && c.command === command && ((!c.standing && c.instance === instance && JSON.stringify(c.params) === p) || (c.standing && c.env === env)),
    );
  }

  /** Records the run made under the change (the database refuses a run not of this role, or an expired approval). */
  ran(id: number, runId: number): void {
    this.db.prepare('SELECT change_ran(?, ?)').get(id, runId);
  }
}
