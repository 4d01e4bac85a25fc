import { describeHalfRestored, type HalfRestored, type Inventory } from '../../inventory/index.js';
import { EXIT, LockedError, OpsError, errorMessage } from '../core/errors.js';
import type { Listener, RunEvent } from '../core/events.js';
import type { Plan, StepContext } from '../core/plan.js';
import { withCommandSink } from '../remote/command-log.js';
import { withStoreNotices } from '../store/notices.js';

export interface RunOutcome<R> {
  status: 'ok' | 'failed' | 'rolled-back' | 'dry-run';
  exitCode: number;
  runId: number | null;
  result?: R;
  error?: string;
  hint?: string;
  failedStep?: string;
  preview?: string[];
}

export interface RunOptions {
  dryRun?: boolean;
  signal?: AbortSignal;
}

/** What a half-restored instance is, in words, and the one command that puts it right. */
export function halfRestoredError(h: HalfRestored): OpsError {
  return new LockedError(`${describeHalfRestored(h)}: nothing else runs on it until it is put right`, `run: opsdeck recover ${h.instance} (finishes or undoes run ${h.runId} from what it recorded)`);
}

/** Errors that say a host could not be reached for now, not that the command itself failed. */
const LOST_CONNECTION =
  /cannot connect to host|cannot reach host|connection to host .* was lost|cannot start a command on host|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ETIMEDOUT|Not connected|No response from server|could not reach/i;

/**
 * Runs every operation, whoever started it (TUI key, CLI, cron): lock, steps in order, events,
 * undo of done steps newest first on failure, audit record.
 */
