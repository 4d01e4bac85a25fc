import type { Host, Instance, Inventory } from './index.js';
import { checkPolicy, type Policy } from '../src/core/retention.js';
import { UsageError } from '../src/core/errors.js';
import { parseAge } from '../src/core/format.js';
import {
  checkAddress,
  checkFingerprint,
  checkHealth,
  checkHooks,
  checkKeyFile,
  checkLocalPath,
  checkMetric,
  checkName,
  checkPort,
  checkRef,
  checkRemotePath,
  checkUrl,
  checkUser,
  checkWatchExclude,
} from './validate.js';

/**
 * The inventory as one JSON document, for moving to another jump box or keeping in git. Secrets
 * (database passwords, alert credentials) never leave: they are sealed with this home's key, and a
 * file that holds them in the clear would be a leak waiting to happen. After an import they are
 * set again (instance set --db-password, notify ...).
 */
export interface InventoryDocument {
  format: 'opsdeck-inventory';
  version: 1;
  exportedAt: string;
  envs: { name: string; protected: boolean; retention: Policy | null; maxBackupAge: string | null }[];
  hosts: Omit<Host, 'createdAt'>[];
  instances: Pick<Instance, 'name' | 'host' | 'path' | 'env' | 'url' | 'dbUrl' | 'branch' | 'hooks' | 'health' | 'localPaths' | 'watchExcludes' | 'metrics'>[];
}

export function exportInventory(inv: Inventory): { doc: InventoryDocument; secretsLeftOut: string[] } {
  const instances = inv.listInstances();
  return {
    doc: {
      format: 'opsdeck-inventory',
      version: 1,
      exportedAt: new Date().toISOString(),
      envs: inv.listEnvs().map((e) => ({ name: e.name, protected: e.protected, retention: inv.retentionOf(e.name) ?? null, maxBackupAge: inv.maxBackupAge(e.name) ?? null })),
      hosts: inv.listHosts().map(({ createdAt: _c, ...h }) => h),
      instances: instances.map((i) => ({
        name: i.name,
        host: i.host,
        path: i.path,
        env: i.env,
        url: i.url,
        dbUrl: i.dbUrl,
        branch: i.branch,
        hooks: i.hooks,
        health: i.health,
        localPaths: i.localPaths,
        watchExcludes: i.watchExcludes,
        metrics: i.metrics,
      })),
    },
    secretsLeftOut: [
      ...instances.filter((i) => i.hasDbPassword).map((i) => `database password of ${i.name}`),
      ...inv
        .notifyChannels()
        .filter((c) => c.secret)
        .map((c) => `${c.kind} alert secret`),
    ],
  };
}

/**
 * Adds what the document holds, all or nothing. Every field goes through the very check the CLI
 * makes when it is set by hand (names, addresses, ports, users, key files, host keys, paths, URLs,
 * branches, hooks, health checks, local paths, watch patterns, metrics, retention, ages), and the
 * writes are one transaction: any name that exists already, any reference to a missing environment
 * or host, any tree nested in another instance's, or any malformed field refuses the whole import,
 * naming the entry and the field.
 */
