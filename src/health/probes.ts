import type { Host, Instance } from '../../inventory/index.js';
import type { Deps } from '../deps/deps.js';
import { parseAge } from '../core/format.js';
import { checkHealth } from './http.js';
import { errorMessage } from '../core/errors.js';
import type { DbHealth } from '../databases/index.js';
import { dbFor, shellFor } from '../deps/deps.js';
import { TunnelSocket } from '../remote/tunnel.js';

export interface HostSample {
  host: string;
  ok: boolean;
  reason?: string;
  load?: [number, number, number];
  cpus?: number;
  /** CPU busy over a quarter second, 0..1. */
  cpu?: number;
  memUsed?: number;
  memTotal?: number;
  /** Filesystems that hold instances. */
  disks?: { mount: string; used: number; size: number }[];
  uptimeSeconds?: number;
  ms: number;
}

export interface InstanceSample {
  instance: string;
  host: string;
  env: string;
  ok: boolean;
  reasons: string[];
  http?: { url: string; status?: number; ms: number; ok: boolean; reason?: string };
  maintenance: boolean;
  version: string | null;
  backupAgeSeconds: number | null;
  backupLimit: string;
  watched: boolean;
  /** The last watch check: when, and how many files differed from the baseline (null: not watched). */
  watch: { checkedAt: string | null; changes: number } | null;
  /** The database, probed through a tunnel on the host's SSH connection. */
  db?: DbHealth;
  /** App metrics by name: the number, or why it could not be read. */
  metrics?: Record<string, number | { error: string }>;
  /** A restore stopped inside its critical section: database and code tree may not belong together. */
  halfRestored?: { runId: number; command: string; phase: string; since: string; safetyBackup: string | null };
}

/** A probe that does not settle in time settles anyway, with the reason, so a hung host holds up nothing else. */
export async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

// Read-only, one command per host per sweep: load, CPUs, CPU busy over 0.25 s, memory, the disks
// holding the given paths, uptime. The quarter second starts first and everything else is read
// while it runs (the shell's own read where it can, not a process each), so the probe takes little
// more than the quarter second. Processes cost most on a host (each a fork and exec): besides the
// sleep and df, none (a probe in 23 ms of CPU instead of 50 with nproc and two awks).
export const HOST_SCRIPT = [
  // /proc/stat's first line: cpu user nice system idle iowait irq softirq ...
  'read -r c u n s i w q sq rest < /proc/stat; a=$(( u+n+s+i+w+q+sq )); ai=$i',
  'sleep 0.25 &',
  // The mount point last: read gives it whole, spaces and all.
  'if [ $# -gt 0 ]; then df -P -B1 -- "$@" 2>/dev/null | { read -r head; while read -r fs size used avail pct mnt; do echo "disk $mnt $used $size"; done; }; fi',
  'read l1 l5 l15 rest < /proc/loadavg; echo "load $l1 $l5 $l15"',
  // Online CPUs, e.g. "0-3,6": the ranges added up.
  'if read -r on < /sys/devices/system/cpu/online; then k=0; r=$on,; while [ -n "$r" ]; do x=${r%%,*}; r=${r#*,}; case $x in *-*) k=$(( k + ${x#*-} - ${x%-*} + 1 ));; *) k=$(( k + 1 ));; esac; done; echo "cpus $k"; else echo "cpus $(nproc)"; fi',
  // MemAvailable (Linux 3.14+) follows MemTotal; without it, everything counts as used, as before.
  't=0; m=0; while read -r key v rest; do case $key in MemTotal:) t=$v;; MemAvailable:) m=$v; break;; esac; done < /proc/meminfo; echo "mem $(( (t - m) * 1024 )) $(( t * 1024 ))"',
  'read up rest < /proc/uptime; echo "uptime $up"',
  'wait',
  'read -r c u n s i w q sq rest < /proc/stat; b=$(( u+n+s+i+w+q+sq )); bi=$i',
  'echo "cpu $(( b - a )) $(( bi - ai ))"',
].join('\n');

/**
 * `setUp`, when given, is a slot of the sweep's: held while the connection is set up (the handshake
 * costs CPU at both ends) and given back before the probe's command, which mostly waits.
 */