export class Engine {
  private listeners = new Set<Listener>();
  constructor(private readonly inv: Inventory) {}

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private emit(e: RunEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A renderer that throws must not break the run.
      }
    }
  }

  async run<S, R>(plan: Plan<S, R>, opts: RunOptions = {}): Promise<RunOutcome<R>> {
    const t0 = Date.now();
    const stepsInfo = plan.steps.map((s) => ({ name: s.name, title: s.title, explain: s.explain }));
    if (opts.dryRun) {
      const preview = plan.preview ? await plan.preview() : [];
      this.emit({ type: 'run-started', runId: null, command: plan.command, instance: plan.instance, steps: stepsInfo, dryRun: true, at: Date.now() });
      for (const line of preview) this.emit({ type: 'log', index: null, level: 'info', message: line, at: Date.now() });
      this.emit({ type: 'run-finished', status: 'dry-run', exitCode: EXIT.OK, ms: Date.now() - t0, at: Date.now() });
      return { status: 'dry-run', exitCode: EXIT.OK, runId: null, preview };
    }

    // The lock comes first: a locked instance gets exit 3 and no audit noise beyond that.
    // The instances read are locked with it, all or none: a restore of a clone's source must not
    // swap its tree away while the clone reads it.
    const locked = [...(plan.instance ? [{ instance: plan.instance, command: plan.command }] : []), ...(plan.reads ?? []).map((r) => ({ instance: r, command: `${plan.command} (reading it)` }))];
    if (locked.length) this.inv.acquireLocks(locked, null);
    // A restore that crashed inside its critical section left the instance's database and code tree
    // apart: nothing else runs on it (or reads it) until opsdeck recover puts it right.
    const half = plan.whileHalfRestored ? undefined : locked.map((l) => this.inv.getHalfRestored(l.instance)).find((h) => h !== undefined);
    if (half) {
      for (const l of locked) this.inv.releaseLock(l.instance);
      throw halfRestoredError(half);
    }
    const runId = this.inv.startRun(plan.command, plan.params, plan.instance, false);
    for (const l of locked) this.inv.attachRunToLock(l.instance, runId);
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.emit({ type: 'run-started', runId, command: plan.command, instance: plan.instance, steps: stepsInfo, dryRun: false, at: Date.now() });

    const done: number[] = [];
    let failure: { index: number; err: unknown } | undefined;
    let status: 'ok' | 'failed' | 'rolled-back' | 'undo-failed' = 'ok';
    // Why the run was cancelled (a signal, the console), in the words of whoever cancelled it.
    const cancelled = () => {
      const r = opts.signal?.reason ?? ac.signal.reason;
      return r instanceof OpsError ? r : new OpsError(r instanceof Error && r.name !== 'AbortError' ? r.message : 'cancelled');
    };
    // Final steps (irreversible deletes) wait until every other step succeeded.
    const order = [...plan.steps.keys()].filter((i) => !plan.steps[i].final);
    const finals = [...plan.steps.keys()].filter((i) => plan.steps[i].final);
    try {
      for (const i of order) {
        const step = plan.steps[i];
        const started = Date.now();
        const startedAt = new Date(started).toISOString();
        this.emit({ type: 'step-started', index: i, name: step.name, title: step.title, at: started });
        try {
          if (ac.signal.aborted) throw cancelled();
          await this.commandsOf(runId, i, () => step.run(this.context(plan, i, ac.signal, runId)));
          done.push(i);
          this.inv.addStep({ runId, seq: i, name: step.name, title: step.title, status: 'done', startedAt, finishedAt: new Date().toISOString(), error: null });
          this.emit({ type: 'step-done', index: i, name: step.name, ms: Date.now() - started, at: Date.now() });
        } catch (caught) {
          // A step cut short by a cancel fails because of the cancel: that is the story, not the
          // "command was cancelled" it saw.
          if (ac.signal.aborted && process.env.OPSDECK_DEBUG) this.emit({ type: 'log', index: i, level: 'info', message: `step stopped: ${errorMessage(caught)}`, at: Date.now() });
          const err = ac.signal.aborted ? cancelled() : caught;
          const hint = err instanceof OpsError ? err.hint : undefined;
          // An error that is not one of ours is a bug: with OPSDECK_DEBUG its stack goes to the log.
          if (process.env.OPSDECK_DEBUG && !(err instanceof OpsError)) this.emit({ type: 'log', index: i, level: 'error', message: String((err as Error)?.stack), at: Date.now() });
          this.inv.addStep({ runId, seq: i, name: step.name, title: step.title, status: 'failed', startedAt, finishedAt: new Date().toISOString(), error: errorMessage(err) });
          this.emit({ type: 'step-failed', index: i, name: step.name, error: errorMessage(err), hint, at: Date.now() });
          failure = { index: i, err };
          // A step that failed half-way may have changed something too: its own undo runs first.
          if (step.undo) done.push(i);
          break;
        }
      }

      let undoErrors: string[] = [];
      if (failure) {
        undoErrors = await this.rollback(plan, done, runId);
        status = done.length === 0 ? 'failed' : undoErrors.length ? 'undo-failed' : 'rolled-back';
      } else {
        await this.runFinals(plan, finals, runId);
      }
      const ms = Date.now() - t0;
      if (!failure) {
        const result = plan.result(plan.state);
        this.inv.finishRun(runId, 'ok', null, null, ms);
        this.emit({ type: 'run-finished', status: 'ok', exitCode: EXIT.OK, ms, at: Date.now() });
        return { status: 'ok', exitCode: EXIT.OK, runId, result };
      }
      const step = plan.steps[failure.index];
      const err = failure.err;
      let message = `${step.title} failed: ${errorMessage(err)}`;
      let hint = err instanceof OpsError ? err.hint : undefined;
      if (undoErrors.length) {
        message += `; UNDO FAILED: ${undoErrors.join('; ')}`;
        // The instance is left half-changed: say what puts it back.
        const left = plan.undoFailed?.(plan.state);
        if (left) {
          message += `; ${left.message}`;
          hint = left.hint;
        }
      } else if (status === 'rolled-back') message += ' (rolled back: the done steps were undone)';
      const exitCode = err instanceof OpsError && err.exitCode !== EXIT.OK ? err.exitCode : EXIT.FAILED;
      this.inv.finishRun(runId, status, message, step.name, ms);
      const shown = status === 'undo-failed' ? 'failed' : status;
      this.emit({ type: 'run-finished', status: shown, error: message, hint, exitCode, ms, at: Date.now() });
      return { status: shown, exitCode, runId, error: message, hint, failedStep: step.name };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      // What finally does (a drill's report, closing streams) must not fail the run that already
      // ended, but its failure is said and kept in the audit trail, never dropped.
      await this.commandsOf(runId, null, async () => plan.finally?.(plan.state, status)).catch((err: unknown) => {
        const message = `after the run: ${errorMessage(err)}`;
        this.emit({ type: 'log', index: null, level: 'error', message, at: Date.now() });
        const at = new Date().toISOString();
        this.inv.addStep({ runId, seq: plan.steps.length, name: 'finally', title: 'Clean up after the run', status: 'warning', startedAt: at, finishedAt: at, error: errorMessage(err) });
      });
      for (const l of locked) this.inv.releaseLock(l.instance);
    }
  }

  /**
   * The final steps, once everything else succeeded: not cancellable (their signal never aborts), and
   * a failure is a warning in the log and the audit trail, not a failed run.
   */
  private async runFinals<S>(plan: Plan<S, unknown>, finals: number[], runId: number): Promise<void> {
    const signal = new AbortController().signal;
    for (const i of finals) {
      const step = plan.steps[i];
      const started = Date.now();
      const startedAt = new Date(started).toISOString();
      this.emit({ type: 'step-started', index: i, name: step.name, title: step.title, at: started });
      try {
        await this.commandsOf(runId, i, () => step.run(this.context(plan, i, signal, runId)));
        this.inv.addStep({ runId, seq: i, name: step.name, title: step.title, status: 'done', startedAt, finishedAt: new Date().toISOString(), error: null });
      } catch (err) {
        this.inv.addStep({ runId, seq: i, name: step.name, title: step.title, status: 'warning', startedAt, finishedAt: new Date().toISOString(), error: errorMessage(err) });
        this.emit({ type: 'log', index: i, level: 'warn', message: `${step.title} did not complete (the run itself did): ${errorMessage(err)}`, at: Date.now() });
      }
      this.emit({ type: 'step-done', index: i, name: step.name, ms: Date.now() - started, at: Date.now() });
    }
  }

  private async rollback<S>(plan: Plan<S, unknown>, done: number[], runId: number): Promise<string[]> {
    const errors: string[] = [];
    // Undo runs even if the run was cancelled: its own signal is never aborted.
    const signal = new AbortController().signal;
    for (const i of [...done].reverse()) {
      const step = plan.steps[i];
      if (!step.undo) continue;
      const startedAt = new Date().toISOString();
      this.emit({ type: 'undo-started', index: i, name: step.name, at: Date.now() });
      try {
        await this.retryLostConnection(
          () => this.commandsOf(runId, i, () => step.undo!(this.context(plan, i, signal, runId))),
          (message) => this.emit({ type: 'log', index: i, level: 'warn', message, at: Date.now() }),
        );
        this.inv.addStep({ runId, seq: i, name: step.name, title: `undo: ${step.title}`, status: 'undone', startedAt, finishedAt: new Date().toISOString(), error: null });
        this.emit({ type: 'undo-done', index: i, name: step.name, ok: true, at: Date.now() });
      } catch (err) {
        errors.push(`${step.title}: ${errorMessage(err)}`);
        this.inv.addStep({ runId, seq: i, name: step.name, title: `undo: ${step.title}`, status: 'undo-failed', startedAt, finishedAt: new Date().toISOString(), error: errorMessage(err) });
        this.emit({ type: 'undo-done', index: i, name: step.name, ok: false, error: errorMessage(err), at: Date.now() });
      }
    }
    return errors;
  }

  /**
   * Runs an undo; when it fails because the connection to a host was refused, lost or timed out (sshd
   * restarting, a network blip), tries again for a while before giving up: an undo that fails leaves
   * the instance half-changed, so it is worth waiting for.
   */
  private async retryLostConnection(fn: () => Promise<void>, say: (message: string) => void): Promise<void> {
    const windowMs = Number(process.env.OPSDECK_UNDO_RETRY_SECONDS ?? 120) * 1000;
    const until = Date.now() + windowMs;
    for (let wait = 1000; ; wait = Math.min(wait * 2, 10_000)) {
      try {
        return await fn();
      } catch (err) {
        if (!LOST_CONNECTION.test(errorMessage(err)) || Date.now() + wait > until) throw err;
        say(`${errorMessage(err)}: trying again in ${wait / 1000} s (for up to ${Math.round(windowMs / 1000)} s)`);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Runs a step's work with the commands it runs reported as events of that step and kept in the run's command log. */
  private commandsOf<T>(runId: number, index: number | null, fn: () => Promise<T>): Promise<T> {
    return withCommandSink(
      (c) => {
        this.emit({ type: 'command', index, ...c });
        this.inv.addCommand(runId, index, c);
      },
      // What the store says while it waits (another restic's lock) is a line of this step's log.
      () => withStoreNotices((message) => this.emit({ type: 'log', index, level: 'warn', message, at: Date.now() }), fn),
    );
  }

  private context<S>(plan: Plan<S, unknown>, index: number, signal: AbortSignal, runId: number | null): StepContext<S> {
    const name = plan.steps[index].name;
    let last = 0;
    let firstAt = 0;
    return {
      state: plan.state,
      signal,
      runId,
      command: plan.command,
      log: (message, level = 'info') => this.emit({ type: 'log', index, level, message, at: Date.now() }),
      progress: (bytes, total) => {
        const t = Date.now();
        if (!firstAt) firstAt = t;
        // At most ten progress events a second: renderers redraw on each.
        if (t - last < 100 && (total === undefined || bytes < total)) return;
        last = t;
        const secs = (t - firstAt) / 1000;
        this.emit({ type: 'progress', index, name, bytes, total, rate: secs > 0.2 ? bytes / secs : undefined, at: t });
      },
    };
  }
}