export function importInventory(inv: Inventory, raw: unknown, normalizeDbUrl: (url: string) => string): { envs: number; hosts: number; instances: number; needPassword: string[] } {
  const doc = raw as InventoryDocument;
  if (!doc || typeof doc !== 'object' || doc.format !== 'opsdeck-inventory')
    throw new UsageError('this is not an opsdeck inventory export (no "format": "opsdeck-inventory")', 'make one with: opsdeck inventory export FILE');
  if (doc.version !== 1) throw new UsageError(`inventory export version ${String(doc.version)} is not one this opsdeck reads (1)`, 'export it again with this version of opsdeck');
  for (const key of ['envs', 'hosts', 'instances'] as const) if (!Array.isArray(doc[key])) throw new UsageError(`the export has no "${key}" list`, 'make one with: opsdeck inventory export FILE');
  const { envs, hosts, instances } = checkDocument(doc, normalizeDbUrl);
  const taken = [
    ...envs.filter((e) => inv.getEnv(e.name)).map((e) => `environment ${e.name}`),
    ...hosts.filter((h) => inv.getHost(h.name)).map((h) => `host ${h.name}`),
    ...instances.filter((i) => inv.getInstance(i.name)).map((i) => `instance ${i.name}`),
  ];
  if (taken.length) throw new UsageError(`already in this inventory: ${taken.join(', ')}; nothing was imported`, 'import into an empty home (--home DIR), or remove those first');
  return inv.transaction(() => {
    envs.forEach((e, n) =>
      at(`envs[${n}] (environment ${JSON.stringify(e.name)})`, 'name', () => {
        inv.addEnv(e.name, e.protected);
        if (e.retention) inv.setRetention(e.name, e.retention);
        if (e.maxBackupAge) inv.setMaxBackupAge(e.name, e.maxBackupAge);
      }),
    );
    // Jump hosts first: a host may only name a jump host that exists.
    const pending = hosts.map((h, n) => ({ h, n }));
    while (pending.length) {
      const i = pending.findIndex(({ h }) => !h.jump || inv.getHost(h.jump));
      if (i < 0) {
        const { h, n } = pending[0];
        throw entryError(
          `hosts[${n}] (host ${JSON.stringify(h.name)})`,
          'jump',
          `it names jump host ${h.jump}, which is neither in this inventory nor in the export (or the jump hosts form a loop)`,
          'export the whole inventory',
        );
      }
      const { h, n } = pending.splice(i, 1)[0];
      at(`hosts[${n}] (host ${JSON.stringify(h.name)})`, 'name', () => inv.addHost(h));
    }
    instances.forEach((i, n) => {
      const where = `instances[${n}] (instance ${JSON.stringify(i.name)})`;
      at(where, 'host', () => inv.requireHost(i.host));
      at(where, 'env', () => inv.requireEnv(i.env));
      at(where, 'path', () => inv.refuseNested(i.name, i.host, i.path));
      at(where, 'name', () =>
        inv.addInstance({ name: i.name, host: i.host, path: i.path, env: i.env, url: i.url, dbUrl: i.dbUrl, branch: i.branch, hooks: i.hooks, health: i.health, localPaths: i.localPaths }),
      );
      inv.updateInstance(i.name, { watchExcludes: i.watchExcludes, metrics: i.metrics });
    });
    return { envs: envs.length, hosts: hosts.length, instances: instances.length, needPassword: instances.filter((i) => i.dbUrl).map((i) => i.name) };
  });
}

type EnvEntry = { name: string; protected: boolean; retention: Policy | null; maxBackupAge: string | null };
type InstanceEntry = InventoryDocument['instances'][number];

/** The refusal of one field of one entry: which, and why, and that nothing was imported. */
function entryError(where: string, field: string, problem: string, hint?: string): UsageError {
  return new UsageError(`inventory import: ${where}, field "${field}": ${problem}; nothing was imported`, hint ?? 'correct that entry in the file (or export it again), then import again');
}
function at<T>(where: string, field: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof UsageError) throw entryError(where, field, err.message, err.hint);
    throw err;
  }
}
/** null and undefined are "not set"; anything else goes through the check. */
// The checks validate at run time what the file holds: `as A` hands them the unknown value to check.
const optional = <A, T>(v: unknown, check: (v: A) => T): T | null => (v === null || v === undefined ? null : check(v as A));
const list = <A, T>(v: unknown, what: string, check: (v: A) => T): T[] => {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) throw new UsageError(`${what} must be a list, not ${JSON.stringify(v)}`);
  return v.map((e) => check(e as A));
};
const flag = (v: unknown): boolean => {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new UsageError(`${JSON.stringify(v)} is not true or false`);
  return v;
};
const entries = <T>(v: T[], kind: string): T[] => {
  v.forEach((e, n) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e))
      throw new UsageError(`inventory import: ${kind}[${n}] is not an object; nothing was imported`, 'make the file with: opsdeck inventory export FILE');
  });
  return v;
};