export async function probeHost(deps: Deps, host: Host, paths: string[], timeoutMs = 10_000, setUp?: () => void, onConnected?: () => void): Promise<HostSample> {
  const t0 = Date.now();
  return withTimeout(probeHostNow(deps, host, paths, timeoutMs, setUp, onConnected), timeoutMs + 1000, () => {
    setUp?.();
    // A connection that hangs would hang the next probe too: start afresh next time.
    deps.ssh.drop(host.name);
    return { host: host.name, ok: false, reason: `no answer within ${Math.round((timeoutMs + 1000) / 1000)} s`, ms: Date.now() - t0 };
  });
}

async function probeHostNow(deps: Deps, host: Host, paths: string[], timeoutMs: number, setUp?: () => void, onConnected?: () => void): Promise<HostSample> {
  const t0 = Date.now();
  try {
    if (setUp) {
      try {
        await deps.ssh.connection(host);
      } finally {
        setUp();
      }
      onConnected?.();
    }
    const shell = deps.ssh.shell(host);
    const res = await shell.exec(['sh', '-c', HOST_SCRIPT, 'sh', ...paths], { timeoutMs });
    if (res.code !== 0) return { host: host.name, ok: false, reason: `probe exited ${res.code}: ${res.stderr.trim()}`, ms: Date.now() - t0 };
    const s: HostSample = { host: host.name, ok: true, ms: Date.now() - t0, disks: [] };
    for (const line of res.stdout.split('\n')) {
      const [k, ...v] = line.split(' ');
      if (k === 'load') s.load = [Number(v[0]), Number(v[1]), Number(v[2])];
      else if (k === 'cpus') s.cpus = Number(v[0]);
      else if (k === 'cpu') s.cpu = Number(v[0]) > 0 ? 1 - Number(v[1]) / Number(v[0]) : 0;
      else if (k === 'mem') [s.memUsed, s.memTotal] = [Number(v[0]), Number(v[1])];
      else if (k === 'uptime') s.uptimeSeconds = Number(v[0]);
      else if (k === 'disk' && !s.disks!.some((d) => d.mount === v[0])) s.disks!.push({ mount: v[0], used: Number(v[1]), size: Number(v[2]) });
    }
    return s;
  } catch (err) {
    return { host: host.name, ok: false, reason: errorMessage(err), ms: Date.now() - t0 };
  }
}

/**
 * The instance's database over a tunnel on its host's SSH connection (the database as
 * the host sees it), with its sql: metrics. Undefined when the instance has no database.
 */
export async function probeDatabase(deps: Deps, inst: Instance, timeoutMs = 8000): Promise<DbHealth | undefined> {
  const db = dbFor(deps, inst);
  if (!db) return undefined;
  const t0 = Date.now();
  const host = deps.inv.requireHost(inst.host);
  const sql = inst.metrics.filter((m) => m.kind === 'sql').map((m) => ({ name: m.name, query: m.source }));
  return withTimeout(
    db.engine.probe(db, () => new TunnelSocket(() => deps.ssh.forward(host, db.target.host, db.target.port)), sql, timeoutMs),
    timeoutMs + 1000,
    () => ({ ok: false, reason: `no answer within ${Math.round((timeoutMs + 1000) / 1000)} s`, ms: Date.now() - t0 }),
  );
}

/** cmd: metrics: each a command run with sh in the instance's directory that prints one number. */
export async function probeCommandMetrics(deps: Deps, inst: Instance, timeoutMs = 8000): Promise<Record<string, number | { error: string }>> {
  const out: Record<string, number | { error: string }> = {};
  for (const m of inst.metrics.filter((x) => x.kind === 'cmd')) {
    try {
      const res = await withTimeout(
        // In the tree, as its owner when the host has --become: the login user may not enter it.
        shellFor(deps, inst).exec(['sh', '-c', 'cd -- "$1" || exit 1; eval "$2"', 'sh', inst.path, m.source], { timeoutMs }),
        timeoutMs + 1000,
        () => ({ code: null, stdout: '', stderr: '' }) as { code: number | null; stdout: string; stderr: string },
      );
      const v = Number(res.stdout.trim());
      out[m.name] =
        res.code === null
          ? { error: `no answer within ${Math.round(timeoutMs / 1000)} s` }
          : res.code !== 0
            ? { error: `exited ${res.code}: ${res.stderr.trim().slice(0, 200)}` }
            : res.stdout.trim() && Number.isFinite(v)
              ? v
              : { error: `printed ${JSON.stringify(res.stdout.trim().slice(0, 40))}, not one number` };
    } catch (err) {
      out[m.name] = { error: errorMessage(err) };
    }
  }
  return out;
}

