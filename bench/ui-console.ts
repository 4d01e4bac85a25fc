/**
 * The console in a pseudo-terminal (script(1)) for bench/ui.ts: time to the first frame, each key to
 * the frame that shows it, CPU from /proc and peak resident memory; BENCH_BEFORE's build run for run
 * in turn with BENCH_BIN's.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { quoteArg } from '../src/remote/quote.js';
import { BEFORE, BIN, median, ms, n, p95, RUNS, sleep } from './ui-common.js';

/** Peak resident memory of a process and its children, in MB (VmHWM). */
function peakRss(pid: number): number {
  let kb = 0;
  const read = (p: number) => {
    try {
      kb = Math.max(kb, Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0));
      for (const c of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').split(' ').filter(Boolean)) read(Number(c));
    } catch {
      // Gone already.
    }
  };
  read(pid);
  return kb / 1024;
}

/** The process the console runs in: script(1)'s child (its sh execs opsdeck). */
function consolePid(scriptPid: number): number | undefined {
  try {
    const c = readFileSync(`/proc/${scriptPid}/task/${scriptPid}/children`, 'utf8').trim().split(' ')[0];
    return c ? Number(c) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used so far, in ms: on a busy machine, steadier than wall time. */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/**
 * Page faults (minor: memory touched for the first time) a process has taken so far. On this VM each
 * costs about 30 us of CPU (10 MB newly touched: 70-86 ms), a large part of a start-up's CPU.
 */
function faults(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[7]);
  } catch {
    return NaN;
  }
}

/**
 * Time the process's threads have run or waited for a CPU so far, in ms (/proc/PID/task/N/schedstat):
 * how much CPU it wanted, whether or not a busy machine gave it a core.
 */
function busyMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  let ns = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
      ns += run + wait;
    }
  } catch {
    return NaN;
  }
  return ns / 1e6;
}

/**
 * Waits, from the first frame (`since`, performance.now()), at least half a second (a person's
 * pause), then until the console is idle: a 300 ms window in which its threads wanted a CPU less
 * than half the time (reading the whole inventory right after the first frame wants one
 * throughout; the sampler's steady probing, about a third). The same rule on every inventory, so a
 * key is timed against the loaded console on each (keys typed earlier wait for that reading: `ready`
 * says how long it takes). Returns the ms from the first frame to the idle window's start.
 */
async function idle(pid: number | undefined, since: number, limitMs = 10_000): Promise<number> {
  await sleep(500);
  for (;;) {
    const b = busyMs(pid);
    const t = performance.now();
    await sleep(300);
    const busy = (busyMs(pid) - b) / (performance.now() - t);
    if (!(busy >= 0.5) || t - since > limitMs) return t - since;
  }
}

export interface ConsoleFigures {
  first: number;
  filter: number[];
  jump: number[];
  rss: number;
  /** CPU the console used up to its first frame, and per key (key to frame, sampler included), in ms. */
  firstCpu: number;
  keyCpu: number;
  /** Bytes written to the terminal per key, from the key to its frame (a 160x50 frame written whole: ~10 KB). */
  keyBytes: number;
  /** Page faults up to the first frame. */
  firstFaults: number;
  /** From the first frame until the console is idle (see idle()), in ms: when its first key is sent. */
  ready: number;
}

