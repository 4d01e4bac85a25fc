import { readFileSync, writeFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { HOOK_KINDS, describeLock, lockIsStale, type AppMetric, type Backup, type HealthCheck, type HookKind, type Hooks, type Host, type Instance } from '../../inventory/index.js';
import { makePlan, purgePlan } from '../actions/make.js';
import { prunePlan } from '../actions/retention.js';
import { DEFAULT_POLICY, checkPolicy } from '../core/retention.js';
import { DEFAULT_EXCLUDES, watchChanged, watchPlan, type WatchReport } from '../actions/watch.js';
import { comparePlan, type CompareReport } from '../actions/compare.js';
import { memoryUsed, sweep, toPrometheus } from '../health/probes.js';
import { drillPlan } from '../actions/drill.js';
import { MAINTENANCE_FILE, gitState } from '../actions/app.js';
import { maintenancePlan, updatePlan, type UpdateResult } from '../actions/update.js';
import { clonePlan, parseAge, type CloneOptions } from '../actions/clone.js';
import { splitWords } from '../core/words.js';
import { backupPlan } from '../actions/backup.js';
import { checkLogin, establishTrust } from '../actions/host.js';
import { hostShell } from '../deps/deps.js';
import { checkDbLogin } from '../actions/dbcheck.js';
import { restorePlan } from '../actions/restore.js';
import { recoverPlan } from '../actions/recover.js';
import { exportPlan, verifyPlan } from '../actions/verify.js';
import { formatPgUrl, parsePgUrl } from '../databases/postgres.js';
import type { Plan } from '../core/plan.js';
import { formatBytes } from '../core/events.js';
import { EXIT, OpsError, UsageError, errorMessage } from '../core/errors.js';
import { checkAddress, checkHealth, checkHooks, checkKeyFile, checkLocalPath, checkMetric, checkName, checkPort, checkRef, checkRemotePath, checkUrl, checkUser, checkWatchExclude } from '../../inventory/validate.js';
import { openApp, type App, type GlobalOpts } from '../app/app.js';
import { saveSetting } from '../app/settings.js';
import { exportInventory, importInventory } from '../../inventory/transfer.js';
import { Engine } from '../engine/engine.js';
import { runFailedAlert, sendAlert, type Alert, type Delivery } from '../notify/notify.js';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { confirm, interactive, readSecret } from './prompt.js';
import { age, jsonLinesRenderer, table, textRenderer } from './render.js';
import { duration, percent } from '../core/format.js';
import { printable, printableText } from '../core/display.js';

/** Output of a command: what --json prints, and the text for people. */
interface Output {
  json: unknown;
  text: string;
  exitCode?: number;
}

type Handler = (app: App, g: GlobalOpts, ...args: any[]) => Promise<Output>;

let exitCode = 0;

function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals() as GlobalOpts;
}

/** Wraps a handler: opens the app, prints the result (text or --json) and maps errors to exit codes. */
function action(fn: Handler) {
  return async (...args: any[]) => {
    const cmd = args[args.length - 1] as Command;
    const g = globals(cmd);
    let app: App | undefined;
    try {
      app = openApp(g.home);
      const out = await fn(app, g, ...args.slice(0, -1));
      if (g.json && out.json !== undefined) process.stdout.write(JSON.stringify(out.json, null, 2) + '\n');
      // Text for people may hold what hosts sent (names, errors): never a raw control sequence.
      else if (out.text) process.stdout.write(printableText(out.text.endsWith('\n') ? out.text : out.text + '\n'));
      exitCode = out.exitCode ?? EXIT.OK;
    } catch (err) {
      exitCode = reportError(err, g);
    } finally {
      await app?.close().catch(() => {});
    }
  };
}

function reportError(err: unknown, g: GlobalOpts): number {
  const code = err instanceof OpsError ? err.exitCode : EXIT.FAILED;
  const hint = err instanceof OpsError ? err.hint : undefined;
  if (g.json) process.stdout.write(JSON.stringify({ error: errorMessage(err), hint, exitCode: code }, null, 2) + '\n');
  process.stderr.write(printableText(`opsdeck: ${errorMessage(err)}\n${hint ? `  fix: ${hint}\n` : ''}`));
  if (!(err instanceof OpsError) && process.env.OPSDECK_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
  return code;
}

/** Runs a plan through the engine with the renderers the flags ask for. */
async function runPlan<S, R>(app: App, g: GlobalOpts, plan: Plan<S, R>, describe: (r: R) => string, prefix?: string): Promise<Output> {
  // An engine per run: runs side by side (--parallel) keep their event streams apart.
  const engine = new Engine(app.inv);
  engine.subscribe(g.json ? jsonLinesRenderer() : textRenderer(process.stderr, undefined, prefix));
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
      process.stderr.write(`opsdeck: ${sig} ignored: already stopping after ${received}, undoing what was done. Wait for it: killing opsdeck now would leave ${plan.instance ?? 'the run'} half-changed\n`);
      return;
    }
    received = sig;
    process.stderr.write(`opsdeck: ${sig} received: cancelling ${plan.command}${plan.instance ? ` on ${plan.instance}` : ''} and undoing what was done\n`);
    ac.abort(new OpsError(`cancelled by ${sig}${sig === 'SIGHUP' ? ' (the terminal or SSH session went away)' : ''}`));
  };
  for (const s of STOP_SIGNALS) process.on(s, onSig);
  try {
    const out = await engine.run(plan, { dryRun: g.dryRun, signal: ac.signal });
    if (out.status === 'dry-run') return { json: { dryRun: true, command: plan.command, steps: plan.steps.map((s) => s.title), preview: out.preview }, text: (out.preview ?? []).join('\n') };
    if (out.status !== 'ok') {
      // A hang-up means nobody is at the terminal any more: alert as for cron.
      if (unattended(g) || received === 'SIGHUP') await alert(app, runFailedAlert({ command: plan.command, instance: plan.instance, error: out.error ?? 'failed', runId: out.runId, home: app.home }));
      throw new OpsError(out.error ?? 'failed', out.exitCode, out.hint ?? `see the run with: opsdeck runs ${out.runId}`);
    }
    return { json: out.result, text: describe(out.result as R) };
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSig);
  }
}

/** Signals that stop a run: ctrl-c, kill/systemd, and the terminal hanging up. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Nobody is watching: cron (--yes) or no terminal. Failures then go out as alerts. */
const unattended = (g: GlobalOpts) => !!g.yes || !interactive();

/** Sends an alert; a channel that cannot be reached is said on stderr and changes nothing else. */
async function alert(app: App, a: Alert): Promise<Delivery[]> {
  const sent = await sendAlert(app.inv, a);
  for (const d of sent) if (!d.ok) process.stderr.write(`opsdeck: could not send the ${d.channel} alert: ${d.error}\n`);
  return sent;
}

/**
 * Runs one plan per instance, at most `parallel` at a time, going on past failures; a summary at the
 * end and exit 1 when any failed. Targets: the names given, --env E, or --all.
 */
async function forEachInstance<R>(
  app: App,
  g: GlobalOpts,
  o: { all?: boolean; env?: string; parallel?: string },
  names: string[],
  build: (name: string) => Plan<any, R>,
  describe: (r: R) => string,
  verb: string,
): Promise<Output> {
  let targets = [...names];
  if (o.all || o.env) {
    if (o.env) app.inv.requireEnv(o.env);
    targets.push(...app.inv.listInstances().filter((i) => o.all || i.env === o.env).map((i) => i.name));
  }
  targets = [...new Set(targets)];
  if (!targets.length) throw new UsageError(`${verb}: no instances given`, 'name them, or use --env ENV or --all');
  for (const n of targets) app.inv.requireInstance(n);
  const parallel = o.parallel === undefined ? 1 : Number(o.parallel);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new UsageError(`invalid --parallel ${o.parallel}`, 'a whole number from 1 to 64');
  if (targets.length === 1 && !o.all && !o.env) return runPlan(app, g, build(targets[0]), describe);

  const results: { instance: string; ok: boolean; result?: R; error?: string; exitCode: number }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const name = targets[next++];
      try {
        const out = await runPlan(app, g, build(name), describe, `${name}: `);
        results.push({ instance: name, ok: true, result: out.json as R, exitCode: 0 });
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
    text: results.map((r) => (r.ok ? describe(r.result as R) : `${r.instance}: FAILED: ${r.error}`)).join('\n'),
    exitCode: failed.length ? Math.max(...failed.map((f) => f.exitCode)) : EXIT.OK,
  };
}

function describeBackup(b: Backup): string {
  const m = b.manifest;
  return `backup ${b.id} of ${b.instance}: ${m.code ? `${m.code.files} files, ${formatBytes(m.code.bytes)}` : 'no code'}${m.db ? `; database ${formatBytes(m.db.bytes)}, ${Object.keys(m.db.tables).length} tables` : ''}`;
}

