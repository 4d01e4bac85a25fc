import type { Plan } from '../core/plan.js';
import { EXIT, OpsError, UsageError, errorMessage } from '../core/errors.js';
import type { App, GlobalOpts } from '../app/app.js';
import { Engine } from '../engine/engine.js';
import { changePlan } from '../actions/change.js';
import { checkRights, fourEyes } from '../actions/team.js';
import type { ChangeRequest } from '../../inventory/changes.js';
import { runFailedAlert, sendAlert, type Alert, type Delivery } from '../notify/notify.js';
import { sendPing, type PingKind } from '../notify/ping.js';
import { interactive } from './prompt.js';
import { jsonLinesRenderer, textRenderer } from './render.js';
import type { Output } from './action.js';

/** Signals that stop a run: ctrl-c, kill/systemd, and the terminal hanging up. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Nobody is watching: cron (--yes) or no terminal. Failures then go out as alerts. */
export const unattended = (g: GlobalOpts) => !!g.yes || !interactive();

/** Sends an alert; a channel that cannot be reached is said on stderr and changes nothing else. */
export async function alert(app: App, a: Alert): Promise<Delivery[]> {
  const sent = await sendAlert(app.inv, a);
  for (const d of sent) if (!d.ok) process.stderr.write(`opsdeck: could not send the ${d.channel} alert: ${d.error}\n`);
  return sent;
}

/** The apps whose command sent its start ping: only those send an end ping. */
const pinged = new WeakSet<App>();

async function ping(app: App, kind: PingKind, body: string): Promise<void> {
  const url = app.inv.notifyChannels().find((c) => c.kind === 'ping')?.config.url;
  if (!url) return;
  const r = await sendPing(url, kind, body);
  if (!r.ok) process.stderr.write(`opsdeck: could not send the ${kind} ping to the monitor: ${r.error}\n`);
}

/**
 * An unattended command that does work (an operation, a check) pings the monitor's URL/start once,
 * before its first run; pingEnd then sends success or fail. A ping that fails is said on stderr and
 * never changes the run.
 */
export async function pingStart(app: App, g: GlobalOpts, what: string): Promise<void> {
  if (g.dryRun || !unattended(g) || pinged.has(app)) return;
  pinged.add(app);
  await ping(app, 'start', `${what} started`);
}

/** The end of a command (from makeAct): URL when it ended well, URL/fail when not; body = its summary. */
export async function pingEnd(app: App, exitCode: number, summary: string): Promise<void> {
  if (!pinged.has(app)) return;
  pinged.delete(app);
  await ping(app, exitCode === EXIT.OK ? 'success' : 'fail', summary);
}

interface RunOpts {
  /** Written before each line of the run's log (runs side by side). */
  prefix?: string;
  /** Alert on failure when unattended (operations do; inventory changes never did). */
  alertOnFailure?: boolean;
}

/** A run's end: the dry run's output, or the result of a run that succeeded (a failed one throws). */
type Ended<R> = { dryRun: Output } | { result: R };