/** The console in a pseudo-terminal: first frame, then keys, each timed to the frame that shows it. */
async function consoleRun(home: string, count: number, env: NodeJS.ProcessEnv = {}, bin = BIN): Promise<ConsoleFigures> {
  const t0 = performance.now();
  const child = spawn('script', ['-qfec', `stty rows 50 cols 160; exec ${quoteArg(bin)} --home ${quoteArg(home)}`, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env, TERM: 'xterm-256color', CI: '' },
  });
  let buf = '';
  let bytes = 0;
  let waiting: { re: RegExp; from: number; resolve: (t: number) => void } | undefined;
  const check = () => {
    if (waiting && waiting.re.test(buf.slice(waiting.from))) {
      const w = waiting;
      waiting = undefined;
      w.resolve(performance.now());
    }
  };
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    bytes += d.length;
    check();
  });
  const waitFor = (re: RegExp, from: number) =>
    new Promise<number>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`bench: the console never showed ${re}; it showed:\n${buf.slice(-2000)}`)), 60_000);
      waiting = { re, from, resolve: (t) => (clearTimeout(timer), res(t)) };
      check();
    });
  let pid: number | undefined;
  let keyCpu = 0;
  let keyBytes = 0;
  let keys = 0;
  const key = async (k: string, re: RegExp) => {
    const from = buf.length;
    const b = bytes;
    const c = cpuMs(pid);
    const t = performance.now();
    child.stdin.write(k);
    const dt = (await waitFor(re, from)) - t;
    keyCpu += cpuMs(pid) - c;
    keyBytes += bytes - b;
    keys++;
    return dt;
  };
  try {
    const firstAt = await waitFor(/INSTANCES/, 0);
    const first = firstAt - t0;
    pid = consolePid(child.pid!);
    const firstCpu = cpuMs(pid);
    const firstFaults = faults(pid);
    // Raw mode is on once the first frame is drawn; give the terminal a moment, as a person would,
    // and the console the time to read the whole inventory (keys typed before wait for it).
    const ready = await idle(pid, firstAt);
    const filter: number[] = [];
    const typed = 'app12';
    await key('/', /\//);
    for (let i = 1; i <= typed.length; i++) filter.push(await key(typed[i - 1], new RegExp(`filter "${typed.slice(0, i)}"`)));
    await key('\r', /./);
    await key('\x1b', new RegExp(`of ${count}`));
    const jump: number[] = [];
    for (let i = 0; i < 10; i++) {
      jump.push(await key('G', new RegExp(`–${count} of ${count}`)));
      jump.push(await key('g', new RegExp(`(?:^|\\D)1–\\d+ of ${count}`)));
    }
    return { first, filter, jump, rss: peakRss(child.pid!), firstCpu, keyCpu: keyCpu / keys, keyBytes: keyBytes / keys, firstFaults, ready };
  } finally {
    child.stdin.write('q');
    await sleep(300);
    child.kill();
  }
}

/** RUNS console runs on one inventory, their figures pooled; with BENCH_BEFORE, as many of that build's, in turn with these. */
export async function consoleRuns(home: string, count: number, env: NodeJS.ProcessEnv = {}): Promise<ConsoleFigures & { before?: ConsoleFigures }> {
  const bins = BEFORE ? [BIN, BEFORE] : [BIN];
  const runs = bins.map(() => [] as ConsoleFigures[]);
  for (let run = 0; run < RUNS; run++) {
    for (const [b, bin] of bins.entries()) {
      process.stderr.write(`bench: console with ${n(count)} instances, run ${run + 1} of ${RUNS}${b ? ' (before)' : ''}\n`);
      runs[b].push(await consoleRun(home, count, env, bin));
    }
  }
  const pool = (rs: ConsoleFigures[]): ConsoleFigures => ({
    first: median(rs.map((r) => r.first)),
    filter: rs.flatMap((r) => r.filter),
    jump: rs.flatMap((r) => r.jump),
    rss: median(rs.map((r) => r.rss)),
    firstCpu: median(rs.map((r) => r.firstCpu)),
    firstFaults: median(rs.map((r) => r.firstFaults)),
    ready: median(rs.map((r) => r.ready)),
    keyCpu: median(rs.map((r) => r.keyCpu)),
    keyBytes: median(rs.map((r) => r.keyBytes)),
  });
  return { ...pool(runs[0]), ...(BEFORE && { before: pool(runs[1]) }) };
}

/** A console table row: first frame (its CPU), filter key and G/g to frame p50 / p95, CPU per key, peak RSS. */
export const consoleCells = (f: ConsoleFigures) =>
  `${ms(f.first)} (CPU ${ms(f.firstCpu)}, ${n(f.firstFaults)} page faults) | ${ms(median(f.filter))} / ${ms(p95(f.filter))} | ${ms(median(f.jump))} / ${ms(p95(f.jump))} | ${ms(f.keyCpu)}, ${(f.keyBytes / 1024).toFixed(1)} KB written | ${f.rss.toFixed(0)} MB`;
