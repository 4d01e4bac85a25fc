/**
 * What the parts of bench/ui.ts share: the environment's settings (BENCH_RUNS, BENCH_SCALES, BENCH_HOSTS,
 * BENCH_BIN, BENCH_BEFORE, BENCH_ONLY), medians and formats, and timing a command line from a shell.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const RUNS = Number(process.env.BENCH_RUNS ?? 3);
export const SCALES = (process.env.BENCH_SCALES ?? '1000,10000,100000').split(',').map(Number);
export const HOSTS = Number(process.env.BENCH_HOSTS ?? 500);
export const BIN = process.env.BENCH_BIN ?? resolve(import.meta.dirname, '..', '..', 'bin', 'opsdeck');
export const BEFORE = process.env.BENCH_BEFORE;
export const ONLY = process.env.BENCH_ONLY?.split(',');
export const part = (p: string) => !ONLY || ONLY.includes(p);
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))];
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const ms = (t: number) => `${t.toFixed(0)} ms`;
export const n = (x: number) => x.toLocaleString('en');

export function timedCli(args: string[], shell?: string): number {
  const t = performance.now();
  const r = shell ? spawnSync('bash', ['-o', 'pipefail', '-c', shell], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawnSync(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`bench: ${shell ?? args.join(' ')}: ${r.stderr}`);
  return performance.now() - t;
}

/** Wall and CPU (user + system, the process and its children) of a command line, median of `times`. */
export function wallAndCpu(line: string, times = 5): { wall: number; cpu: number } {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < times; i++) {
    const r = spawnSync('bash', ['-c', `TIMEFORMAT='%R %U %S'; time ( ${line} > /dev/null 2>/dev/null )`], { encoding: 'utf8' });
    const [w, u, s] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
    wall.push(w * 1000);
    cpu.push((u + s) * 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}
