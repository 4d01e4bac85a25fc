import type { Host, Instance, Inventory } from './index.js';
import { UsageError } from '../src/util/errors.js';
import { checkName, checkRemotePath } from '../src/util/validate.js';

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
  envs: { name: string; protected: boolean; retention: { daily: number; weekly: number; monthly: number; yearly: number } | null; maxBackupAge: string | null }[];
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
      instances: instances.map((i) => ({ name: i.name, host: i.host, path: i.path, env: i.env, url: i.url, dbUrl: i.dbUrl, branch: i.branch, hooks: i.hooks, health: i.health, localPaths: i.localPaths, watchExcludes: i.watchExcludes, metrics: i.metrics })),
    },
    secretsLeftOut: [...instances.filter((i) => i.hasDbPassword).map((i) => `database password of ${i.name}`), ...inv.notifyChannels().filter((c) => c.secret).map((c) => `${c.kind} alert secret`)],
  };
}

/**
 * Adds what the document holds, all or nothing: one transaction, and any name that exists already,
 * any reference to a missing environment or host, or any malformed field refuses the whole import.
 */
export function importInventory(inv: Inventory, raw: unknown, checkDbUrl: (url: string) => unknown): { envs: number; hosts: number; instances: number; needPassword: string[] } {
  const doc = raw as InventoryDocument;
  if (!doc || doc.format !== 'opsdeck-inventory') throw new UsageError('this is not an opsdeck inventory export (no "format": "opsdeck-inventory")', 'make one with: opsdeck inventory export FILE');
  if (doc.version !== 1) throw new UsageError(`inventory export version ${String(doc.version)} is not one this opsdeck reads (1)`, 'export it again with this version of opsdeck');
  for (const key of ['envs', 'hosts', 'instances'] as const) if (!Array.isArray(doc[key])) throw new UsageError(`the export has no "${key}" list`, 'make one with: opsdeck inventory export FILE');
  const taken = [
    ...doc.envs.filter((e) => inv.getEnv(e.name)).map((e) => `environment ${e.name}`),
    ...doc.hosts.filter((h) => inv.getHost(h.name)).map((h) => `host ${h.name}`),
    ...doc.instances.filter((i) => inv.getInstance(i.name)).map((i) => `instance ${i.name}`),
  ];
  if (taken.length) throw new UsageError(`already in this inventory: ${taken.join(', ')}; nothing was imported`, 'import into an empty home (--home DIR), or remove those first');
  return inv.transaction(() => {
    for (const e of doc.envs) {
      inv.addEnv(checkName('environment', e.name), !!e.protected);
      if (e.retention) inv.setRetention(e.name, e.retention);
      if (e.maxBackupAge) inv.setMaxBackupAge(e.name, e.maxBackupAge);
    }
    // Jump hosts first: a host may only name a jump host that exists.
    const pending = [...doc.hosts];
    while (pending.length) {
      const i = pending.findIndex((h) => !h.jump || inv.getHost(h.jump));
      if (i < 0) throw new UsageError(`hosts ${pending.map((h) => h.name).join(', ')} name jump hosts that are not in the export`, 'export the whole inventory');
      const h = pending.splice(i, 1)[0];
      if (!Number.isInteger(h.port) || h.port < 1 || h.port > 65535) throw new UsageError(`host ${h.name} has an invalid port ${String(h.port)}`);
      inv.addHost({ name: checkName('host', h.name), address: h.address, port: h.port, user: h.user, keyFile: h.keyFile, jump: h.jump, hostKey: h.hostKey });
    }
    for (const i of doc.instances) {
      // The database drivers sit above the inventory: the caller says what a valid URL is.
      if (i.dbUrl) checkDbUrl(i.dbUrl);
      inv.addInstance({ name: checkName('instance', i.name), host: i.host, path: checkRemotePath(i.path), env: i.env, url: i.url, dbUrl: i.dbUrl, branch: i.branch, hooks: i.hooks ?? {}, health: i.health ?? null, localPaths: i.localPaths ?? [] });
      inv.updateInstance(i.name, { watchExcludes: i.watchExcludes ?? null, metrics: i.metrics ?? [] });
    }
    return { envs: doc.envs.length, hosts: doc.hosts.length, instances: doc.instances.length, needPassword: doc.instances.filter((i) => i.dbUrl).map((i) => i.name) };
  });
}