function describeWatch(r: WatchReport): string {
  if (r.baselined) return `watch ${r.instance}: baseline recorded (${r.files} files)`;
  if (!watchChanged(r)) return `watch ${r.instance}: no changes since ${r.baselineAt} (${r.files} files)`;
  const lines = [`watch ${r.instance}: ${r.added.length} added, ${r.changed.length} changed, ${r.removed.length} removed since ${r.baselineAt}`];
  // Names come from the host: escaped, so a name cannot retitle the terminal or forge a line.
  for (const p of r.added) lines.push(`  + ${printable(p)}`);
  for (const c of r.changed) lines.push(`  ~ ${printable(c.path)} (${c.what.map(printable).join(', ')})`);
  for (const p of r.removed) lines.push(`  - ${printable(p)}`);
  return lines.join('\n');
}

function describeCompare(r: CompareReport & { diff?: string }): string {
  const lines: string[] = [];
  const f = r.files;
  lines.push(`files: ${f.compared} compared; ${f.onlyInA.length} only in ${r.a}, ${f.onlyInB.length} only in ${r.b}, ${f.different.length} different`);
  for (const p of f.onlyInA) lines.push(`  < ${printable(p)}`);
  for (const p of f.onlyInB) lines.push(`  > ${printable(p)}`);
  for (const c of f.different) lines.push(`  ~ ${printable(c.path)} (${c.what.map(printable).join(', ')})`);
  if (r.database) {
    const diff = r.database.tables.filter((t) => !t.same);
    lines.push(`database: schema ${r.database.schemaSame ? 'identical' : 'DIFFERS'}; ${r.database.tables.length} tables, ${diff.length} with different contents`);
    for (const t of diff) lines.push(`  ~ ${printable(t.table)}: ${t.rowsA ?? 'missing'} rows in ${r.a}, ${t.rowsB ?? 'missing'} in ${r.b}${t.rowsA === t.rowsB ? ' (contents differ)' : ''}`);
    if (!r.database.schemaSame) lines.push(printableText(r.database.schemaDiff.trimEnd()));
  }
  lines.push(r.identical ? `${r.a} and ${r.b} are identical` : `${r.a} and ${r.b} differ`);
  if (r.diff !== undefined) lines.push(r.diff ? printableText(r.diff.trimEnd()) : '(the file is the same on both)');
  return lines.join('\n');
}

function hostView(h: Host) {
  return { name: h.name, address: h.address, port: h.port, user: h.user, become: h.become ?? null, keyFile: h.keyFile, jump: h.jump, hostKey: h.hostKey, createdAt: h.createdAt };
}

/** Confirms a change to an instance; a protected one needs its name typed (or --yes --allow-protected). */
async function confirmChange(app: App, g: GlobalOpts, name: string, question: string, allowProtected?: boolean): Promise<void> {
  if (g.dryRun) return;
  const inst = app.inv.requireInstance(name);
  const prot = app.inv.requireEnv(inst.env).protected;
  await confirm(question, { yes: g.yes, typeToConfirm: prot ? name : undefined, allowProtected });
}

/** --hook KIND=COMMAND options over existing hooks; an empty command removes that hook. */
function parseHooks(specs: string[], base: Hooks = {}): Hooks {
  const hooks = { ...base };
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const kind = spec.slice(0, eq) as HookKind;
    if (eq < 1 || !HOOK_KINDS.includes(kind)) throw new UsageError(`invalid --hook ${JSON.stringify(spec)}`, `write it as KIND=COMMAND with KIND one of ${HOOK_KINDS.join(', ')}`);
    const argv = splitWords(spec.slice(eq + 1));
    if (argv.length) hooks[kind] = argv;
    else delete hooks[kind];
  }
  return checkHooks(hooks);
}

/** --health-url/--health-status/--health-text over an existing check; undefined when none was given. */
function parseHealth(o: { healthUrl?: string; healthStatus?: string; healthText?: string }, base: HealthCheck | null, fallbackUrl: string | null): HealthCheck | undefined {
  if (o.healthUrl === undefined && o.healthStatus === undefined && o.healthText === undefined) return undefined;
  const url = o.healthUrl ?? base?.url ?? fallbackUrl;
  if (!url) throw new UsageError('a health check needs a URL', 'give --health-url, or set the instance URL with --url');
  const status = o.healthStatus !== undefined ? Number(o.healthStatus) : base?.status ?? 200;
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new UsageError(`invalid --health-status ${o.healthStatus}`, 'an HTTP status such as 200');
  const text = o.healthText ?? base?.text;
  return checkHealth({ url, status, ...(text ? { text } : {}) });
}

/**
 * --metric NAME=sql:QUERY or NAME=cmd:COMMAND over the existing metrics; NAME= removes one. The
 * query runs read-only; the command runs with sh in the instance's directory and must only read.
 */
export function parseMetrics(specs: string[], base: AppMetric[] = []): AppMetric[] {
  const out = new Map(base.map((m) => [m.name, m]));
  for (const spec of specs) {
    const m = /^([a-z][a-z0-9_]{0,39})=(?:(sql|cmd):([\s\S]+))?$/.exec(spec);
    if (!m || /\0/.test(spec)) {
      throw new UsageError(`invalid --metric ${JSON.stringify(spec)}`, 'write it as NAME=sql:QUERY or NAME=cmd:COMMAND (NAME in lower case, letters, digits, _); NAME= removes it');
    }
    const [, name, kind, source] = m;
    if (!kind) {
      if (!out.delete(name)) throw new UsageError(`there is no metric ${name} to remove`, `the metrics are: ${[...out.keys()].join(', ') || 'none'}`);
      continue;
    }
    // The one check of a metric, which inventory import makes too.
    out.set(name, checkMetric({ name, kind: kind as AppMetric['kind'], source }));
  }
  return [...out.values()];
}

