import type { Command } from 'commander';
import { HOOK_KINDS, type AppMetric, type HealthCheck, type HookKind, type Hooks } from '../../inventory/index.js';
import { checkHealth, checkHooks, checkMetric } from '../../inventory/validate.js';
import { DEFAULT_POLICY } from '../core/retention.js';
import { UsageError } from '../core/errors.js';
import { splitWords } from '../core/words.js';
import { parseDbUrl } from '../databases/index.js';
import { readSecret } from './prompt.js';
import { inventoryLogin } from '../app/inventory-login.js';

/** A repeatable option's values, in order. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The --keep-* options as commander leaves them (strings, checked by checkPolicy). */
export interface KeepOpts {
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
}

/** Adds the --keep-* retention options. */
export function keepOptions(c: Command): Command {
  return c
    .option('--keep-daily <n>', `days to keep the newest backup of (default ${DEFAULT_POLICY.daily})`)
    .option('--keep-weekly <n>', `weeks, before those (default ${DEFAULT_POLICY.weekly})`)
    .option('--keep-monthly <n>', `months, before those (default ${DEFAULT_POLICY.monthly})`)
    .option('--keep-yearly <n>', `years, before those (default ${DEFAULT_POLICY.yearly})`);
}

export function policyOf(o: KeepOpts) {
  return { daily: o.keepDaily, weekly: o.keepWeekly, monthly: o.keepMonthly, yearly: o.keepYearly };
}

/** Whether any --keep-* option was given. */
export const anyKeep = (o: KeepOpts) => Object.values(policyOf(o)).some((v) => v !== undefined);

/** --hook KIND=COMMAND options over existing hooks; an empty command removes that hook. */
export function parseHooks(specs: string[], base: Hooks = {}): Hooks {
  const hooks = { ...base };
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const kind = spec.slice(0, eq);
    if (eq < 1 || !isHookKind(kind)) throw new UsageError(`invalid --hook ${JSON.stringify(spec)}`, `write it as KIND=COMMAND with KIND one of ${HOOK_KINDS.join(', ')}`);
    const argv = splitWords(spec.slice(eq + 1));
    if (argv.length) hooks[kind] = argv;
    else delete hooks[kind];
  }
  return checkHooks(hooks);
}

const isHookKind = (k: string): k is HookKind => (HOOK_KINDS as readonly string[]).includes(k);

export interface HealthOpts {
  healthUrl?: string;
  healthStatus?: string;
  healthText?: string;
}

/** --health-url/--health-status/--health-text over an existing check; undefined when none was given. */
export function parseHealth(o: HealthOpts, base: HealthCheck | null, fallbackUrl: string | null): HealthCheck | undefined {
  if (o.healthUrl === undefined && o.healthStatus === undefined && o.healthText === undefined) return undefined;
  const url = o.healthUrl ?? base?.url ?? fallbackUrl;
  if (!url) throw new UsageError('a health check needs a URL', 'give --health-url, or set the instance URL with --url');
  const status = o.healthStatus !== undefined ? Number(o.healthStatus) : (base?.status ?? 200);
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
    out.set(name, checkMetric({ name, kind: kind === 'sql' ? 'sql' : 'cmd', source }));
  }
  return [...out.values()];
}

/** A database password, never from argv: the file given, OPSDECK_DB_PASSWORD, or the prompt. */
export function readDbPassword(dbUrl: string, file?: string): Promise<string | undefined> {
  return readSecret(`password of database role ${parseDbUrl(dbUrl).user}`, { file, envVar: 'OPSDECK_DB_PASSWORD' });
}

/** --inventory and --inventory-password-file, before any command opens the inventory (see inventoryLogin). */
export async function useInventoryFlags(g: { home?: string; inventory?: string; inventoryPasswordFile?: string }): Promise<void> {
  await inventoryLogin(g.home, { url: g.inventory, passwordFile: g.inventoryPasswordFile });
}
