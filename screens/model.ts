import type { Backup, Instance, LockRecord, RunRecord } from '../inventory/index.js';
import type { ChangeRequest } from '../inventory/changes.js';
import { firstPageSql } from '../inventory/list-sql.js';
import type { InstanceRow as InstanceRecord } from '../inventory/rows.js';
import { rowToInstance } from '../inventory/rows.js';
import { storeRecords } from '../inventory/store-records.js';
import { changePlan } from '../src/actions/change.js';
import { fourEyes } from '../src/actions/team.js';
import type { CompareReport } from '../src/actions/compare.js';
import type { WatchReport } from '../src/actions/watch.js';
import type { DrillReport } from '../src/actions/drill.js';
import type { Sampler } from '../src/health/sampler.js';
import { operations, type App } from '../src/app/app.js';
import type { Plan } from '../src/core/plan.js';
import { errorMessage, OpsError, UsageError } from '../src/core/errors.js';
import { reduceRun, type LoggedCommand, type RunState } from './runState.js';

export interface InstanceRow extends Instance {
  protected: boolean;
  lastBackup: string | null;
  /** Name, environment and host in lower case: what / matches against, made once per load. */
  search: string;
}

export type Operation = 'backup' | 'restore' | 'update' | 'upgrade' | 'maintenance' | 'clone' | 'compare' | 'drill' | 'watch' | 'refresh' | 'promote' | 'mirror sync';

export interface OperationOptions {
  backup?: string;
  /** The other instance: clone and drill target, compare's other side, upgrade's tag. */
  to?: string;
  mode?: 'on' | 'off';
}

/** A plan whose checks passed: its steps, to show before asking, and what starts it. */
export interface Prepared {
  command: string;
  steps: { title: string; explain?: string }[];
  start(): boolean;
}

/** An action's refusal in one status line, with its fix. */
function refusal(err: unknown): string {
  return err instanceof OpsError && err.hint ? `${err.message}; fix: ${err.hint}` : errorMessage(err);
}

export interface UiState {
  inventoryFile: string;
  instances: InstanceRow[];
  hostCount: number;
  envs: string[];
  /** The dashboard's environment filter ('' for all): the sampler probes only these. */
  env: string;
  /** When the store was last read whole (the end of a backups check cycle whose every part passed); null: never. */
  storeReadWhole?: string | null;
  run?: RunState;
  /** What the last run handed back when it was a comparison that finished well (the compare screen draws it). */
  lastCompare?: CompareReport;
  /** What the last watch found (the run view shows it when the watch ends). */
  lastWatch?: WatchReport;
  /** A message for the status line (an operation refused before it started, say). */
  flash?: { level: 'info' | 'error'; text: string };
  /**
   * The audit trail, the locks and the open change requests as last read (team inventory: re-read
   * every refresh interval, so another operator's run shows here while it goes on).
   */
  shared?: { runs: RunRecord[]; locks: LockRecord[]; changes: ChangeRequest[]; key: string };
  /**
   * Set while `instances` holds only the first page the dashboard's first frame shows (readFirstPage):
   * the whole counts, every host an instance is on (sorted), the first page of instances with a
   * database. reload() reads everything and drops it.
   */
  page?: FirstPage;
}

export interface FirstPage {
  instances: number;
  databases: number;
  hosts: string[];
  databaseRows: InstanceRow[];
}

/**
 * The console's state, kept outside React: the inventory rows and the current run. Screens subscribe
 * (useSyncExternalStore) and call these methods; nothing here draws.
 */
export class UiModel {
  private state: UiState;
  private listeners = new Set<() => void>();
  private abort?: AbortController;

  /** Live health, when the console runs one (the screens draw without it, for tests of the rest). */
  readonly sampler?: Sampler;

