import type { Host, Instance, Inventory } from '../../inventory/index.js';
import type { Deps } from '../deps/deps.js';
import { fullestDisk, memoryUsed, probeHost, probeInstance, type HostSample, type InstanceSample } from './probes.js';

/** How many samples each sparkline keeps. */
export const HISTORY = 60;
/**
 * Results are handed to screens at most this often (longer for a large scope, whose snapshot costs
 * more to copy): a redraw per probe result would be wasted work, and every redraw is one a key
 * pressed at that moment waits for.
 */
const NOTIFY_MS = 500;

export interface Tracked<S> {
  sample?: S;
  /** When the last sample arrived (ms since epoch). */
  at?: number;
  /** When the probe now running started; undefined when none runs. */
  since?: number;
  history: Record<string, number[]>;
}

export interface SamplerState {
  hosts: Map<string, Tracked<HostSample>>;
  instances: Map<string, Tracked<InstanceSample>>;
  /** Names whose newest sample is bad, kept as results arrive: counting them is then cheap. */
  bad: { hosts: ReadonlySet<string>; instances: ReadonlySet<string>; databases: ReadonlySet<string> };
}

export interface SamplerOptions {
  intervalMs: number;
  /** Probes running at once, across hosts and instances. */
  parallel?: number;
  /**
   * Probes started per second at most, whatever the count: 10,000 instances must not turn the jump
   * box into a load test. A larger scope takes longer rounds (and isStale allows for them).
   */
  maxPerSecond?: number;
  timeoutMs?: number;
}

function mark(set: Set<string>, name: string, bad: boolean): void {
  if (bad) set.add(name);
  else set.delete(name);
}

function push(h: Record<string, number[]>, key: string, v: number | undefined): void {
  if (v === undefined || !Number.isFinite(v)) return;
  const a = (h[key] ??= []);
  a.push(v);
  if (a.length > HISTORY) a.shift();
}

/**
 * The inventory as one tick's instance probes see it: what each of them asks (its half-restored
 * record, its watch state, its host, its environment's backup-age limit) read once for the whole tick instead of once per probe;
 * on a team inventory every query is a round trip that holds up the console's event loop. Everything
 * else goes to the inventory itself (the view's prototype).
 */