/** Runs a plan through the engine with the renderers the flags ask for; a failure throws with its exit code. */
async function execute<S, R>(app: App, g: GlobalOpts, plan: Plan<S, R>, o: RunOpts = {}): Promise<Ended<R>> {
  // Rights per environment (team inventory): refused before anything starts; a dry run only shows.
  // A change to a protected environment runs only under an approved change request; else one is made.
  let change: number | undefined;
  if (o.alertOnFailure !== false) await pingStart(app, g, plan.command);
  if (!g.dryRun) {
    checkRights(app.inv, plan);
    const gate = fourEyes(app.inv, plan, { why: g.why, argv: process.argv.slice(2) });
    if (!gate.go) return { dryRun: changeRequested(gate.change) };
    change = gate.change;
    if (change !== undefined) plan.params = { ...plan.params, change };
  }
  // An engine per run: runs side by side (--parallel) keep their event streams apart.
  const engine = new Engine(app.inv);
  engine.subscribe(g.json ? jsonLinesRenderer() : textRenderer(process.stderr, undefined, o.prefix));
  const ac = new AbortController();
  let received: NodeJS.Signals | undefined;
  // A signal cancels the run: the engine stops the step and undoes what was done. The listener stays
  // until the run has ended, undo included: a second ctrl-c must not cut the undo short, and with a
  // listener of ours present execa's signal-exit leaves the signal to us (a process.once listener is
  // gone by the time signal-exit looks, so it re-raised the signal and killed opsdeck mid-restore).
  const onSig = (sig: NodeJS.Signals) => {
    if (sig === 'SIGHUP') {
      // The terminal is gone (the SSH session to the jump box dropped): writing to it must not kill us.
      process.stdout.on('error', () => {});
      process.stderr.on('error', () => {});
    }
    if (received) {
      process.stderr.write(
        `opsdeck: ${sig} ignored: already stopping after ${received}, undoing what was done. Wait for it: killing opsdeck now would leave ${plan.instance ?? 'the run'} half-changed\n`,
      );
      return;
    }
    received = sig;
    process.stderr.write(`opsdeck: ${sig} received: cancelling ${plan.command}${plan.instance ? ` on ${plan.instance}` : ''} and undoing what was done\n`);
    ac.abort(new OpsError(`cancelled by ${sig}${sig === 'SIGHUP' ? ' (the terminal or SSH session went away)' : ''}`));
  };
  for (const s of STOP_SIGNALS) process.on(s, onSig);
  try {
    const out = await engine.run(plan, { dryRun: g.dryRun, signal: ac.signal });
    // The approval is used once, by this run, whatever its end (a standing change: each run recorded).
    if (change !== undefined && out.runId !== null) app.inv.changes.ran(change, out.runId);
    if (out.status === 'dry-run')
      return { dryRun: { json: { dryRun: true, command: plan.command, steps: plan.steps.map((s) => s.title), preview: out.preview }, text: (out.preview ?? []).join('\n') } };
    if (out.status !== 'ok') {
      // A hang-up means nobody is at the terminal any more: alert as for cron.
      if (o.alertOnFailure !== false && (unattended(g) || received === 'SIGHUP')) {
        await alert(app, runFailedAlert({ command: plan.command, instance: plan.instance, error: out.error ?? 'failed', runId: out.runId, home: app.home }));
      }
      throw new OpsError(out.error ?? 'failed', out.exitCode, out.hint ?? `see the run with: opsdeck runs ${out.runId}`);
    }
    // The engine sets the result of every run that ended ok.
    return { result: out.result as R };
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSig);
  }
}

/** A change request made in place of a run: --json prints {"change": {...}}; exit 0. */
function changeRequested(c: ChangeRequest): Output {
  return {
    json: { change: c },
    text: [
      `change request ${c.id}: ${c.command} of ${c.instance} on protected environment ${c.env}, asked by ${c.requestedBy}: ${c.why}`,
      'plan:',
      ...c.plan.map((s, i) => `  ${i + 1}. ${s}`),
      `back-out: ${c.backout}`,
      `another admin of ${c.env} approves it: opsdeck change approve ${c.id}; then run the same command again, or: opsdeck change run ${c.id}`,
    ].join('\n'),
  };
}

/** Runs a plan and describes its result for people; --json prints the result itself. */
export async function runPlan<S, R>(app: App, g: GlobalOpts, plan: Plan<S, R>, describe: (r: R) => string, prefix?: string): Promise<Output> {
  const end = await execute(app, g, plan, { prefix });
  return 'dryRun' in end ? end.dryRun : { json: end.result, text: describe(end.result) };
}

/**
 * A change to the inventory, as a run of the engine: the audit trail records who, when, from where
 * and `params` (never a secret: only that one was set or cleared). The checks come before, so a
 * refused change is said exactly as before and leaves no run; `apply` only writes. --dry-run shows
 * the change and makes none. When `apply` throws, its own error is reported (the run is recorded
 * as failed).
 */