/** The fullest of the filesystems holding instances, 0..1; undefined when none was measured. */
export const fullestDisk = (s: HostSample | undefined): number | undefined => (s?.disks?.length ? Math.max(...s.disks.map((d) => (d.size ? d.used / d.size : 0))) : undefined);
/** Memory in use, 0..1. */
export const memoryUsed = (s: HostSample | undefined): number | undefined => (s?.memTotal ? s.memUsed! / s.memTotal : undefined);

/**
 * An instance's probes. `host` is its host's newest sample: when that host is down, the database
 * and command metrics are not tried and the instance is down too, whatever its URL said.
 */
export async function probeInstance(
  deps: Deps,
  inst: Instance,
  now = Date.now(),
  newest = deps.inv.latestBackupTimes(),
  hostSample?: HostSample | Promise<HostSample>,
  hostConnected?: Promise<boolean>,
): Promise<InstanceSample> {
  const hc = inst.health ?? (inst.url ? { url: inst.url, status: 200 } : null);
  let http: InstanceSample['http'];
  // The site needs nothing from the host: asked at once, while the host's probe may still run. The
  // database and the metrics side by side once the host is known to be up (its SSH connection made,
  // when the sweep says so: the host's own probe spends a quarter second sampling the CPU), so a
  // slow one does not delay the others.
  const site = hc ? checkHealth(inst.maintenanceSince ? { ...inst, health: { url: hc.url, status: 503 } } : inst) : undefined;
  const early = (await hostConnected) ? undefined : await hostSample;
  const hostDown = early !== undefined && !early.ok;
  const [r, db, cmdMetrics, host] = await Promise.all([
    // In maintenance the site is meant to answer 503: that is not "down".
    site,
    hostDown ? undefined : probeDatabase(deps, inst),
    hostDown ? {} : probeCommandMetrics(deps, inst),
    hostSample,
  ]);
  const reasons: string[] = host !== undefined && !host.ok ? [`host ${host.host} down: ${host.reason}`] : [];
  if (r) {
    http = { url: r.url, status: r.status, ms: r.ms, ok: r.ok, reason: r.reason };
    if (!r.ok) reasons.push(`http: ${r.reason}`);
  }
  if (db && !db.ok) reasons.push(`database: ${db.reason}`);
  // First among the reasons: until opsdeck recover runs, nothing else about the instance can be trusted.
  const half = deps.inv.getHalfRestored(inst.name);
  if (half) reasons.unshift(`HALF-RESTORED: ${half.command} run ${half.runId} was interrupted in its critical section; run: opsdeck recover ${inst.name}`);
  const watch = deps.inv.watchState(inst.name);
  if (watch && watch.changes > 0) reasons.push(`watch: ${watch.changes} files differ from the baseline`);
  const metrics = { ...(db?.metrics ?? {}), ...cmdMetrics };
  const last = newest.get(inst.name) ?? null;
  const limit = deps.inv.backupAgeLimit(inst.env);
  const ageS = last ? Math.round((now - Date.parse(last)) / 1000) : null;
  if (ageS === null) reasons.push('no backup');
  else if (ageS * 1000 > parseAge(limit)) reasons.push(`newest backup older than ${limit}`);
  return {
    instance: inst.name,
    host: inst.host,
    env: inst.env,
    ok: reasons.length === 0,
    reasons,
    http,
    maintenance: !!inst.maintenanceSince,
    version: inst.revision ? inst.revision.slice(0, 12) : null,
    backupAgeSeconds: ageS,
    backupLimit: limit,
    watched: !!watch,
    watch: watch ? { checkedAt: watch.checkedAt, changes: watch.changes } : null,
    ...(db ? { db } : {}),
    ...(Object.keys(metrics).length ? { metrics } : {}),
    ...(half ? { halfRestored: { runId: half.runId, command: half.command, phase: half.phase, since: half.since, safetyBackup: half.safetyBackup } } : {}),
  };
}