  /**
   * `firstPage`: read only what a first frame of that many rows shows (see readFirstPage); the caller
   * calls reload() once that frame is drawn. Default: everything, now.
   */
  constructor(
    readonly app: App,
    opts: { sampler?: Sampler; liveMs?: number; firstPage?: number } = {},
  ) {
    this.sampler = opts.sampler;
    // Several operators share a team inventory: what they run shows up here within the interval.
    if (app.inv.pg) {
      this.live = setInterval(() => this.readShared(), opts.liveMs ?? app.settings.refreshMs);
      this.live.unref();
    }
    this.state = { inventoryFile: app.inv.file, instances: [], hostCount: 0, envs: [], env: '' };
    if (opts.firstPage) this.readFirstPage(opts.firstPage);
    else this.reload();
    app.engine.subscribe((e) => {
      const run = reduceRun(this.state.run, e);
      // The session's command log (:log) outlives each run's view.
      if (e.type === 'command' && run) this.commandLog = [...this.commandLog, run.commands[run.commands.length - 1]].slice(-1000);
      this.set({ run });
    });
  }

  subscribe = (l: () => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };
  getState = () => this.state;

  private set(patch: Partial<UiState>) {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  /**
   * Why the session's role may not run `action` on the instance (team inventory: its level on the
   * instance's environment); undefined: it may. The keys consult it to grey what they may not do.
   */
  may(action: string, instance: string | undefined): string | undefined {
    const inst = instance ? this.index.get(instance) : undefined;
    if (!inst) return undefined;
    const v = this.app.inv.rights.mayOn(action, inst.env, inst.protected);
    return v.ok ? undefined : `${v.reason}${v.who.length ? `; ask ${v.who.join(', ')}` : ''}`;
  }

  reload(): void {
    const inv = this.app.inv;
    inv.rights.refresh();
    const envs = new Map(inv.listEnvs().map((e) => [e.name, e.protected]));
    const last = inv.latestBackupTimes();
    // The rows are this read's own: filled in place, not copied (a spread of 100,000 rows costs
    // more than reading them).
    const instances = this.rows(inv.listInstances(), envs, last);
    this.index = new Map(instances.map((i) => [i.name, i]));
    this.set({
      instances,
      hostCount: inv.listHosts().length,
      envs: [...envs.keys()].sort(),
      storeReadWhole: storeRecords(inv).lastFullCycle(this.app.store.repository),
      page: undefined,
    });
    this.rescope();
  }

  /** The console's rows: an instance with its environment's protection, its newest backup and what / matches. */
  private rows(list: Instance[], envs: Map<string, boolean>, last: Map<string, string>): InstanceRow[] {
    const rows = list as InstanceRow[];
    for (const i of rows) {
      i.protected = envs.get(i.env) ?? false;
      i.lastBackup = last.get(i.name) ?? null;
      i.search = `${i.name}\n${i.env}\n${i.host}`.toLowerCase();
    }
    return rows;
  }

  /**
   * What the dashboard's first frame shows and no more (100,000 instances take a second to read
   * whole): the first `rows` instances and instances with a database, the counts and the hosts.
   * Nothing is probed yet (the sampler's scope is set by reload).
   */
  private readFirstPage(rows: number): void {
    const inv = this.app.inv;
    const sql = firstPageSql(rows);
    const all = (q: string) => inv.db.prepare(q).all();
    const envs = new Map(inv.listEnvs().map((e) => [e.name, e.protected]));
    const counts = inv.db.prepare(sql.counts).get() as { instances: number; databases: number; hosts: number };
    const hosts = (all(sql.instanceHosts) as { host: string }[]).map((r) => r.host).sort();
    const page = (all(sql.instances) as InstanceRecord[]).map(rowToInstance);
    const dbPage = (all(sql.databases) as InstanceRecord[]).map(rowToInstance);
    const last = new Map((all(sql.newestBackups) as { instance: string; t: string }[]).map((r) => [r.instance, r.t]));
    const instances = this.rows(page, envs, last);
    this.index = new Map(instances.map((i) => [i.name, i]));
    // The same instance in both pages is one row, as in the whole list.
    const databaseRows = this.rows(dbPage, envs, last).map((i) => this.index.get(i.name) ?? i);
    this.set({
      instances,
      hostCount: Number(counts.hosts),
      envs: [...envs.keys()].sort(),
      storeReadWhole: storeRecords(inv).lastFullCycle(this.app.store.repository),
      page: { instances: Number(counts.instances), databases: Number(counts.databases), hosts, databaseRows },
    });
  }

  /** Cycles the environment filter: all, then each environment in turn. */
  nextEnv(): void {
    const all = ['', ...this.state.envs];
    this.set({ env: all[(all.indexOf(this.state.env) + 1) % all.length] });
    this.rescope();
  }

  private rescope(): void {
    const env = this.state.env;
    this.sampler?.setScope(env ? this.state.instances.filter((i) => i.env === env) : this.state.instances);
  }

  host(name: string) {
    return this.app.inv.getHost(name);
  }

  private index = new Map<string, InstanceRow>();
  byName(name: string): InstanceRow | undefined {
    return this.index.get(name);
  }

  /** Every command the console's runs ran this session, oldest first (:log). */
  commandLog: LoggedCommand[] = [];

  private live?: NodeJS.Timeout;
  /** Stops re-reading the shared state (the console is closing). */
  stopLive(): void {
    clearInterval(this.live);
    this.live = undefined;
  }
  /** Re-reads runs, locks and open changes; draws again only when something changed. */
  readShared(): void {
    const inv = this.app.inv;
    let shared: UiState['shared'];
    try {
      const runs = inv.listRuns(500);
      const locks = inv.listLocks();
      const changes = inv.changes.list({ open: true });
      const key = JSON.stringify([runs.map((r) => [r.id, r.status]), locks.map((l) => [l.instance, l.runId]), changes.map((c) => [c.id, c.status])]);
      if (key === this.state.shared?.key) return;
      shared = { runs, locks, changes, key };
    } catch {
      // The inventory went away (closed, unreachable): keep what was read; the next tick tries again.
      return;
    }
    this.set({ shared });
  }
  /** The open change request of an instance (pending or approved), if any. */
  changeOf(instance: string): ChangeRequest | undefined {
    return (this.state.shared?.changes ?? this.app.inv.changes.list({ open: true })).find((c) => c.instance === instance);
  }
  /** Who holds the instance's lock now (a run here, or on another jump box). */
  lockOf(instance: string): LockRecord | undefined {
    return this.state.shared ? this.state.shared.locks.find((l) => l.instance === instance) : this.app.inv.getLock(instance);
  }
  changes(): ChangeRequest[] {
    return this.state.shared?.changes ?? this.app.inv.changes.list({ open: true });
  }

  runs(): RunRecord[] {
    if (this.state.shared) return this.state.shared.runs;
    return this.app.inv.listRuns(500);
  }

  drills(): DrillReport[] {
    return this.app.inv.listDrills();
  }

  backups(instance: string): Backup[] {
    return this.app.inv.listBackups(instance);
  }

  get running(): boolean {
    return !!this.state.run && !this.state.run.finished;
  }

  flash(level: 'info' | 'error', text: string): void {
    this.set({ flash: { level, text } });
  }

  /** The tags an instance could be upgraded to, newest first; errors go to the status line. */
  async tags(instance: string): Promise<string[]> {
    try {
      return await operations.tags(this.app, this.app.inv.requireInstance(instance));
    } catch (err) {
      this.flash('error', errorMessage(err));
      return [];
    }
  }

  /**
   * Builds a plan, which makes the action's checks (a drill onto a protected instance, an update of an
   * instance that follows no branch...): a refusal goes to the status line before anything is asked.
   * What comes back says what would run and starts it once confirmed.
   */
  prepare(kind: Operation, instance: string, opts: OperationOptions = {}): Prepared | undefined {
    try {
      return this.build(kind, instance, opts);
    } catch (err) {
      this.flash('error', refusal(err));
      return undefined;
    }
  }

  /** prepare, then start at once (what needs no confirmation: backup, watch, compare). */
  start(kind: Operation, instance: string, opts: OperationOptions = {}): boolean {
    return this.prepare(kind, instance, opts)?.start() ?? false;
  }

  private build(kind: Operation, instance: string, opts: OperationOptions): Prepared {
    const a = this.app;
    const to = () => {
      if (!opts.to) throw new UsageError(`${kind} needs a target`);
      return opts.to;
    };
    switch (kind) {
      case 'backup':
        return this.prepared(operations.backup(a, instance), instance);
      case 'restore':
        return this.prepared(operations.restore(a, instance, { backup: opts.backup }), instance);
      case 'update':
        return this.prepared(operations.update(a, instance), instance);
      case 'upgrade':
        return this.prepared(operations.update(a, instance, { to: to() }), instance);
      case 'maintenance':
        return this.prepared(operations.maintenance(a, instance, opts.mode ?? 'on'), instance);
      case 'clone':
        return this.prepared(operations.clone(a, instance, to()), instance);
      case 'compare':
        return this.prepared(operations.compare(a, instance, to()), instance, (report) => this.set({ lastCompare: report }));
      case 'drill':
        return this.prepared(operations.drill(a, instance, { target: to(), backup: opts.backup }), instance);
      case 'watch':
        return this.prepared(operations.watch(a, instance), instance, (report) => this.set({ lastWatch: report }));
      case 'refresh':
        return this.prepared(operations.refresh(a, instance), instance);
      case 'promote':
        return this.prepared(operations.promote(a, instance), instance);
      case 'mirror sync':
        return this.prepared(operations.mirrorSync(a, instance), instance);
    }
  }

  private prepared<S, R>(plan: Plan<S, R>, instance: string, onResult?: (result: R) => void): Prepared {
    // Team inventory: what the role may not run on the instance it changes is refused here, in words.
    const on = plan.instance ? this.index.get(plan.instance) : undefined;
    if (on) this.app.inv.rights.check(plan.command, on.name, on.env, on.protected);
    // A change to a protected environment goes ahead only under an approved change request (asked for with opsdeck ... --why).
    const change = on ? fourEyes(this.app.inv, plan, { argv: [] }) : undefined;
    if (change?.go && change.change !== undefined) plan.params = { ...plan.params, change: change.change };
    return {
      command: plan.command,
      steps: plan.steps.map((s) => ({ title: s.title, explain: s.explain })),
      start: () => this.run(plan, instance, onResult, change?.go ? change.change : undefined),
    };
  }

  /** Runs a plan in the run view; one at a time. */
  private run<S, R>(plan: Plan<S, R>, instance: string, onResult?: (result: R) => void, change?: number): boolean {
    if (this.running) {
      this.flash('error', 'a run is in progress: wait for it to end');
      return false;
    }
    this.abort = new AbortController();
    this.set({ flash: undefined, lastCompare: undefined, lastWatch: undefined });
    void this.app.engine
      .run(plan, { signal: this.abort.signal })
      .then((out) => {
        // The approval is used once, by this run (a standing change: each run recorded).
        if (change !== undefined && out.runId !== null) this.app.inv.changes.ran(change, out.runId);
        if (out.status === 'ok' && out.result !== undefined) onResult?.(out.result);
      })
      .catch((err: unknown) => {
        // Refused before any step ran (a lock held elsewhere, say): show it as a finished run.
        this.set({
          run: {
            command: plan.command,
            instance,
            steps: plan.steps.map((s) => ({ name: s.name, title: s.title, status: 'pending' })),
            logs: [{ level: 'error', message: errorMessage(err) }],
            commands: [],
            startedAt: Date.now(),
            finished: { status: 'failed', error: errorMessage(err), exitCode: 1, ms: 0 },
          },
        });
      })
      .finally(() => {
        this.reload();
        if (this.live) this.readShared();
      });
    return true;
  }

  /** Approves or rejects a change request (the database refuses one's own), as a run in the audit trail. */
  decide(id: number, approve: boolean): boolean {
    const inv = this.app.inv;
    const why = approve ? null : 'rejected in the console';
    return this.run(
      changePlan(approve ? 'change approve' : 'change reject', { change: id, why }, () => void inv.changes.decide(id, approve, why)),
      '',
    );
  }

  cancel(): void {
    this.abort?.abort();
  }

  clearRun(): void {
    if (!this.running) this.set({ run: undefined });
  }
}