/** Every field of every entry through the CLI's own check; what comes back is what gets written. */
function checkDocument(doc: InventoryDocument, normalizeDbUrl: (url: string) => string): { envs: EnvEntry[]; hosts: Omit<Host, 'createdAt'>[]; instances: InstanceEntry[] } {
  const envs = entries(doc.envs, 'envs').map((e, n): EnvEntry => {
    const where = `envs[${n}] (environment ${JSON.stringify(e.name)})`;
    return {
      name: at(where, 'name', () => checkName('environment', e.name)),
      protected: at(where, 'protected', () => flag(e.protected)),
      retention: at(where, 'retention', () =>
        optional(e.retention, (r: unknown) => {
          if (typeof r !== 'object' || r === null || Array.isArray(r))
            throw new UsageError(`${JSON.stringify(r)} is not a retention policy`, 'give { "daily": N, "weekly": N, "monthly": N, "yearly": N }');
          return checkPolicy(r);
        }),
      ),
      maxBackupAge: at(where, 'maxBackupAge', () =>
        optional(e.maxBackupAge, (a) => {
          if (typeof a !== 'string') throw new UsageError(`invalid age ${JSON.stringify(a)}`, 'write it as a number and a unit: 30m, 12h, 7d, 2w');
          parseAge(a);
          return a;
        }),
      ),
    };
  });
  const hosts = entries(doc.hosts, 'hosts').map((h, n): Omit<Host, 'createdAt'> => {
    const where = `hosts[${n}] (host ${JSON.stringify(h.name)})`;
    return {
      ...h,
      name: at(where, 'name', () => checkName('host', h.name)),
      address: at(where, 'address', () => checkAddress(h.address)),
      port: at(where, 'port', () => checkPort(h.port)),
      user: at(where, 'user', () => checkUser(h.user)),
      keyFile: at(where, 'keyFile', () => optional(h.keyFile, checkKeyFile)),
      jump: at(where, 'jump', () => optional(h.jump, (j: string) => checkName('host', j))),
      hostKey: at(where, 'hostKey', () => optional(h.hostKey, checkFingerprint)),
      // The user trees are reached as (sudo -n -u USER): the check host add --become makes.
      ...('become' in h ? { become: at(where, 'become', () => optional((h as { become?: unknown }).become, checkUser)) } : {}),
    };
  });
  const instances = entries(doc.instances, 'instances').map((i, n): InstanceEntry => {
    const where = `instances[${n}] (instance ${JSON.stringify(i.name)})`;
    const dbUrl = at(where, 'dbUrl', () => optional(i.dbUrl, (u) => normalizeDbUrl(String(u))));
    const metrics = at(where, 'metrics', () => list(i.metrics, 'metrics', checkMetric));
    at(where, 'metrics', () => {
      const names = metrics.map((m) => m.name);
      const twice = names.find((m, k) => names.indexOf(m) !== k);
      if (twice) throw new UsageError(`metric ${twice} is listed twice`);
      if (metrics.some((m) => m.kind === 'sql') && !dbUrl) throw new UsageError(`${i.name} has no database for an sql: metric`, 'use a cmd: metric, or give the instance a database');
    });
    return {
      name: at(where, 'name', () => checkName('instance', i.name)),
      host: at(where, 'host', () => checkName('host', i.host)),
      path: at(where, 'path', () => checkRemotePath(i.path)),
      env: at(where, 'env', () => checkName('environment', i.env)),
      url: at(where, 'url', () => optional(i.url, checkUrl)),
      dbUrl,
      branch: at(where, 'branch', () => optional(i.branch, checkRef)),
      hooks: at(where, 'hooks', () => optional(i.hooks, checkHooks) ?? {}),
      health: at(where, 'health', () => optional(i.health, checkHealth)),
      localPaths: at(where, 'localPaths', () => [...new Set(list(i.localPaths, 'localPaths', checkLocalPath))]),
      watchExcludes: at(where, 'watchExcludes', () => optional(i.watchExcludes, (w) => list(w, 'watchExcludes', checkWatchExclude))),
      metrics,
    };
  });
  return { envs, hosts, instances };
}