/** Slots for a sweep: acquire() waits for one and gives the function that frees it (once). */
function slots(n: number): () => Promise<() => void> {
  let free = n;
  const waiting: (() => void)[] = [];
  return async () => {
    if (free > 0) free--;
    else await new Promise<void>((r) => waiting.push(r));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = waiting.shift();
      if (next) next();
      else free++;
    };
  };
}

/**
 * One sweep: every host of the chosen instances once (one connection each), and the instances.
 * `parallel` bounds the connection set-ups in flight and, apart, the instance probes; a connected
 * host's probe (a quarter second of CPU sampling, mostly waiting) holds no slot, so a fleet of
 * hundreds is not probed eight quarter-seconds at a time. An instance's site is asked at once; its
 * database and metrics as soon as its own host's sample is in, not after the slowest host's.
 */
export async function sweep(deps: Deps, insts: Instance[], parallel = 8): Promise<{ hosts: HostSample[]; instances: InstanceSample[] }> {
  const hostNames = [...new Set(insts.map((i) => i.host))];
  const pathsOf = new Map<string, string[]>();
  for (const i of insts) pathsOf.set(i.host, [...(pathsOf.get(i.host) ?? []), i.path]);
  const setUp = slots(parallel);
  // Per host: its probe's sample, and whether its SSH connection is up (known before the sample).
  const connected = new Map<string, Promise<boolean>>();
  const probing = new Map(
    hostNames.map((h) => {
      const host = deps.inv.requireHost(h);
      let up!: (ok: boolean) => void;
      connected.set(h, new Promise<boolean>((resolve) => (up = resolve)));
      const sample = setUp().then((release) => probeHost(deps, host, pathsOf.get(h) ?? [], undefined, release, () => up(true)));
      // A host that never connected: known once its sample is (a promise settles once; later calls do nothing).
      void sample.then((s) => up(s.ok));
      return [h, sample] as const;
    }),
  );
  // Newest backup of every instance in one query, not one per instance.
  const newest = deps.inv.latestBackupTimes();
  const now = Date.now();
  const instanceSlot = slots(parallel);
  const [hosts, instances] = await Promise.all([
    Promise.all(hostNames.map((h) => probing.get(h)!)),
    Promise.all(
      // In the order of the instances, so slots go first to those whose hosts connect first.
      insts.map(async (i) => {
        const release = await instanceSlot();
        try {
          return await probeInstance(deps, i, now, newest, probing.get(i.host)!, connected.get(i.host));
        } finally {
          release();
        }
      }),
    ),
  ]);
  return { hosts, instances };
}

