import type { Instance } from '../../inventory/index.js';
import type { Deps } from '../actions/deps.js';
import { probeHost, probeInstance, type HostSample, type InstanceSample } from './probes.js';

/** How many samples each sparkline keeps. */
export const HISTORY = 60;

export interface Tracked<S> {
  sample?: S;
  /** When the last sample arrived (ms since epoch). */
  at?: number;
  /** When the probe now running started; undefined when none runs. */
  since?: number;
  history: Record<string, number[]>;
}

export interface SamplerState {
  /** Bumped on every change, so subscribers can tell snapshots apart cheaply. */
  version: number;
  hosts: Map<string, Tracked<HostSample>>;
  instances: Map<string, Tracked<InstanceSample>>;
  intervalMs: number;
}

export interface SamplerOptions {
  intervalMs: number;
  /** Probes running at once, across hosts and instances. */
  parallel?: number;
  timeoutMs?: number;
}

function push(h: Record<string, number[]>, key: string, v: number | undefined): void {
  if (v === undefined || !Number.isFinite(v)) return;
  const a = (h[key] ??= []);
  a.push(v);
  if (a.length > HISTORY) a.shift();
}

/**
 * Probes hosts and instances on an interval, outside React: each target on its own clock, so a host
 * that hangs holds up only its own row (it goes stale, then red when its probe times out) while the
 * others keep updating. Screens subscribe and read snapshots; nothing here draws.
 */
export class Sampler {
  private state: SamplerState;
  private listeners = new Set<() => void>();
  private timer?: NodeJS.Timeout;
  private running = 0;
  private queue: (() => Promise<void>)[] = [];
  private notifyPending = false;
  private scope: Instance[] = [];
  // The live records; snapshots handed to screens are copies, so a snapshot never changes under them.
  private hosts = new Map<string, Tracked<HostSample>>();
  private instances = new Map<string, Tracked<InstanceSample>>();

  constructor(private readonly deps: Deps, private readonly opts: SamplerOptions) {
    this.state = { version: 0, hosts: new Map(), instances: new Map(), intervalMs: opts.intervalMs };
  }

  subscribe = (l: () => void) => {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  };
  getSnapshot = () => this.state;

  /** Which instances (and so which hosts) to watch; the dashboard narrows it to its filter. */
  setScope(instances: Instance[]): void {
    this.scope = instances;
    this.tick();
  }

  start(): void {
    if (this.timer) return;
    // A tick checks what is due; it is cheap, so it can run more often than the interval.
    this.timer = setInterval(() => this.tick(), Math.min(1000, this.opts.intervalMs));
    this.timer.unref();
    this.tick();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.queue = [];
  }

  /** Whether a target's sample is late: none for two intervals plus a probe's time limit. */
  isStale(t: Tracked<unknown> | undefined, now = Date.now()): boolean {
    if (!t) return false;
    const last = t.at ?? t.since;
    return last !== undefined && now - last > 2 * this.opts.intervalMs + (this.opts.timeoutMs ?? 10_000) / 2;
  }

  private due(t: Tracked<unknown> | undefined, now: number): boolean {
    return !t || (t.since === undefined && (t.at === undefined || now - t.at >= this.opts.intervalMs));
  }

  private tick(): void {
    const now = Date.now();
    const hosts = new Map<string, string[]>();
    for (const i of this.scope) hosts.set(i.host, [...(hosts.get(i.host) ?? []), i.path]);
    for (const [name, paths] of hosts) {
      const t = this.hosts.get(name);
      if (this.due(t, now)) this.enqueue(this.hosts, name, () => probeHost(this.deps, this.deps.inv.requireHost(name), paths, this.opts.timeoutMs), (s, h) => {
        push(h, 'load', s.load?.[0]);
        push(h, 'cpu', s.cpu);
        push(h, 'disk', s.disks?.length ? Math.max(...s.disks.map((d) => (d.size ? d.used / d.size : 0))) : undefined);
        push(h, 'mem', s.memTotal ? s.memUsed! / s.memTotal : undefined);
      });
    }
    const due = this.scope.filter((i) => this.due(this.instances.get(i.name), now));
    if (!due.length) return;
    // The newest backup of every instance in one query per tick, not one per instance.
    const newest = this.deps.inv.latestBackupTimes();
    for (const inst of due) {
      this.enqueue(this.instances, inst.name, async () => {
        const host = this.hosts.get(inst.host)?.sample;
        const s = await probeInstance(this.deps, inst, Date.now(), newest, { hostDown: host ? !host.ok : false });
        if (host && !host.ok) {
          s.ok = false;
          s.reasons.unshift(`host ${host.host} down: ${host.reason}`);
        }
        return s;
      }, (s, h) => {
        push(h, 'http', s.http?.ms);
        push(h, 'connections', s.db?.connections);
        push(h, 'dbSize', s.db?.sizeBytes);
        for (const [k, v] of Object.entries(s.metrics ?? {})) if (typeof v === 'number') push(h, `metric:${k}`, v);
      });
    }
  }

  private enqueue<S>(map: Map<string, Tracked<S>>, key: string, probe: () => Promise<S>, record: (s: S, history: Record<string, number[]>) => void): void {
    const t = map.get(key) ?? { history: {} };
    map.set(key, { ...t, since: Date.now() });
    this.queue.push(async () => {
      const s = await probe().catch((err: Error) => ({ ok: false, reason: err.message }) as unknown as S);
      const cur = map.get(key) ?? { history: {} };
      const history = { ...cur.history };
      for (const k of Object.keys(history)) history[k] = [...history[k]];
      record(s, history);
      map.set(key, { sample: s, at: Date.now(), since: undefined, history });
      this.changed();
    });
    this.changed();
    this.pump();
  }

  private pump(): void {
    const limit = this.opts.parallel ?? 16;
    while (this.running < limit && this.queue.length) {
      const job = this.queue.shift()!;
      this.running++;
      void job().finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  /** Coalesces a burst of results into one new snapshot and one notification. */
  private changed(): void {
    if (this.notifyPending) return;
    this.notifyPending = true;
    setTimeout(() => {
      this.notifyPending = false;
      this.state = { ...this.state, version: this.state.version + 1, hosts: new Map(this.hosts), instances: new Map(this.instances) };
      for (const l of this.listeners) l();
    }, 50).unref();
  }
}