function tickView(inv: Inventory): Inventory {
  const half = new Map(inv.listHalfRestored().map((h) => [h.instance, h]));
  const watched = inv.watchStates();
  let hosts: Map<string, Host> | undefined;
  const limits = new Map<string, string>();
  const view = Object.create(inv) as Inventory;
  view.getHalfRestored = (name) => half.get(name);
  view.watchState = (name) => watched.get(name);
  // probeDatabase's host; one removed since the tick began: the inventory says so, as before.
  view.requireHost = (name) => (hosts ??= new Map(inv.listHosts().map((h) => [h.name, h]))).get(name) ?? inv.requireHost(name);
  view.backupAgeLimit = (env) => {
    let l = limits.get(env);
    if (l === undefined) limits.set(env, (l = inv.backupAgeLimit(env)));
    return l;
  };
  return view;
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
  /** Probes waiting for the budget: never more than about two seconds' worth (see tick). */
  private queue: (() => Promise<void>)[] = [];
  private notifyPending = false;
  /** Every host and instance in scope, probed round-robin from `cursor`. */
  private targets: ({ host: string; paths: string[] } | { instance: Instance })[] = [];
  private cursor = 0;
  /** Probes started so far (for the budget's test and the benchmark). */
  probesStarted = 0;
  /** Probes queued and not yet started. */
  get waiting(): number {
    return this.queue.length;
  }
  // The live records; snapshots handed to screens are copies, so a snapshot never changes under them.
  private hosts = new Map<string, Tracked<HostSample>>();
  private instances = new Map<string, Tracked<InstanceSample>>();
  private bad = { hosts: new Set<string>(), instances: new Set<string>(), databases: new Set<string>() };
  private cycle = 0;

  constructor(
    private readonly deps: Deps,
    private readonly opts: SamplerOptions,
  ) {
    this.state = { hosts: new Map(), instances: new Map(), bad: this.bad };
  }

  subscribe = (l: () => void) => {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  };
  getSnapshot = () => this.state;

  /** Which instances (and so which hosts) to watch; the dashboard narrows it to its filter. */
  setScope(instances: Instance[]): void {
    const hosts = new Map<string, string[]>();
    for (const i of instances) {
      const paths = hosts.get(i.host);
      if (paths) paths.push(i.path);
      else hosts.set(i.host, [i.path]);
    }
    this.targets = [...[...hosts].map(([host, paths]) => ({ host, paths })), ...instances.map((instance) => ({ instance }))];
    this.cursor = 0;
    // The time one round of every target takes: the interval, or longer when the targets are more
    // than the probe budget covers in one interval. Kept: isStale asks for it once per row drawn.
    this.cycle = Math.max(this.opts.intervalMs, (this.targets.length / this.perSecond) * 1000);
    this.notifyMs = Math.max(NOTIFY_MS, this.targets.length / 100);
    // After the current frame: queueing thousands of probes must not hold up the first one drawn.
    setImmediate(() => this.tick());
  }

  start(): void {
    if (this.timer) return;
    // A tick checks what is due; it is cheap, so it can run more often than the interval.
    this.timer = setInterval(() => this.tick(), Math.min(1000, this.opts.intervalMs));
    this.timer.unref();
    setImmediate(() => this.tick());
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.pumpTimer);
    this.timer = this.pumpTimer = undefined;
    this.queue = [];
  }

  /** Whether a target's sample is late: none for two rounds plus a probe's time limit. */
  isStale(t: Tracked<unknown> | undefined, now = Date.now()): boolean {
    if (!t) return false;
    const last = t.at ?? t.since;
    return last !== undefined && now - last > 2 * this.cycle + (this.opts.timeoutMs ?? 10_000) / 2;
  }

  private due(t: Tracked<unknown> | undefined, now: number): boolean {
    return !t || (t.since === undefined && (t.at === undefined || now - t.at >= this.opts.intervalMs));
  }

  private get perSecond(): number {
    return this.opts.maxPerSecond ?? 100;
  }
  private notifyMs = NOTIFY_MS;

  /**
   * Queues the targets that are due, round-robin from where the last tick stopped, up to what the
   * budget starts before the next tick: the queue never holds the whole fleet (100,000 waiting
   * probes, each marked as probing long before it starts), and every target gets its turn.
   */
  private tick(): void {
    const now = Date.now();
    let room = this.perSecond + (this.opts.parallel ?? 16) - this.queue.length;
    // Read once per tick, when the first probe that needs them is queued.
    let newest: Map<string, string> | undefined;
    let hosts: Map<string, Host> | undefined;
    let deps: Deps | undefined;
    const n = this.targets.length;
    for (let seen = 0; seen < n && room > 0; seen++) {
      const target = this.targets[this.cursor];
      this.cursor = (this.cursor + 1) % n;
      if ('host' in target) {
        const { host: name, paths } = target;
        if (!this.due(this.hosts.get(name), now)) continue;
        room--;
        hosts ??= new Map(this.deps.inv.listHosts().map((h) => [h.name, h]));
        const host = hosts.get(name);
        this.enqueue(
          this.hosts,
          name,
          // A host removed since the scope was set: requireHost says so, as the probe's reason.
          () => probeHost(this.deps, host ?? this.deps.inv.requireHost(name), paths, this.opts.timeoutMs),
          (s, h) => {
            push(h, 'load', s.load?.[0]);
            push(h, 'cpu', s.cpu);
            push(h, 'disk', fullestDisk(s));
            push(h, 'mem', memoryUsed(s));
            mark(this.bad.hosts, name, !s.ok);
          },
        );
        continue;
      }
      const inst = target.instance;
      if (!this.due(this.instances.get(inst.name), now)) continue;
      room--;
      // The newest backup of every instance in one query per tick, not one per instance.
      newest ??= this.deps.inv.latestBackupTimes();
      deps ??= { ...this.deps, inv: tickView(this.deps.inv) };
      const backups = newest;
      const view = deps;
      this.enqueue(
        this.instances,
        inst.name,
        async () => probeInstance(view, inst, Date.now(), backups, this.hosts.get(inst.host)?.sample),
        (s, h) => {
          push(h, 'http', s.http?.ms);
          push(h, 'connections', s.db?.connections);
          for (const [k, v] of Object.entries(s.metrics ?? {})) if (typeof v === 'number') push(h, `metric:${k}`, v);
          mark(this.bad.instances, inst.name, !s.ok);
          mark(this.bad.databases, inst.name, s.db?.ok === false);
        },
      );
    }
  }

  private enqueue<S>(map: Map<string, Tracked<S>>, key: string, probe: () => Promise<S>, record: (s: S, history: Record<string, number[]>) => void): void {
    const t = map.get(key) ?? { history: {} };
    map.set(key, { ...t, since: Date.now() });
    this.queue.push(async () => {
      const s = await probe().catch((err: Error) => ({ ok: false, reason: err.message }) as unknown as S);
      const cur = map.get(key) ?? { history: {} };
      // The arrays are this target's own and replaced only here: copy-on-write per series.
      const history: Record<string, number[]> = {};
      for (const k of Object.keys(cur.history)) history[k] = cur.history[k].slice(-(HISTORY - 1));
      record(s, history);
      map.set(key, { sample: s, at: Date.now(), since: undefined, history });
      this.changed();
    });
    this.changed();
    this.pump();
  }

  private started: number[] = [];
  private pumpTimer?: NodeJS.Timeout;

  private pump(): void {
    const limit = this.opts.parallel ?? 16;
    const perSecond = this.perSecond;
    while (this.running < limit && this.queue.length) {
      const now = Date.now();
      while (this.started.length && now - this.started[0] >= 1000) this.started.shift();
      if (this.started.length >= perSecond) {
        // Over budget for this second: come back when the oldest start is a second old.
        if (!this.pumpTimer) {
          this.pumpTimer = setTimeout(
            () => {
              this.pumpTimer = undefined;
              this.pump();
            },
            1000 - (now - this.started[0]) + 1,
          );
          this.pumpTimer.unref();
        }
        return;
      }
      this.started.push(now);
      this.probesStarted++;
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
      const bad = { hosts: new Set(this.bad.hosts), instances: new Set(this.bad.instances), databases: new Set(this.bad.databases) };
      this.state = { hosts: new Map(this.hosts), instances: new Map(this.instances), bad };
      for (const l of this.listeners) l();
    }, this.notifyMs).unref();
  }
}
