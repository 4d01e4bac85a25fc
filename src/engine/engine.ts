import type { Inventory } from '../../inventory/index.js';
import { EXIT, OpsError, errorMessage } from '../util/errors.js';
import type { Listener, RunEvent } from './events.js';
import type { Plan, StepContext } from './plan.js';

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
    const runId = this.inv.startRun(plan.command, plan.params, plan.instance, false);
    for (const l of locked) this.inv.attachRunToLock(l.instance, runId);
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.emit({ type: 'run-started', runId, command: plan.command, instance: plan.instance, steps: stepsInfo, dryRun: false, at: Date.now() });

    const done: number[] = [];
    let failure: { index: number; err: unknown } | undefined;
    try {
      for (let i = 0; i < plan.steps.length; i++) {
        const step = plan.steps[i];
        const started = Date.now();
        const startedAt = new Date(started).toISOString();
        this.emit({ type: 'step-started', index: i, name: step.name, title: step.title, at: started });
        try {
          if (ac.signal.aborted) throw new OpsError('cancelled');
          await step.run(this.context(plan, i, ac.signal));
          done.push(i);
          this.inv.addStep({ runId, seq: i, name: step.name, title: step.title, status: 'done', startedAt, finishedAt: new Date().toISOString(), error: null });
          this.emit({ type: 'step-done', index: i, name: step.name, ms: Date.now() - started, at: Date.now() });
        } catch (err) {
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

      let status: RunOutcome<R>['status'] = 'ok';
      let undoErrors: string[] = [];
      if (failure) {
        undoErrors = await this.rollback(plan, done, runId);
        status = done.length === 0 ? 'failed' : undoErrors.length ? 'failed' : 'rolled-back';
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
      if (undoErrors.length) message += `; UNDO FAILED: ${undoErrors.join('; ')}`;
      else if (status === 'rolled-back') message += ' (rolled back: the done steps were undone)';
      const hint = err instanceof OpsError ? err.hint : undefined;
      const exitCode = err instanceof OpsError && err.exitCode !== EXIT.OK ? err.exitCode : EXIT.FAILED;
      this.inv.finishRun(runId, status, message, step.name, ms);
      this.emit({ type: 'run-finished', status, error: message, hint, exitCode, ms, at: Date.now() });
      return { status, exitCode, runId, error: message, hint, failedStep: step.name };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      await plan.finally?.(plan.state).catch(() => {});
      for (const l of locked) this.inv.releaseLock(l.instance);
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
        await step.undo(this.context(plan, i, signal));
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

  private context<S>(plan: Plan<S, unknown>, index: number, signal: AbortSignal): StepContext<S> {
    const name = plan.steps[index].name;
    let last = 0;
    let firstAt = 0;
    return {
      state: plan.state,
      signal,
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