export async function runChange(
  app: App,
  g: GlobalOpts,
  command: string,
  params: Record<string, unknown>,
  apply: () => Output | Promise<Output>,
  opts: { instance?: string | null; title?: string } = {},
): Promise<Output> {
  let thrown: unknown;
  const plan = changePlan(
    command,
    params,
    async () => {
      try {
        return await apply();
      } catch (err) {
        thrown = err;
        throw err;
      }
    },
    opts,
  );
  let end: Ended<Output | undefined>;
  try {
    end = await execute(app, g, plan, { alertOnFailure: false });
  } catch (err) {
    throw thrown ?? err;
  }
  if ('dryRun' in end) return end.dryRun;
  if (!end.result) throw new OpsError(`${command}: the change gave no result`);
  return end.result;
}

/** --parallel N, 1 to 64. */
export function parseParallel(value: string | undefined, fallback: number): number {
  const parallel = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new UsageError(`invalid --parallel ${value}`, 'a whole number from 1 to 64');
  return parallel;
}

export interface ManyOpts {
  all?: boolean;
  env?: string;
  parallel?: string;
}

/** One instance's end in a run over several. */
export interface ManyResult<R> {
  instance: string;
  ok: boolean;
  result?: R;
  /** With --dry-run: the plan that would have run. */
  dryRun?: unknown;
  error?: string;
  exitCode: number;
}

/** What forEachInstance returns: the output, and the results (for one target: that run's alone). */
export interface ManyOutput<R> extends Output {
  results: ManyResult<R>[];
}

/**
 * Runs one plan per instance, at most `parallel` at a time, going on past failures; a summary at the
 * end and exit 1 when any failed. Targets: the names given, --env E, or --all.
 */
export async function forEachInstance<S, R>(
  app: App,
  g: GlobalOpts,
  o: ManyOpts,
  names: string[],
  build: (name: string) => Plan<S, R>,
  describe: (r: R) => string,
  verb: string,
): Promise<ManyOutput<R>> {
  let targets = [...names];
  if (o.all || o.env) {
    if (o.env) app.inv.requireEnv(o.env);
    targets.push(
      ...app.inv
        .listInstances()
        .filter((i) => o.all || i.env === o.env)
        .map((i) => i.name),
    );
  }
  targets = [...new Set(targets)];
  if (!targets.length) throw new UsageError(`${verb}: no instances given`, 'name them, or use --env ENV or --all');
  for (const n of targets) app.inv.requireInstance(n);
  const parallel = parseParallel(o.parallel, 1);
  if (targets.length === 1 && !o.all && !o.env) {
    const end = await execute(app, g, build(targets[0]));
    if ('dryRun' in end) return { ...end.dryRun, results: [] };
    return { json: end.result, text: describe(end.result), results: [{ instance: targets[0], ok: true, result: end.result, exitCode: EXIT.OK }] };
  }

  const results: ManyResult<R>[] = [];
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const name = targets[next++];
      try {
        const end = await execute(app, g, build(name), { prefix: `${name}: ` });
        results.push('dryRun' in end ? { instance: name, ok: true, dryRun: end.dryRun.json, exitCode: EXIT.OK } : { instance: name, ok: true, result: end.result, exitCode: EXIT.OK });
      } catch (err) {
        const code = err instanceof OpsError ? err.exitCode : EXIT.FAILED;
        process.stderr.write(`${name}: ${errorMessage(err)}\n`);
        results.push({ instance: name, ok: false, error: errorMessage(err), exitCode: code });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, targets.length) }, worker));
  results.sort((a, b) => targets.indexOf(a.instance) - targets.indexOf(b.instance));
  const failed = results.filter((r) => !r.ok);
  const summary = `${verb}: ${results.length - failed.length} ok, ${failed.length} failed${failed.length ? ` (${failed.map((f) => f.instance).join(', ')})` : ''}`;
  process.stderr.write(summary + '\n');
  return {
    json: { summary, results },
    text: results.map((r) => (!r.ok ? `${r.instance}: FAILED: ${r.error}` : r.result === undefined ? `${r.instance}: dry run, nothing changed` : describe(r.result))).join('\n'),
    exitCode: failed.length ? Math.max(...failed.map((f) => f.exitCode)) : EXIT.OK,
    results,
  };
}
