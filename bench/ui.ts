/**
 * npm run bench (second part), or npm run bench:ui alone: the console at scale, the CLI's start-up and
 * the health sweep.
 *
 * console: inventories of 1,000, 10,000 and 100,000 instances on 500 hosts (BENCH_SCALES), the real
 *   program in a pseudo-terminal (script(1)) with its sampler running: time to the first frame, from
 *   a key press to the frame that shows its effect (typing a filter, jumping to the bottom and top),
 *   and the process's peak resident memory. Baseline: what a user would otherwise run for the same
 *   answer, `opsdeck instance list` (all of it, or piped to grep).
 * team: the same 10,000-instance console on a PostgreSQL inventory (the lab's cluster, `team init`),
 *   against the SQLite figures (issue 11: within 1.2x). Keys are sent once the console is idle after its
 *   first frame, the same rule on both (ui-console.ts idle()); how long that takes is a row of its own.
 * start-up: `opsdeck --version` and `opsdeck instance list` from a shell, wall and CPU (every command,
 *   every test's cli() call, is a fresh Node process), against `node -e 0`.
 * sweep: one health sweep of every lab host and instance, against OpenSSH, curl and psql run side
 *   by side from a shell; wall time and SSH connections opened.
 *
 * The 500 hosts are loopback addresses where nothing listens (127.1.x.y): probes fail at once, and
 * nothing leaves the machine. BENCH_BIN runs another build's bin/opsdeck on the same inventories
 * (the before of a change); BENCH_BEFORE=ANOTHER/bin/opsdeck runs that one too, run for run in turn
 * with BENCH_BIN on the same inventories (on a shared machine, both see the same load), and prints its
 * figures beside; BENCH_ONLY=console,team,startup,sweep picks parts.
 *
 * Its parts: ui-common.ts (settings, medians, timing a command line), ui-inventories.ts (the SQLite and
 * team inventories, the first read), ui-console.ts (the console in a pseudo-terminal), ui-cli.ts
 * (start-up and the sweep).
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { startLab } from '../fixtures/lab.js';
import { quoteArg } from '../src/remote/quote.js';
import { startupRows, sweepRows } from './ui-cli.js';
import { BIN, HOSTS, median, ms, n, p95, part, RUNS, SCALES, timedCli } from './ui-common.js';
import { consoleCells, consoleRuns } from './ui-console.js';
import { firstRead, pgInventory, sqliteInventory } from './ui-inventories.js';

// Importers of the inventory fillers (they were here before the split).
export { pgInventory, sqliteInventory } from './ui-inventories.js';

const GOAL_FIRST: Record<number, string> = { 10_000: '< 300 ms', 100_000: '< 1.5 s' };

export async function uiBench(): Promise<string[]> {
  const lab = await startLab();
  const out: string[] = [];
  const sqlite10k: { home?: string; figures?: Awaited<ReturnType<typeof consoleRuns>> } = {};

  if (part('console') || part('team')) {
    const rows: string[] = [];
    const base: string[] = [];
    for (const count of part('console') ? SCALES : [10_000]) {
      process.stderr.write(`bench: an inventory of ${n(count)} instances on ${HOSTS} hosts...\n`);
      const home = sqliteInventory(lab.dir, count);
      const f = await consoleRuns(home, count);
      rows.push(`| ${n(count)} | ${consoleCells(f)} | ${GOAL_FIRST[count] ?? ''} |`);
      if (f.before) rows.push(`| ${n(count)}, before (BENCH_BEFORE) | ${consoleCells(f.before)} | |`);
      if (count === 10_000) {
        sqlite10k.figures = f;
        const lists = Array.from({ length: RUNS }, () => timedCli(['--home', home, 'instance', 'list']));
        const greps = Array.from({ length: RUNS }, () => timedCli([], `${quoteArg(BIN)} --home ${quoteArg(home)} instance list | grep -c app12 > /dev/null`));
        base.push(
          `| first frame, from start (vs \`opsdeck instance list\`, all ${n(count)} rows) | ${ms(median(lists))} | ${ms(f.first)} | ${(f.first / median(lists)).toFixed(2)}x | < 300 ms |`,
          `| a filter key to its frame, ${f.filter.length} keys (vs \`opsdeck instance list \\| grep\`) | ${ms(median(greps))} | ${ms(median(f.filter))} (p95 ${ms(p95(f.filter))}) | ${(median(f.filter) / median(greps)).toFixed(3)}x | < 25 ms (p95 < 50) |`,
          `| jump to bottom / top (G, g) to its frame, ${f.jump.length} keys (vs the same) | ${ms(median(greps))} | ${ms(median(f.jump))} (p95 ${ms(p95(f.jump))}) | ${(median(f.jump) / median(greps)).toFixed(3)}x | < 25 ms (p95 < 50) |`,
        );
      }
      spawnSync('rm', ['-rf', home]);
    }
    if (part('console')) {
      out.push(
        `## The console on 500 hosts (real terminal 160x50, sampler running; median of ${RUNS} runs, keys pooled)`,
        '',
        '| instances | first frame from start (its CPU, page faults) | filter key to frame, p50 / p95 | G / g to frame, p50 / p95 | CPU, bytes written per key | peak RSS | goal, first frame |',
        '|---|---|---|---|---|---|---|',
        ...rows,
        '',
        'Goals: key to frame < 25 ms (p95 < 50 ms) and independent of the count; 100,000 instances < 400 MB. CPU: what the console process used (to its first frame; per key, from the key to its frame, the sampler included), steadier than wall time on a busy machine.',
        '',
        '| what (10,000 instances) | baseline | opsdeck | ratio | goal |',
        '|---|---|---|---|---|',
        ...base,
        '',
      );
    }
  }

  if (part('team')) {
    process.stderr.write('bench: the same console on a PostgreSQL inventory...\n');
    const pg = pgInventory(lab, 10_000);
    const sqlHome = sqliteInventory(lab.dir, 10_000);
    try {
      const load = (l = loadavg()) => l.map((x) => x.toFixed(2)).join(' ');
      const loadBefore = load();
      // SQLite again, right before PostgreSQL: on a shared machine the load changes within minutes.
      const s = await consoleRuns(sqlHome, 10_000);
      const owner = await consoleRuns(pg.home, 10_000, pg.env);
      process.stderr.write('bench: ... logged in as an operator (row-level security applies)\n');
      const op = await consoleRuns(pg.operator.home, 10_000, pg.operator.env);
      const r = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
      const row = (what: string, a: number, b: number, c: number, goal = '') => `| ${what} | ${ms(a)} | ${ms(b)} (${r(b, a)}) | ${ms(c)} (${r(c, a)}) | ${goal} |`;
      out.push(
        `## The console with 10,000 instances on a team inventory (PostgreSQL on this machine) against SQLite (median of ${RUNS})`,
        '',
        "PostgreSQL as the team admin who made it (its tables' owner: row-level security does not apply) and as an operator granted on every environment (it does).",
        `SQLite run right before PostgreSQL. Load average (1, 5, 15 min) before these runs: ${loadBefore}; after them: ${load()}.`,
        '',
        '| what | SQLite | PostgreSQL, team admin (ratio) | PostgreSQL, operator (ratio) | goal |',
        '|---|---|---|---|---|',
        row('first frame, from start', s.first, owner.first, op.first, '<= 1.2x'),
        row('CPU to the first frame', s.firstCpu, owner.firstCpu, op.firstCpu),
        row('first frame to idle (the whole inventory read; keys are sent then)', s.ready, owner.ready, op.ready),
        row('CPU per key', s.keyCpu, owner.keyCpu, op.keyCpu),
        row('a filter key to its frame, p50', median(s.filter), median(owner.filter), median(op.filter), '<= 1.2x'),
        row('a filter key to its frame, p95', p95(s.filter), p95(owner.filter), p95(op.filter)),
        row('G / g to its frame, p50', median(s.jump), median(owner.jump), median(op.jump), '<= 1.2x'),
        `| peak RSS | ${s.rss.toFixed(0)} MB | ${owner.rss.toFixed(0)} MB | ${op.rss.toFixed(0)} MB | |`,
        ...(s.before && owner.before && op.before
          ? [
              row('before (BENCH_BEFORE): first frame, from start', s.before.first, owner.before.first, op.before.first),
              row('before (BENCH_BEFORE): CPU to the first frame', s.before.firstCpu, owner.before.firstCpu, op.before.firstCpu),
            ]
          : []),
        '',
      );
      process.stderr.write('bench: where the first read goes...\n');
      const parts = [firstRead(sqlHome), firstRead(pg.home, pg.env.OPSDECK_INVENTORY_PASSWORD), firstRead(pg.operator.home, pg.operator.env.OPSDECK_INVENTORY_PASSWORD)];
      const cell = (x: { wall: number; cpu: number }) => `${ms(x.wall)} (CPU ${ms(x.cpu)})`;
      const total = (xs: { wall: number; cpu: number }[]) => ({ wall: xs.reduce((a, x) => a + x.wall, 0), cpu: xs.reduce((a, x) => a + x.cpu, 0) });
      out.push(
        `### Where the first read goes (10,000 instances, in one process, wall and its CPU; median of ${RUNS})`,
        '',
        '| step | SQLite | PostgreSQL, team admin | PostgreSQL, operator |',
        '|---|---|---|---|',
        ...parts[0].map((p, i) => `| ${p.step} | ${cell(p)} | ${cell(parts[1][i])} | ${cell(parts[2][i])} |`),
        `| all | ${cell(total(parts[0]))} | ${cell(total(parts[1]))} | ${cell(total(parts[2]))} |`,
        '',
      );
    } finally {
      pg.drop();
      spawnSync('rm', ['-rf', sqlHome]);
    }
  }

  if (part('startup')) out.push(...startupRows(lab));

  if (part('sweep')) out.push(...(await sweepRows(lab)));
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write((await uiBench()).join('\n') + '\n');
}
