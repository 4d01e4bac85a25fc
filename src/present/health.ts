import { memoryUsed, type HostSample, type InstanceSample } from '../health/probes.js';
import { duration, formatBytes, percent } from '../core/format.js';

/** How old the newest backup is: `never`, or `3h ago`. */
export function backupAgeWords(backupAgeSeconds: number | null): string {
  return backupAgeSeconds === null ? 'never' : `${duration(backupAgeSeconds)} ago`;
}

/** live, maintenance, or HALF-RESTORED (a restore stopped in its critical section). */
export function instanceModeWord(i: Pick<InstanceSample, 'halfRestored' | 'maintenance'>): string {
  return i.halfRestored ? 'HALF-RESTORED' : i.maintenance ? 'maintenance' : 'live';
}

/** App metrics in one cell: name=value, or the error that kept one from being read. */
export function metricsWords(metrics: InstanceSample['metrics']): string {
  return Object.entries(metrics ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'number' ? v : `ERROR (${v.error})`}`)
    .join(' ');
}

export const HOST_HEALTH_HEADERS = ['HOST', 'STATE', 'LOAD', 'CPU', 'MEM', 'DISKS', 'UP'];

export function hostHealthCells(h: HostSample): string[] {
  if (!h.ok) return [h.host, 'DOWN', h.reason ?? '', '', '', '', ''];
  return [
    h.host,
    'up',
    h.load?.map((x) => x.toFixed(2)).join(' ') ?? '-',
    percent(h.cpu),
    percent(memoryUsed(h)),
    (h.disks ?? []).map((d) => `${d.mount} ${percent(d.used / d.size)}`).join(', ') || '-',
    h.uptimeSeconds ? `${Math.floor(h.uptimeSeconds / 86400)}d` : '-',
  ];
}

export const INSTANCE_HEALTH_HEADERS = ['INSTANCE', 'ENV', 'STATE', 'HTTP', 'MODE', 'VERSION', 'BACKUP', 'WATCH', 'WHY'];

export function instanceHealthCells(i: InstanceSample): string[] {
  return [
    i.instance,
    i.env,
    i.ok ? 'ok' : 'PROBLEM',
    i.http ? `${i.http.status ?? '-'} ${i.http.ms} ms` : '-',
    instanceModeWord(i),
    i.version ?? '-',
    backupAgeWords(i.backupAgeSeconds),
    !i.watch ? '-' : i.watch.changes ? `${i.watch.changes} CHANGED` : 'ok',
    i.reasons.join('; '),
  ];
}

export const DB_HEALTH_HEADERS = ['DATABASE OF', 'STATE', 'SIZE', 'CONNS', 'LONGEST TX', 'REPLICATION', 'METRICS'];

/** Instances with a database or app metrics have a database row. */
export const hasDbRow = (i: InstanceSample) => !!(i.db || i.metrics);

export function dbHealthCells(i: InstanceSample): string[] {
  return [
    i.instance,
    !i.db ? '-' : i.db.ok ? 'up' : 'DOWN',
    i.db?.sizeBytes !== undefined ? formatBytes(i.db.sizeBytes) : (i.db?.reason ?? '-'),
    i.db?.connections !== undefined ? `${i.db.connections}/${i.db.maxConnections}` : '-',
    i.db?.longestTransactionSeconds != null ? `${i.db.longestTransactionSeconds} s` : '-',
    i.db?.replication ? `${i.db.replication.role}${i.db.replication.lagSeconds !== null ? ` lag ${i.db.replication.lagSeconds} s` : ''}` : '-',
    metricsWords(i.metrics) || '-',
  ];
}

/** How many hosts and instances a sweep found in trouble (health exits 1 when any). */
export function healthProblems(r: { hosts: HostSample[]; instances: InstanceSample[] }): number {
  return r.hosts.filter((h) => !h.ok).length + r.instances.filter((i) => !i.ok).length;
}