/** The sweep in Prometheus text exposition format, for node_exporter's textfile collector. */
export function toPrometheus(r: { hosts: HostSample[]; instances: InstanceSample[] }): string {
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const lines: string[] = [];
  const metric = (name: string, help: string, type: string, rows: [Record<string, string>, number | undefined][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of rows) {
      if (v === undefined || !Number.isFinite(v)) continue;
      lines.push(
        `${name}{${Object.entries(labels)
          .map(([k, x]) => `${k}="${esc(x)}"`)
          .join(',')}} ${v}`,
      );
    }
  };
  metric(
    'opsdeck_host_up',
    'Whether the host answered its probe.',
    'gauge',
    r.hosts.map((h) => [{ host: h.host }, h.ok ? 1 : 0]),
  );
  metric(
    'opsdeck_host_load1',
    'One-minute load average.',
    'gauge',
    r.hosts.map((h) => [{ host: h.host }, h.load?.[0]]),
  );
  metric(
    'opsdeck_host_cpu_busy_ratio',
    'CPU busy over a quarter second.',
    'gauge',
    r.hosts.map((h) => [{ host: h.host }, h.cpu]),
  );
  metric(
    'opsdeck_host_memory_used_bytes',
    'Memory in use.',
    'gauge',
    r.hosts.map((h) => [{ host: h.host }, h.memUsed]),
  );
  metric(
    'opsdeck_host_disk_used_ratio',
    'Use of the filesystems holding instances.',
    'gauge',
    r.hosts.flatMap((h) => (h.disks ?? []).map((d) => [{ host: h.host, mount: d.mount }, d.size ? d.used / d.size : undefined] as [Record<string, string>, number | undefined])),
  );
  metric(
    'opsdeck_instance_up',
    'Whether the instance is healthy (site answers, host up, backup recent).',
    'gauge',
    r.instances.map((i) => [{ instance: i.instance, env: i.env }, i.ok ? 1 : 0]),
  );
  metric(
    'opsdeck_instance_http_status',
    'HTTP status of the health URL.',
    'gauge',
    r.instances.map((i) => [{ instance: i.instance, env: i.env }, i.http?.status]),
  );
  metric(
    'opsdeck_instance_http_seconds',
    'Response time of the health URL.',
    'gauge',
    r.instances.map((i) => [{ instance: i.instance, env: i.env }, i.http ? i.http.ms / 1000 : undefined]),
  );
  metric(
    'opsdeck_instance_maintenance',
    'Whether the instance is in maintenance.',
    'gauge',
    r.instances.map((i) => [{ instance: i.instance, env: i.env }, i.maintenance ? 1 : 0]),
  );
  metric(
    'opsdeck_instance_half_restored',
    'Whether a restore stopped inside its critical section (run opsdeck recover).',
    'gauge',
    r.instances.map((i) => [{ instance: i.instance, env: i.env }, i.halfRestored ? 1 : 0]),
  );
  const dbRows = (f: (d: DbHealth) => number | null | undefined) =>
    r.instances.filter((i) => i.db).map((i) => [{ instance: i.instance, env: i.env }, f(i.db!) ?? undefined] as [Record<string, string>, number | undefined]);
  metric(
    'opsdeck_db_up',
    'Whether the instance database answered.',
    'gauge',
    dbRows((d) => (d.ok ? 1 : 0)),
  );
  metric(
    'opsdeck_db_size_bytes',
    'Size of the database.',
    'gauge',
    dbRows((d) => d.sizeBytes),
  );
  metric(
    'opsdeck_db_connections',
    'Client connections to the database server.',
    'gauge',
    dbRows((d) => d.connections),
  );
  metric(
    'opsdeck_db_max_connections',
    'max_connections of the database server.',
    'gauge',
    dbRows((d) => d.maxConnections),
  );
  metric(
    'opsdeck_db_longest_transaction_seconds',
    'Age of the oldest open transaction.',
    'gauge',
    dbRows((d) => d.longestTransactionSeconds ?? 0),
  );
  metric(
    'opsdeck_db_replication_lag_seconds',
    'Replication lag, where there is a replica.',
    'gauge',
    dbRows((d) => d.replication?.lagSeconds),
  );
  metric(
    'opsdeck_app_metric',
    'App metrics set with instance set --metric.',
    'gauge',
    r.instances.flatMap((i) =>
      Object.entries(i.metrics ?? {}).map(([name, v]) => [{ instance: i.instance, env: i.env, metric: name }, typeof v === 'number' ? v : undefined] as [Record<string, string>, number | undefined]),
    ),
  );
  metric(
    'opsdeck_instance_watch_changes',
    'Files the last watch check found added, changed or removed.',
    'gauge',
    r.instances.filter((i) => i.watch).map((i) => [{ instance: i.instance, env: i.env }, i.watch!.changes]),
  );
  metric(
    'opsdeck_instance_backup_age_seconds',
    'Age of the newest good backup.',
    'gauge',
    r.instances.map((i) => [{ instance: i.instance, env: i.env }, i.backupAgeSeconds ?? undefined]),
  );
  return lines.join('\n') + '\n';
}