/** A database password, never from argv: the file given, OPSDECK_DB_PASSWORD, or the prompt. */
function readDbPassword(dbUrl: string, file?: string): Promise<string | undefined> {
  return readSecret(`password of database role ${parsePgUrl(dbUrl).user}`, { file, envVar: 'OPSDECK_DB_PASSWORD' });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function trustPrompt(g: GlobalOpts, host: Host) {
  return async (offered: { fingerprint: string; type: string; replacing?: string }) => {
    if (offered.replacing) {
      // A changed key is what a machine in the middle looks like: --yes never answers this.
      const what = `host ${host.name} (${host.address}:${host.port}) now offers the ${offered.type} key ${offered.fingerprint}, but the key pinned for it is ${offered.replacing}`;
      if (!interactive()) {
        throw new UsageError(`${what}: refused; --yes accepts only a host's first key, and a changed key can mean someone is intercepting the connection`, `check the key on the host itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run: opsdeck host trust ${host.name} --fingerprint ${offered.fingerprint}`);
      }
      await confirm(`${what}.\n  old (pinned): ${offered.replacing}\n  new (offered): ${offered.fingerprint}\nA changed key can mean someone is intercepting the connection. Replace the pinned key?`, {});
      return;
    }
    const q = `host ${host.name} (${host.address}:${host.port}) offers the ${offered.type} key ${offered.fingerprint}. Trust it?`;
    if (g.yes) {
      process.stderr.write(`trusting new host key of ${host.name}: ${offered.fingerprint} (--yes accepts new keys)\n`);
      return;
    }
    if (!interactive()) throw new UsageError(`host ${host.name} offers ${offered.fingerprint}, which is not trusted yet, and there is no terminal to ask`, 'pass --fingerprint SHA256:... (check it with ssh-keygen -lf on the host), or --yes to accept it');
    await confirm(q, {});
  };
}

export function buildProgram(): Command {
  const program = new Command('opsdeck')
    .description('Terminal operations console: inventory, verified backups and safe restores of web-application instances over SSH.\nRun with no command on a terminal to open the full-screen console.')
    .option('--home <dir>', 'opsdeck home: inventory, store, keys (default $OPSDECK_HOME or ~/.local/share/opsdeck)')
    .option('--yes', 'answer every confirmation (for cron); --yes on a terminal-less run never waits')
    .option('--json', 'print one JSON document (the result) on stdout; progress goes to stderr')
    .option('--dry-run', 'print the plan and change nothing')
    .showHelpAfterError('(run opsdeck --help for usage)')
    .exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const keepOptions = (c: Command) =>
    c
      .option('--keep-daily <n>', `days to keep the newest backup of (default ${DEFAULT_POLICY.daily})`)
      .option('--keep-weekly <n>', `weeks, before those (default ${DEFAULT_POLICY.weekly})`)
      .option('--keep-monthly <n>', `months, before those (default ${DEFAULT_POLICY.monthly})`)
      .option('--keep-yearly <n>', `years, before those (default ${DEFAULT_POLICY.yearly})`);
  const policyOf = (o: any) => ({ daily: o.keepDaily, weekly: o.keepWeekly, monthly: o.keepMonthly, yearly: o.keepYearly });

  // ---- environments
  const env = program.command('env').description('environments (dev, uat, preprod, prod)');
  env
    .command('add <name>')
    .description('add an environment')
    .option('--protected', 'changes need a typed confirmation (or --yes --allow-protected)')
    .action(
      action(async (app, _g, name: string, o: { protected?: boolean }) => {
        const e = app.inv.addEnv(checkName('environment', name), !!o.protected);
        return { json: e, text: `environment ${e.name} added${e.protected ? ' (protected)' : ''}` };
      }),
    );
  keepOptions(env.command('set <name>').description("set an environment's retention policy (backups prune uses it)"))
    .option('--default-retention', 'go back to the default policy')
    .option('--max-backup-age <age>', 'backups check alerts when the newest good backup is older (e.g. 26h, 2d; default 26h)')
    .action(
      action(async (app, _g, name: string, o: any) => {
        app.inv.requireEnv(name);
        if (o.maxBackupAge !== undefined) {
          parseAge(o.maxBackupAge);
          app.inv.setMaxBackupAge(name, o.maxBackupAge);
          if (!Object.values(policyOf(o)).some((v) => v !== undefined) && !o.defaultRetention) {
            return { json: { name, maxBackupAge: o.maxBackupAge }, text: `environment ${name}: backups older than ${o.maxBackupAge} are alerted` };
          }
        }
        const policy = o.defaultRetention ? null : checkPolicy(policyOf(o), app.inv.retentionOf(name) ?? DEFAULT_POLICY);
        app.inv.setRetention(name, policy);
        const p = policy ?? DEFAULT_POLICY;
        return { json: { name, retention: p }, text: `environment ${name} keeps ${p.daily} daily, ${p.weekly} weekly, ${p.monthly} monthly, ${p.yearly} yearly backups` };
      }),
    );
  env.command('list').description('list environments').action(
    action(async (app) => {
      const envs = app.inv.listEnvs();
      return { json: envs, text: envs.length ? table(envs.map((e) => [e.name, e.protected ? 'protected' : '']), ['NAME', '']) : 'no environments yet: opsdeck env add NAME' };
    }),
  );

  // ---- hosts
  const host = program.command('host').description('hosts reached over SSH');
  host
    .command('add <name>')
    .description('add a host: its key is checked and pinned, and the login tried, before it is saved')
    .requiredOption('--address <addr>', 'DNS name or IP address')
    .option('--port <n>', 'SSH port', '22')
    .option('--user <user>', 'login user', process.env.USER || 'root')
    .option('--key <file>', 'private key file (else ssh-agent)')
    .option('--jump <host>', 'reach it through this host (already in the inventory)')
    .option('--fingerprint <SHA256:...>', 'the host key fingerprint to expect (else asked, or --yes accepts it)')
    .option('--become <user>', "run commands on instance trees as this user, through sudo -n (the trees' owner, e.g. www-data)")
    .action(
      action(async (app, g, name: string, o: any) => {
        const h: Host = {
          name: checkName('host', name),
          address: checkAddress(o.address),
          port: checkPort(o.port),
          user: checkUser(o.user),
          // Checked now (a private key, readable, no passphrase) and kept absolute: cron runs elsewhere.
          keyFile: o.key ? checkKeyFile(resolve(o.key)) : null,
          jump: o.jump ? app.inv.requireHost(checkName('host', o.jump)).name : null,
          hostKey: null,
          become: o.become !== undefined ? checkUser(o.become) : null,
          createdAt: '',
        };
        if (app.inv.getHost(h.name)) throw new UsageError(`host ${h.name} already exists`, `see it with: opsdeck host show ${h.name}`);
        h.hostKey = await establishTrust(app, h, o.fingerprint, await trustPrompt(g, h));
        const login = await checkLogin(app, h);
        const saved = app.inv.addHost(h);
        return { json: { ...hostView(saved), system: login.system, shell: login.shell }, text: `host ${h.name} added: ${login.system}\n  key ${h.hostKey}${login.become ? `\n  trees as ${login.become.user} (uid ${login.become.uid}), through sudo -n` : ''}` };
      }),
    );
  host.command('list').description('list hosts').action(
    action(async (app) => {
      const hs = app.inv.listHosts();
      return {
        json: hs.map(hostView),
        text: hs.length ? table(hs.map((h) => [h.name, `${h.user}@${h.address}:${h.port}`, h.become ?? '', h.jump ?? '', h.hostKey ?? 'NOT PINNED']), ['NAME', 'LOGIN', 'BECOME', 'JUMP', 'HOST KEY']) : 'no hosts yet: opsdeck host add NAME --address ADDR',
      };
    }),
  );
  host.command('show <name>').description('show one host').action(
    action(async (app, _g, name: string) => {
      const h = app.inv.requireHost(name);
      const insts = app.inv.listInstances().filter((i) => i.host === h.name);
      return {
        json: { ...hostView(h), instances: insts.map((i) => i.name) },
        text: `host ${h.name}\n  login     ${h.user}@${h.address}:${h.port}\n  become    ${h.become ? `${h.become} (sudo -n -u ${h.become})` : '-'}\n  key file  ${h.keyFile ?? '(ssh-agent)'}\n  jump      ${h.jump ?? '-'}\n  host key  ${h.hostKey ?? 'not pinned'}\n  instances ${insts.map((i) => i.name).join(', ') || '-'}`,
      };
    }),
  );
  host.command('check <name>').description('connect, check the host key, log in, run uname, test the login shell and sudo -n for --become').action(
    action(async (app, _g, name: string) => {
      const h = app.inv.requireHost(name);
      const r = await checkLogin(app, h);
      return {
        json: { name: h.name, ok: true, hostKey: h.hostKey, ...r },
        text: `host ${h.name}: ok\n  ${r.system}\n  ${r.uptime}\n  key ${h.hostKey}\n  login shell ${r.shell}: reads opsdeck's quoting exactly${r.become ? `\n  become ${r.become.user} (uid ${r.become.uid}): sudo -n works` : ''}`,
      };
    }),
  );
  host
    .command('set <name>')
    .description('change how opsdeck acts on a host: --become USER runs commands on its instance trees as USER through sudo -n')
    .option('--become <user>', "run commands on instance trees as this user (the trees' owner, e.g. www-data); sudo -n must allow it")
    .option('--no-become', 'run them as the login user again')
    .action(
      action(async (app, _g, name: string, o: { become?: string | false }) => {
        const h = app.inv.requireHost(checkName('host', name));
        if (o.become === undefined) throw new UsageError('nothing to change', `give --become USER or --no-become (see: opsdeck host show ${h.name})`);
        const become = o.become === false ? null : checkUser(o.become);
        // Tried before it is saved, as host add tries the key: a rule that wants a password is refused now.
        const login = become ? await checkLogin(app, { ...h, become }) : undefined;
        app.inv.setHostBecome(h.name, become);
        return {
          json: { ...hostView(app.inv.requireHost(h.name)), ...(login?.become && { uid: login.become.uid }) },
          text: become ? `host ${h.name}: commands on instance trees run as ${become} (uid ${login!.become!.uid}), through sudo -n` : `host ${h.name}: commands on instance trees run as the login user ${h.user}`,
        };
      }),
    );
  host
    .command('trust <name>')
    .description('pin the key the host offers now (after a legitimate key change): replacing a pinned key needs --fingerprint, or a yes at the prompt that shows both keys')
    .option('--fingerprint <SHA256:...>', 'the fingerprint to expect (check it on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)')
    .action(
      action(async (app, g, name: string, o: { fingerprint?: string }) => {
        const h = app.inv.requireHost(name);
        const fp = await establishTrust(app, h, o.fingerprint, await trustPrompt(g, h));
        app.inv.pinHostKey(h.name, fp);
        return { json: { name: h.name, hostKey: fp, previous: h.hostKey }, text: `host ${h.name}: key ${fp} pinned${h.hostKey && h.hostKey !== fp ? ` (was ${h.hostKey})` : ''}` };
      }),
    );
  host.command('remove <name>').description('remove a host from the inventory (nothing on the host changes)').action(
    action(async (app, _g, name: string) => {
      app.inv.removeHost(name);
      return { json: { removed: name }, text: `host ${name} removed from the inventory` };
    }),
  );

  // ---- instances
  const inst = program.command('instance').description('application instances: a code tree plus a database');
  inst
    .command('add <name>')
    .description('take over an existing instance')
    .requiredOption('--host <host>', 'host it lives on')
    .requiredOption('--path <dir>', 'absolute path of its code tree')
    .requiredOption('--env <env>', 'environment')
    .option('--url <url>', 'its public URL')
    .option('--db <url>', 'postgres://ROLE@HOST:PORT/DB as seen from the host (the password: OPSDECK_DB_PASSWORD, --db-password-file or the prompt)')
    .option('--db-password-file <file>', 'read the database password from this file')
    .option('--branch <branch>', 'git branch it follows')
    .option('--no-db-check', 'do not log in to the database first (it is down now); the first backup will tell')
    .action(
      action(async (app, _g, name: string, o: any) => {
        checkName('instance', name);
        const h = app.inv.requireHost(checkName('host', o.host));
        app.inv.requireEnv(checkName('environment', o.env));
        const path = checkRemotePath(o.path);
        app.inv.refuseNested(name, h.name, path);
        const dbUrl = o.db ? formatPgUrl(parsePgUrl(o.db)) : null;
        if (o.url) checkUrl(o.url);
        if (o.branch) checkRef(o.branch);
        const pw = dbUrl ? await readDbPassword(dbUrl, o.dbPasswordFile) : undefined;
        // As the host's become user: the login user may not even see into the web user's directory.
        const there = await hostShell(app, h, true).exec(['test', '-d', path]);
        if (there.code !== 0) throw new UsageError(`${path} is not a directory on host ${h.name}`, 'check the path, or make a new instance with: opsdeck instance make');
        // As host add tries the key: the password is tried now, the way backups will use it.
        if (dbUrl && o.dbCheck !== false) await checkDbLogin(app, h, name, dbUrl, pw);
        // Taking over: what is deployed there, as git sees it.
        const git = await gitState(app, { name, host: h.name, path } as Instance);
        const i = app.inv.addInstance({ name, host: h.name, path, env: o.env, url: o.url ?? null, dbUrl, branch: o.branch ?? git?.branch ?? null, revision: git?.revision ?? null, dbPassword: pw });
        const found = git ? `; git ${git.branch ? `branch ${git.branch}, ` : ''}${git.describe ?? git.revision.slice(0, 10)}` : '';
        return { json: i, text: `instance ${i.name} added: ${i.host}:${i.path} (${i.env})${dbUrl ? `, database ${dbUrl}` : ''}${found}` };
      }),
    );
  inst
    .command('make <name>')
    .description('make a new instance: the code at REF, an empty database, its install hooks, then registered; a failure leaves nothing behind')
    .requiredOption('--host <host>', 'host to make it on')
    .requiredOption('--path <dir>', 'absolute path for its code tree (must not exist)')
    .requiredOption('--env <env>', 'environment')
    .requiredOption('--repo <git>', 'git repository (URL, user@host:path, or a path on the host)')
    .requiredOption('--ref <ref>', 'tag or branch to check out')
    .option('--db <url>', 'postgres://ROLE@HOST:PORT/DB (created when missing; the password as for instance add)')
    .option('--db-password-file <file>', 'read the database password from this file')
    .option('--url <url>', 'its public URL')
    .option('--hook <kind=command>', `an app hook (${HOOK_KINDS.join(', ')}); repeatable`, collect, [])
    .option('--health-url <url>', 'URL the health check asks')
    .option('--health-status <n>', 'HTTP status it must answer (default 200)')
    .option('--health-text <text>', 'text the page must contain')
    .option('--local <path>', 'a file or directory that belongs to this instance alone; repeatable', collect, [])
    .action(
      action(async (app, g, name: string, o: any) => {
        checkName('instance', name);
        const host = app.inv.requireHost(checkName('host', o.host)).name;
        app.inv.requireEnv(checkName('environment', o.env));
        const dbUrl = o.db ? formatPgUrl(parsePgUrl(o.db)) : null;
        const url = o.url ? checkUrl(o.url) : null;
        const dbPassword = dbUrl ? await readDbPassword(dbUrl, o.dbPasswordFile) : undefined;
        const path = checkRemotePath(o.path);
        // Refused before anything is made; the register step checks again.
        app.inv.refuseNested(name, host, path);
        const plan = makePlan(app, {
          name,
          host,
          path,
          env: o.env,
          repo: o.repo,
          ref: o.ref,
          url,
          dbUrl,
          dbPassword,
          hooks: parseHooks(o.hook),
          health: parseHealth(o, null, url) ?? null,
          localPaths: o.local.map(checkLocalPath),
        });
        return runPlan(app, g, plan, (i) => `instance ${i.name} made on ${i.host}:${i.path} (${i.env}) at ${i.revision?.slice(0, 10) ?? o.ref}${i.dbUrl ? `, database ${i.dbUrl}` : ''}`);
      }),
    );
  inst
    .command('list')
    .description('list instances')
    .option('--env <env>', 'only this environment')
    .action(
      action(async (app, _g, o: { env?: string }) => {
        const list = app.inv.listInstances().filter((i) => !o.env || i.env === o.env);
        const newest = app.inv.latestBackupTimes();
        const rows = list.map((i) => ({ ...i, lastBackup: newest.get(i.name) ?? null }));
        return {
          json: rows,
          text: rows.length ? table(rows.map((i) => [i.name, i.env, i.host, i.path, age(i.lastBackup)]), ['NAME', 'ENV', 'HOST', 'PATH', 'LAST BACKUP']) : 'no instances yet: opsdeck instance add NAME --host H --path DIR --env E',
        };
      }),
    );
  inst.command('show <name>').description('show one instance').action(
    action(async (app, _g, name: string) => {
      const i = app.inv.requireInstance(name);
      const backups = app.inv.listBackups(name);
      const e = app.inv.requireEnv(i.env);
      return {
        json: { ...i, protected: e.protected, backups: backups.length, lastBackup: backups[0]?.createdAt ?? null },
        text:
          `instance ${i.name}\n  env       ${i.env}${e.protected ? ' (protected)' : ''}\n  host      ${i.host}\n  path      ${i.path}\n  url       ${i.url ?? '-'}\n` +
          `  database  ${i.dbUrl ?? '-'}${i.dbUrl ? (i.hasDbPassword ? ' (password stored, encrypted)' : ' (no password stored)') : ''}\n  branch    ${i.branch ?? '-'}\n` +
          `  revision  ${i.revision ?? '-'}\n  state     ${i.maintenanceSince ? `IN MAINTENANCE since ${i.maintenanceSince}` : 'live'}\n` +
          `  health    ${i.health ? `${i.health.url} expects ${i.health.status}${i.health.text ? ` and ${JSON.stringify(i.health.text)}` : ''}` : i.url ? `${i.url} expects 200` : '-'}\n` +
          HOOK_KINDS.map((k) => `  hook ${k.padEnd(16)}${i.hooks[k] ? i.hooks[k]!.map((a) => (/^[\w./=:@%+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ') : k.startsWith('maintenance') ? `(default: ${MAINTENANCE_FILE})` : '-'}\n`).join('') +
          `  local     ${i.localPaths.join(', ') || '-'}\n` +
          i.metrics.map((m) => `  metric    ${m.name} = ${m.kind}:${m.source}\n`).join('') +
          `  backups   ${backups.length}, last ${age(backups[0]?.createdAt)}`,
      };
    }),
  );
  inst
    .command('remove <name>')
    .description('remove an instance from the inventory; with --purge also delete its code tree and database (after a last backup)')
    .option('--purge', 'also delete its code tree and drop its database, after a last backup')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected instance without a typed confirmation'))
    .action(
      action(async (app, g, name: string, o: { purge?: boolean; allowProtected?: boolean }) => {
        const i = app.inv.requireInstance(name);
        if (o.purge) {
          const plan = purgePlan(app, name);
          await confirmChange(app, g, name, `DELETE ${i.host}:${i.path} and its database, and remove ${name}? A last backup is taken first.`, o.allowProtected);
          return runPlan(app, g, plan, (r) => `instance ${r.removed} deleted and removed; its last backup is ${r.finalBackup}`);
        }
        await confirm(`remove instance ${i.name} from the inventory?`, { yes: g.yes });
        app.inv.removeInstance(name);
        return { json: { removed: name }, text: `instance ${name} removed from the inventory (nothing on ${i.host} was touched)` };
      }),
    );

  inst
    .command('set <name>')
    .description('change an instance: URL, branch, hooks, health check, local files, metrics')
    .option('--url <url>', 'its public URL')
    .option('--branch <branch>', 'the git branch update follows')
    .option('--hook <kind=command>', `an app hook (${HOOK_KINDS.join(', ')}); an empty command removes it; repeatable`, collect, [])
    .option('--health-url <url>', 'URL the health check asks')
    .option('--health-status <n>', 'HTTP status it must answer (default 200)')
    .option('--health-text <text>', 'text the page must contain')
    .option('--local <path>', 'a file or directory (relative) that belongs to this instance alone; repeatable', collect, [])
    .option('--no-local', 'forget every local path')
    .option('--watch-exclude <pattern>', `what watch leaves out: a name anywhere, or a path with a slash; repeatable (default ${DEFAULT_EXCLUDES.join(' ')})`, collect, [])
    .option('--db-password', 'store the database password again: from OPSDECK_DB_PASSWORD, --db-password-file or the prompt')
    .option('--db-password-file <file>', 'with --db-password: read it from this file')
    .option('--metric <name=kind:source>', 'an app metric the health panels chart: NAME=sql:QUERY (run read-only) or NAME=cmd:COMMAND (run in the instance directory, must print one number); NAME= removes it; repeatable', collect, [])
    .action(
      action(async (app, _g, name: string, o: any) => {
        const i = app.inv.requireInstance(name);
        const patch: Parameters<typeof app.inv.updateInstance>[1] = {};
        if (o.url !== undefined) patch.url = checkUrl(o.url);
        if (o.branch !== undefined) patch.branch = checkRef(o.branch);
        if (o.hook.length) patch.hooks = parseHooks(o.hook, i.hooks);
        const health = parseHealth(o, i.health, o.url ?? i.url);
        if (health) patch.health = health;
        if (o.local === false) patch.localPaths = [];
        else if (Array.isArray(o.local) && o.local.length) patch.localPaths = [...new Set([...i.localPaths, ...o.local.map(checkLocalPath)])];
        if (o.watchExclude.length) {
          patch.watchExcludes = (o.watchExclude as string[]).map(checkWatchExclude);
        }
        if (o.metric.length) {
          patch.metrics = parseMetrics(o.metric, i.metrics);
          if (patch.metrics.some((m) => m.kind === 'sql') && !i.dbUrl) throw new UsageError(`${name} has no database for an sql: metric`, 'use a cmd: metric, or give the instance a database');
        }
        if (o.dbPassword || o.dbPasswordFile) {
          if (!i.dbUrl) throw new UsageError(`${name} has no database`, 'give it one when adding the instance (--db)');
          const pw = await readDbPassword(i.dbUrl, o.dbPasswordFile);
          if (!pw) throw new UsageError('no database password given', 'put it in OPSDECK_DB_PASSWORD, give --db-password-file FILE, or run at a terminal to be asked');
          app.inv.setDbPassword(name, pw);
          if (Object.keys(patch).length === 0) return { json: app.inv.requireInstance(name), text: `instance ${name}: database password stored (encrypted)` };
        }
        if (Object.keys(patch).length === 0) throw new UsageError('nothing to change', 'give at least one option; see opsdeck instance set --help');
        const after = app.inv.updateInstance(name, patch);
        return { json: after, text: `instance ${name} updated: ${Object.keys(patch).join(', ')}` };
      }),
    );

  program
    .command('maintenance <instance> <mode>')
    .description('put an instance in maintenance (on) or take it out (off)')
    .action(
      action(async (app, g, name: string, mode: string) =>
        runPlan(app, g, maintenancePlan(app, name, mode), (r) => `${r.instance} is ${r.maintenance ? 'in maintenance' : 'out of maintenance'}`),
      ),
    );
  const describeUpdate = (r: UpdateResult) => `${r.instance}: ${r.from.slice(0, 10)} -> ${r.to.slice(0, 10)} (${r.commits} commits); backup ${r.backup} was taken first`;
  program
    .command('update [instance...]')
    .description('update instances to the tip of their branch: backup, maintenance, checkout, migrate, health check; undone on failure')
    .option('--all', 'every instance')
    .option('--env <env>', 'every instance of this environment')
    .option('--parallel <n>', 'how many at once (default 1)')
    .addOption(new Option('--allow-protected', 'with --yes: allow protected instances without a typed confirmation'))
    .action(
      action(async (app, g, names: string[], o: { all?: boolean; env?: string; parallel?: string; allowProtected?: boolean }) => {
        if (names.length === 1 && !o.all && !o.env) {
          const plan = updatePlan(app, names[0]);
          await confirmChange(app, g, names[0], `update ${names[0]} to the tip of ${plan.state.ref}?`, o.allowProtected);
          return runPlan(app, g, plan, describeUpdate);
        }
        // Many at once is for cron: no questions, so --yes (and --allow-protected for protected ones).
        if (!g.yes && !g.dryRun) throw new UsageError('updating several instances asks no questions one by one', 'add --yes (and --allow-protected for protected environments)');
        return forEachInstance(app, g, o, names, (n) => {
          const inst = app.inv.requireInstance(n);
          if (app.inv.requireEnv(inst.env).protected && !o.allowProtected) throw new UsageError(`${n} is in a protected environment`, 'add --allow-protected');
          return updatePlan(app, n);
        }, describeUpdate, 'update');
      }),
    );
  program
    .command('upgrade <instance>')
    .description('upgrade an instance to a tag or revision (--to REF), safely as update does')
    .requiredOption('--to <ref>', 'the tag (or revision) to deploy')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected instance without a typed confirmation'))
    .action(
      action(async (app, g, name: string, o: { to: string; allowProtected?: boolean }) => {
        const plan = updatePlan(app, name, { to: o.to });
        await confirmChange(app, g, name, `upgrade ${name} to ${o.to}?`, o.allowProtected);
        return runPlan(app, g, plan, describeUpdate);
      }),
    );

  program
    .command('clone <source> <target>')
    .description("make the target a copy of the source (files and database), keeping the target's URL, credentials, hooks and local files")
    .option('--data-only', "copy the database only; the target's code stays")
    .option('--code-only', "copy the code tree only; the target's database stays")
    .option('--from-backup', "copy the source's newest backup instead of its live state")
    .option('--as-of <age>', 'copy the newest backup at least this old (e.g. 7d, 12h)')
    .option('--upgrade-to <ref>', 'then upgrade the copy to this tag (try an upgrade on real data)')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected target without a typed confirmation'))
    .action(
      action(async (app, g, source: string, target: string, o: CloneOptions & { upgradeTo?: string; allowProtected?: boolean }) => {
        const plan = clonePlan(app, source, target, o);
        const upgrade = o.upgradeTo !== undefined ? updatePlan(app, target, { to: o.upgradeTo }) : undefined;
        await confirmChange(app, g, target, `make ${target} a copy of ${source}? Its current ${o.dataOnly ? 'database' : o.codeOnly ? 'code' : 'code and database'} will be replaced.`, o.allowProtected);
        const cloned = await runPlan(app, g, plan, (r) => `${r.target} is now a copy of ${r.source}${r.backup ? ` as of backup ${r.backup}` : ''}${r.safetyBackup ? `; its previous state is safety backup ${r.safetyBackup}` : ''}`);
        if (!upgrade) return cloned;
        const up = await runPlan(app, g, upgrade, describeUpdate);
        return { json: { clone: cloned.json, upgrade: up.json }, text: `${cloned.text}\n${up.text}` };
      }),
    );

  // ---- backups
  program
    .command('backup [instance...]')
    .description('back up instances: code tree and database into the store, checked and with a manifest')
    .option('--all', 'every instance')
    .option('--env <env>', 'every instance of this environment')
    .option('--parallel <n>', 'how many at once (default 1)')
    .action(
      action(async (app, g, names: string[], o: { all?: boolean; env?: string; parallel?: string }) =>
        forEachInstance(app, g, o, names, (n) => backupPlan(app, n), describeBackup, 'backup'),
      ),
    );
  const backups = program
    .command('backups [instance]')
    .description('list backups, newest first')
    .action(
      action(async (app, _g, name?: string) => {
        if (name) app.inv.requireInstance(name);
        const list = app.inv.listBackups(name).map((b) => ({
          id: b.id,
          instance: b.instance,
          kind: b.kind,
          createdAt: b.createdAt,
          verified: !!b.verifiedAt,
          verifiedAt: b.verifiedAt,
          verifyFailed: !!b.verifyFailed,
          files: b.manifest.code?.files ?? null,
          codeBytes: b.manifest.code?.bytes ?? null,
          dbBytes: b.manifest.db?.bytes ?? null,
        }));
        return {
          json: list,
          text: list.length
            ? table(
                list.map((b) => [b.id, b.instance, b.kind, age(b.createdAt), b.files === null ? '-' : String(b.files), formatBytes((b.codeBytes ?? 0) + (b.dbBytes ?? 0)), b.verifyFailed ? 'FAILED' : b.verified ? 'verified' : '']),
                ['ID', 'INSTANCE', 'KIND', 'TAKEN', 'FILES', 'SIZE', 'VERIFIED'],
              )
            : 'no backups yet: opsdeck backup INSTANCE',
        };
      }),
    );
  backups
    .command('check [instance...]')
    .description("is every instance's newest good backup younger than its environment's limit (default 26h)? exit 1, and alerts when unattended, if not")
    .action(
      action(async (app, g, names: string[]) => {
        const insts = names.length ? names.map((n) => app.inv.requireInstance(n)) : app.inv.listInstances();
        const newest = app.inv.latestBackupTimes();
        const rows = insts.map((i) => {
          const limit = app.inv.maxBackupAge(i.env) ?? '26h';
          const at = newest.get(i.name) ?? null;
          const ok = at !== null && Date.now() - Date.parse(at) <= parseAge(limit);
          return { instance: i.name, env: i.env, newestBackup: at, limit, ok };
        });
        const late = rows.filter((r) => !r.ok);
        if (late.length && unattended(g)) {
          await alert(app, {
            subject: `${late.length} instance${late.length > 1 ? 's have' : ' has'} no recent backup`,
            body: late.map((r) => `${r.instance} (${r.env}): newest good backup ${r.newestBackup ? `${age(r.newestBackup)}, at ${r.newestBackup}` : 'never'}; the limit is ${r.limit}`).join('\n') + `\n\nSee them with: opsdeck --home ${app.home} backups check`,
            fields: { event: 'backup-too-old', instances: late },
          });
        }
        return {
          json: rows,
          text: table(rows.map((r) => [r.instance, r.env, age(r.newestBackup), r.limit, r.ok ? 'ok' : 'TOO OLD']), ['INSTANCE', 'ENV', 'NEWEST BACKUP', 'LIMIT', '']),
          exitCode: late.length ? EXIT.FAILED : EXIT.OK,
        };
      }),
    );
  keepOptions(backups.command('prune [instance]').description("drop the backups the retention policy does not keep (the environment's, or the flags'); --dry-run lists them")).action(
    action(async (app, g, name: string | undefined, o: any) => {
      if (name) app.inv.requireInstance(name);
      // The instances whose backups it decides on are locked before it decides, and until it has
      // forgotten: a backup or restore meanwhile would add a backup or lean on one being dropped.
      const locked = g.dryRun ? [] : name ? [name] : [...new Set(app.inv.listBackups().map((b) => b.instance))].sort();
      app.inv.acquireLocks(locked.map((instance) => ({ instance, command: 'backups prune' })), null);
      try {
        return await runPlan(app, g, prunePlan(app, { instance: name, policy: Object.values(policyOf(o)).some((v) => v !== undefined) ? policyOf(o) : undefined }), (r) =>
          [...r.removed.map((b) => `dropped ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt})`), `${r.removed.length} dropped, ${r.kept.length} kept`].join('\n'),
        );
      } finally {
        for (const l of locked) app.inv.releaseLock(l);
      }
    }),
  );
  backups.command('verify <id>').description('read a backup back from the store and check it against its manifest').action(
    action(async (app, g, id: string) =>
      runPlan(app, g, verifyPlan(app, id), (r) => `backup ${r.id}: ${r.verified ? 'verified: every stream matches its manifest' : 'DOES NOT MATCH: ' + r.problems.join('; ')}`),
    ),
  );
  backups.command('export <id> <file>').description('write a backup as one portable tar (manifest.json, code.tar, db.sql)').action(
    action(async (app, g, id: string, file: string) => runPlan(app, g, exportPlan(app, id, file), (r) => `backup ${r.id} written to ${r.file}`)),
  );

  // ---- restore
  program
    .command('restore <instance>')
    .description('restore a backup of an instance onto it or onto another (--to); a safety backup is taken first')
    .option('--backup <id>', 'which backup (default: the newest that did not fail verification)')
    .option('--to <instance>', 'restore onto this instance instead')
    .option('--allow-failed-backup', 'with --backup: restore it even though its last verification failed')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected target without a typed confirmation'))
    .action(
      action(async (app, g, name: string, o: { backup?: string; to?: string; allowProtected?: boolean; allowFailedBackup?: boolean }) => {
        const plan = restorePlan(app, name, o);
        const target = plan.state.target;
        await confirmChange(
          app,
          g,
          target.name,
          `restore backup ${plan.state.backup.id} of ${name} (${age(plan.state.backup.createdAt)}) onto ${target.name} at ${target.host}:${target.path}? Its code and database will be replaced.`,
          o.allowProtected,
        );
        return runPlan(app, g, plan, (r) => `restored backup ${r.backup} onto ${r.target}${r.safetyBackup ? ` (its previous state is safety backup ${r.safetyBackup})` : ''}`);
      }),
    );

  program
    .command('recover <instance>')
    .description('put right an instance a restore, clone or drill left half-restored (killed, crashed, or its undo could not reach the host): finishes the run if its code tree was already swapped in, otherwise undoes it from what it recorded (previous code tree, safety backup)')
    .action(
      action(async (app, g, name: string) =>
        // No confirmation: it only completes or takes back what a run that was confirmed started.
        runPlan(app, g, recoverPlan(app, name), (r) =>
          r.action === 'finish'
            ? `${r.instance} recovered: run ${r.run} finished (its restored code tree and database are in place)`
            : `${r.instance} recovered: run ${r.run} undone, ${r.instance} is as it was before it${r.safetyBackup ? ` (database from safety backup ${r.safetyBackup})` : ''}`,
        ),
      ),
    );

  // ---- watch
  program
    .command('watch [instance...]')
    .description('file-integrity check: hash every file on the host and report what was added, changed or removed since the baseline (exit 1 if anything was)')
    .option('--accept', 'make the current state the baseline')
    .option('--all', 'every instance')
    .option('--env <env>', 'every instance of this environment')
    .option('--parallel <n>', 'how many at once (default 1)')
    .action(
      action(async (app, g, names: string[], o: { accept?: boolean; all?: boolean; env?: string; parallel?: string }) => {
        const out = await forEachInstance(app, g, o, names, (n) => watchPlan(app, n, { accept: o.accept }), describeWatch, 'watch');
        const reports = (Array.isArray((out.json as any)?.results) ? (out.json as any).results.filter((r: any) => r.ok).map((r: any) => r.result) : [out.json]) as WatchReport[];
        const changed = reports.filter((r) => r && watchChanged(r));
        if (changed.length && unattended(g)) {
          for (const r of changed) {
            await alert(app, {
              subject: `watch found changes on ${r.instance}`,
              body: `${describeWatch(r)}\n\nSee them with: opsdeck --home ${app.home} watch ${r.instance}; accept them with --accept.`,
              fields: { event: 'watch-changes', instance: r.instance, added: r.added, removed: r.removed, changed: r.changed },
            });
          }
        }
        return { ...out, exitCode: Math.max(out.exitCode ?? 0, changed.length ? EXIT.FAILED : EXIT.OK) };
      }),
    );

  program
    .command('compare <a> <b>')
    .description('compare two instances: files (added, removed, changed) and database (schema; per table, rows and whether the contents match); exit 1 if they differ')
    .option('--diff <path>', 'also show a unified diff of this file (relative to the instance)')
    .action(
      action(async (app, g, a: string, b: string, o: { diff?: string }) => {
        const out = await runPlan(app, g, comparePlan(app, a, b, { diff: o.diff }), describeCompare);
        const r = out.json as CompareReport;
        return { ...out, exitCode: r.identical ? EXIT.OK : EXIT.FAILED };
      }),
    );

  program
    .command('cron')
    .description('print crontab lines for the usual unattended jobs, for review (install with crontab -e)')
    .action(
      action(async (app) => {
        const bin = process.argv[1] && process.argv[1].endsWith('opsdeck') ? process.argv[1] : 'opsdeck';
        const o = `${bin} --home ${app.home}`;
        const lines = [
          `# opsdeck jobs for ${app.home}: review, then add with crontab -e as ${process.env.USER ?? 'this user'}.`,
          '# Each job runs with --yes and no terminal: it prints a summary line and errors only, exits',
          '# non-zero on failure, alerts the channels of "opsdeck notify list", and never runs twice on',
          '# one instance at once (a second run exits 3).',
          '# nightly backup of every instance, two at a time',
          `15 2 * * *  ${o} backup --all --parallel 2 --yes`,
          '# then drop what the retention policy does not keep',
          `45 3 * * *  ${o} backups prune --yes`,
          '# hourly file-integrity check, and an alert for any instance without a recent backup',
          `5 * * * *   ${o} watch --all --yes`,
          `35 * * * *  ${o} backups check --yes`,
          '# weekly restore drill: put the instance to prove and a scratch instance (not protected) in place',
          `30 4 * * 0  ${o} drill INSTANCE --target SCRATCH --yes`,
        ];
        return { json: { lines }, text: lines.join('\n') };
      }),
    );

  program
    .command('health [target...]')
    .description('one sweep of health: hosts (load, CPU, memory, disks, uptime), instances (site, maintenance, version, backup age), databases (size, connections, longest transaction, replication) and app metrics; exit 1 when something is down or a backup too old')
    .option('--all', 'every instance (the default when no target is given)')
    .option('--env <env>', 'every instance of this environment')
    .option('--parallel <n>', 'probes at once (default 8)', '8')
    .option('--prometheus', 'print the Prometheus text format (for node_exporter\'s textfile collector)')
    .action(
      action(async (app, g, targets: string[], o: { all?: boolean; env?: string; parallel: string; prometheus?: boolean }) => {
        const parallel = Number(o.parallel);
        if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new UsageError(`invalid --parallel ${o.parallel}`, 'a whole number from 1 to 64');
        if (o.env) app.inv.requireEnv(o.env);
        // A target is an instance, or a host (meaning its instances).
        const all = app.inv.listInstances();
        let insts = all.filter((i) => (!targets.length && !o.env) || o.all || (o.env && i.env === o.env) || targets.includes(i.name) || targets.includes(i.host));
        for (const t of targets) if (!app.inv.getInstance(t) && !app.inv.getHost(t)) throw new UsageError(`no instance or host named ${t}`, 'list them with: opsdeck instance list');
        insts = [...new Map(insts.map((i) => [i.name, i])).values()];
        const r = await sweep(app, insts, parallel);
        const bad = r.hosts.filter((h) => !h.ok).length + r.instances.filter((i) => !i.ok).length;
        if (o.prometheus) {
          process.stdout.write(toPrometheus(r));
          return { json: undefined, text: '', exitCode: bad ? EXIT.FAILED : EXIT.OK };
        }
        const hostRows = r.hosts.map((h) =>
          h.ok
            ? [h.host, 'up', h.load?.map((x) => x.toFixed(2)).join(' ') ?? '-', percent(h.cpu), percent(memoryUsed(h)), (h.disks ?? []).map((d) => `${d.mount} ${percent(d.used / d.size)}`).join(', ') || '-', h.uptimeSeconds ? `${Math.floor(h.uptimeSeconds / 86400)}d` : '-']
            : [h.host, 'DOWN', h.reason ?? '', '', '', '', ''],
        );
        const instRows = r.instances.map((i) => [
          i.instance,
          i.env,
          i.ok ? 'ok' : 'PROBLEM',
          i.http ? `${i.http.status ?? '-'} ${i.http.ms} ms` : '-',
          i.halfRestored ? 'HALF-RESTORED' : i.maintenance ? 'maintenance' : 'live',
          i.version ?? '-',
          i.backupAgeSeconds === null ? 'never' : `${duration(i.backupAgeSeconds)} ago`,
          !i.watch ? '-' : i.watch.changes ? `${i.watch.changes} CHANGED` : 'ok',
          i.reasons.join('; '),
        ]);
        const dbRows = r.instances
          .filter((i) => i.db || i.metrics)
          .map((i) => [
            i.instance,
            !i.db ? '-' : i.db.ok ? 'up' : 'DOWN',
            i.db?.sizeBytes !== undefined ? formatBytes(i.db.sizeBytes) : i.db?.reason ?? '-',
            i.db?.connections !== undefined ? `${i.db.connections}/${i.db.maxConnections}` : '-',
            i.db?.longestTransactionSeconds != null ? `${i.db.longestTransactionSeconds} s` : '-',
            i.db?.replication ? `${i.db.replication.role}${i.db.replication.lagSeconds !== null ? ` lag ${i.db.replication.lagSeconds} s` : ''}` : '-',
            Object.entries(i.metrics ?? {}).map(([k, v]) => `${k}=${typeof v === 'number' ? v : `ERROR (${v.error})`}`).join(' ') || '-',
          ]);
        return {
          json: r,
          text:
            table(hostRows, ['HOST', 'STATE', 'LOAD', 'CPU', 'MEM', 'DISKS', 'UP']) +
            '\n' +
            table(instRows, ['INSTANCE', 'ENV', 'STATE', 'HTTP', 'MODE', 'VERSION', 'BACKUP', 'WATCH', 'WHY']) +
            (dbRows.length ? '\n' + table(dbRows, ['DATABASE OF', 'STATE', 'SIZE', 'CONNS', 'LONGEST TX', 'REPLICATION', 'METRICS']) : ''),
          exitCode: bad ? EXIT.FAILED : EXIT.OK,
        };
      }),
    );

  program
    .command('drill <instance>')
    .description('restore drill: verify a backup, restore it onto a scratch instance, check it answers and matches, report RTO and RPO')
    .requiredOption('--target <scratch>', 'the scratch instance to restore onto (never a protected one)')
    .option('--backup <id>', 'which backup (default: the newest)')
    .action(
      action(async (app, g, name: string, o: { target: string; backup?: string }) => {
        const plan = drillPlan(app, name, o);
        if (!g.dryRun) await confirm(`restore drill: replace ${o.target}'s code and database with backup ${plan.state.backup.id} of ${name}?`, { yes: g.yes });
        try {
          return await runPlan(app, g, plan, (r) => `drill passed: ${r.source} restored onto ${r.target} in ${r.rtoSeconds} s (RTO); the data was ${(r.rpoSeconds / 3600).toFixed(1)} h old (RPO)\nreport: ${r.file}`);
        } catch (err) {
          // A failed drill has its report too: point at it.
          const rep = plan.state.report;
          if (rep && !rep.ok && err instanceof OpsError) throw new OpsError(err.message, err.exitCode, `the drill report is ${rep.file}${err.hint ? `; ${err.hint}` : ''}`);
          throw err;
        }
      }),
    );
  program
    .command('drills [instance]')
    .description('the restore drills run so far, newest first')
    .action(
      action(async (app, _g, name?: string) => {
        const list = app.inv.listDrills(name);
        return {
          json: list,
          text: list.length ? table(list.map((d) => [d.id, d.source, d.target, d.ok ? 'passed' : 'FAILED', d.rtoSeconds >= 0 ? `${d.rtoSeconds} s` : '-', `${(d.rpoSeconds / 3600).toFixed(1)} h`, d.file]), ['DRILL', 'SOURCE', 'TARGET', 'RESULT', 'RTO', 'RPO', 'REPORT']) : 'no drills yet: opsdeck drill INSTANCE --target SCRATCH',
        };
      }),
    );

  // ---- alerts
  const notify = program.command('notify').description('where alerts go when an unattended run fails');
  notify
    .command('email')
    .description('alerts by email over SMTP (the password: OPSDECK_SMTP_PASSWORD, --smtp-password-file or the prompt, never in the URL; kept encrypted; over smtp:// it goes only after STARTTLS)')
    .requiredOption('--smtp <url>', 'smtp://[USER@]HOST:PORT (smtps:// for TLS)')
    .requiredOption('--to <addr>', 'recipient')
    .option('--from <addr>', 'sender', `opsdeck@${hostname()}`)
    .option('--smtp-password-file <file>', "read the SMTP user's password from this file")
    .action(
      action(async (app, _g, o: { smtp: string; to: string; from: string; smtpPasswordFile?: string }) => {
        let url: URL;
        try {
          url = new URL(o.smtp);
          if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new Error();
        } catch {
          throw new UsageError(`invalid SMTP URL ${JSON.stringify(o.smtp)}`, 'write it as smtp://HOST:PORT or smtps://USER@HOST:465');
        }
        if (!/^[^\s@]+@[^\s@]+$/.test(o.to) || !/^[^\s@]+@[^\s@]+$/.test(o.from)) throw new UsageError('invalid e-mail address', 'give --to (and --from) as name@domain');
        // As with database URLs: a password in argv shows in ps and in shell history.
        if (url.password) throw new UsageError('the SMTP URL holds a password, which would be visible in the process list and shell history', `drop it from the URL (smtp://${url.username || 'USER'}@${url.host}) and give it in OPSDECK_SMTP_PASSWORD, with --smtp-password-file FILE, or at the prompt`);
        const user = decodeURIComponent(url.username);
        if (!user && o.smtpPasswordFile) throw new UsageError('an SMTP password needs a user to log in as', `name it in the URL: smtp://USER@${url.host}`);
        const password = user ? ((await readSecret(`SMTP password of ${user}`, { file: o.smtpPasswordFile, envVar: 'OPSDECK_SMTP_PASSWORD' })) ?? null) : null;
        if (user && !password) throw new UsageError(`no SMTP password given for ${user}`, 'put it in OPSDECK_SMTP_PASSWORD, give --smtp-password-file FILE, or run at a terminal to be asked');
        app.inv.setNotify('email', { smtp: url.toString(), to: o.to, from: o.from }, password);
        const tls = url.protocol === 'smtps:' ? '' : password ? '; the password goes only over STARTTLS' : '';
        return { json: { kind: 'email', smtp: url.toString(), to: o.to }, text: `alerts will be mailed to ${o.to} through ${url.host}${password ? ` (password stored encrypted${tls})` : ''}` };
      }),
    );
  notify
    .command('webhook')
    .description('alerts as a JSON POST, signed: X-Opsdeck-Signature = sha256=HMAC(secret, timestamp + "." + body)')
    .requiredOption('--url <url>', 'where to POST')
    .option('--secret-file <file>', 'read the shared secret from this file (else OPSDECK_WEBHOOK_SECRET, or the prompt)')
    .addOption(new Option('--secret <s>', 'refused: a secret in argv shows in ps and shell history').hideHelp())
    .action(
      action(async (app, _g, o: { url: string; secret?: string; secretFile?: string }) => {
        if (o.secret !== undefined) throw new UsageError('the webhook secret was given in the command line, where it is visible in the process list and shell history', 'give it in OPSDECK_WEBHOOK_SECRET, with --secret-file FILE, or at the prompt');
        const secret = await readSecret('webhook secret', { file: o.secretFile, envVar: 'OPSDECK_WEBHOOK_SECRET' });
        if (!secret) throw new UsageError('a webhook needs a secret to sign with', 'put it in OPSDECK_WEBHOOK_SECRET, give --secret-file FILE, or run at a terminal to be asked');
        app.inv.setNotify('webhook', { url: checkUrl(o.url) }, secret);
        return { json: { kind: 'webhook', url: o.url }, text: `alerts will be POSTed to ${o.url}, signed` };
      }),
    );
  notify.command('list').description('the alert channels (no secrets)').action(
    action(async (app) => {
      const list = app.inv.notifyChannels().map((c) => ({ kind: c.kind, ...c.config, secret: c.secret ? '[stored encrypted]' : null }));
      return { json: list, text: list.length ? list.map((c) => `${c.kind}: ${JSON.stringify({ ...c, kind: undefined })}`).join('\n') : 'no alert channels: opsdeck notify email|webhook ...' };
    }),
  );
  notify.command('remove <kind>').description('stop sending alerts that way (email or webhook)').action(
    action(async (app, _g, kind: string) => {
      if (!app.inv.removeNotify(kind)) throw new UsageError(`no ${kind} alert channel`, 'see them with: opsdeck notify list');
      return { json: { removed: kind }, text: `${kind} alerts removed` };
    }),
  );
  notify.command('test').description('send a test alert on every channel').action(
    action(async (app) => {
      if (!app.inv.notifyChannels().length) throw new UsageError('no alert channels to test', 'add one with: opsdeck notify email ... or notify webhook ...');
      const sent = await alert(app, { subject: 'test alert', body: `This is a test alert from opsdeck on ${hostname()} (${app.home}).`, fields: { event: 'test' } });
      const bad = sent.filter((d) => !d.ok);
      return { json: sent, text: sent.map((d) => `${d.channel}: ${d.ok ? 'sent' : `FAILED: ${d.error}`}`).join('\n'), exitCode: bad.length ? EXIT.FAILED : EXIT.OK };
    }),
  );

  const inventory = program.command('inventory').description('the inventory as one JSON file: to move it to another jump box, or keep it in git');
  inventory
    .command('export [file]')
    .description('write environments, hosts and instances as JSON (to FILE, or stdout); secrets are never written')
    .action(
      action(async (app, _g, file?: string) => {
        const { doc, secretsLeftOut } = exportInventory(app.inv);
        const text = JSON.stringify(doc, null, 2) + '\n';
        if (secretsLeftOut.length) process.stderr.write(`opsdeck: not exported (set them again after an import): ${secretsLeftOut.join(', ')}\n`);
        if (!file) {
          process.stdout.write(text);
          return { json: undefined, text: '' };
        }
        writeFileSync(file, text, { mode: 0o600 });
        return { json: { file, envs: doc.envs.length, hosts: doc.hosts.length, instances: doc.instances.length }, text: `inventory written to ${file}: ${doc.envs.length} environments, ${doc.hosts.length} hosts, ${doc.instances.length} instances` };
      }),
    );
  inventory
    .command('import <file>')
    .description('add the environments, hosts and instances of an export; all or nothing, and never over existing names')
    .action(
      action(async (app, _g, file: string) => {
        let raw: unknown;
        try {
          raw = JSON.parse(readFileSync(file, 'utf8'));
        } catch (err) {
          throw new UsageError(`cannot read ${file} as JSON: ${(err as Error).message}`, 'give a file written by opsdeck inventory export');
        }
        const r = importInventory(app.inv, raw, (u) => formatPgUrl(parsePgUrl(u)));
        return {
          json: r,
          text:
            `imported ${r.envs} environments, ${r.hosts} hosts, ${r.instances} instances` +
            (r.needPassword.length ? `\nset their database passwords (they are never exported): ${r.needPassword.map((n) => `OPSDECK_DB_PASSWORD=... opsdeck instance set ${n} --db-password`).join('; ')}` : ''),
        };
      }),
    );

  program
    .command('settings [key] [value]')
    .description('show the settings, or change one: refreshMs (health panels), connectTimeoutMs, storeRepository (before the first backup)')
    .action(
      action(async (app, _g, key?: string, value?: string) => {
        if (key !== undefined && value === undefined) throw new UsageError(`give a value for ${key}`, `for example: opsdeck settings ${key} ${key === 'refreshMs' ? '5000' : '...'}`);
        const s = key ? saveSetting(app.home, key, value!, app.inv.listBackups().length > 0) : app.settings;
        return { json: s, text: Object.entries(s).map(([k, v]) => `${k.padEnd(18)} ${v === '' ? '(default)' : v}`).join('\n') };
      }),
    );

  // ---- locks
  program
    .command('unlock <instance>')
    .description("release an instance's lock whose run is gone (killed on another machine, or its machine rebooted); says who held it, asks first, and is recorded in the audit trail")
    .action(
      action(async (app, g, name: string) => {
        app.inv.requireInstance(name);
        const held = app.inv.getLock(name);
        if (!held) return { json: { instance: name, locked: false }, text: `instance ${name} is not locked` };
        const who = describeLock(held);
        // A run still going on this machine is not stale: releasing its lock would let a second run in beside it.
        if (held.host === hostname() && !lockIsStale(held)) {
          throw new OpsError(`instance ${name} is locked by a run still going on this machine: ${who}`, EXIT.LOCKED, `wait for it to finish, or stop it first (kill ${held.pid}); unlock is for locks whose run is gone`);
        }
        if (g.dryRun) return { json: { instance: name, locked: true, heldBy: held, dryRun: true }, text: `would release the lock on ${name} held by ${who}` };
        await confirm(`release the lock on ${name} held by ${who}? Do it only if that run is gone: two runs at once on one instance can break it.`, { yes: g.yes });
        const runId = app.inv.startRun('unlock', { instance: name, heldBy: who }, name, false);
        const t0 = Date.now();
        const startedAt = new Date().toISOString();
        // Only that very lock: had its run ended and another taken the lock meanwhile, that one stays.
        const released = app.inv.breakLock(held);
        const error = released ? null : 'the lock changed hands meanwhile: nothing was released';
        app.inv.addStep({ runId, seq: 0, name: 'unlock', title: `Release the lock held by ${who}`, status: released ? 'done' : 'failed', startedAt, finishedAt: new Date().toISOString(), error });
        app.inv.finishRun(runId, released ? 'ok' : 'failed', error, released ? null : 'unlock', Date.now() - t0);
        if (!released) throw new OpsError(`instance ${name}: ${error}`, EXIT.LOCKED, `see who holds it now with: opsdeck unlock ${name}`);
        return { json: { instance: name, locked: false, released: true, heldBy: held, runId }, text: `released the lock on ${name} held by ${who} (run ${runId} in the audit trail)` };
      }),
    );

  // ---- audit trail
  program
    .command('runs [id]')
    .description('the audit trail: who ran what, from where, and how it ended; with an id, its steps')
    .option('--limit <n>', 'how many', '20')
    .option('--instance <name>', 'only runs on this instance')
    .action(
      action(async (app, _g, id: string | undefined, o: { limit: string; instance?: string }) => {
        if (id !== undefined) {
          const run = /^\d+$/.test(id) ? app.inv.getRun(Number(id)) : undefined;
          if (!run) throw new UsageError(`no run with id ${id}`, 'list runs with: opsdeck runs');
          const steps = app.inv.runSteps(run.id);
          return {
            json: { ...run, steps },
            text:
              `run ${run.id}: ${run.command} ${run.instance ?? ''} — ${run.status}\n  by ${run.osUser} from ${run.origin} at ${run.startedAt}, ${run.durationMs ?? '?'} ms\n  params ${JSON.stringify(run.params)}\n` +
              (run.error ? `  error: ${run.error}\n` : '') +
              steps.map((s) => `  ${s.status.padEnd(11)} ${s.title}${s.error ? `: ${s.error}` : ''}`).join('\n'),
          };
        }
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`invalid --limit ${o.limit}`, 'give a whole number, e.g. --limit 50');
        const runs = app.inv.listRuns(limit, o.instance);
        return {
          json: runs,
          text: runs.length
            ? table(runs.map((r) => [String(r.id), r.startedAt.replace('T', ' ').slice(0, 19), r.osUser, r.command, r.instance ?? '', r.status, r.error ?? '']), ['ID', 'STARTED', 'USER', 'COMMAND', 'INSTANCE', 'STATUS', 'ERROR'])
            : 'no runs yet',
        };
      }),
    );
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.OK;
      return EXIT.USAGE;
    }
    return reportError(err, {});
  }
  return exitCode;
}
