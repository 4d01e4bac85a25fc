/**
 * The command line's parts of bench/ui.ts: start-up of one command (wall and CPU against `node -e 0`)
 * and one health sweep of the lab against ssh, curl and psql side by side.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostAddArgs, labSsh, makeLabInstance, opsdeckSync, type Lab } from '../fixtures/lab.js';
import { Inventory } from '../inventory/index.js';
import { openApp } from '../src/app/app.js';
import { HOST_SCRIPT, sweep } from '../src/health/probes.js';
import { quoteArg } from '../src/remote/quote.js';
import { BEFORE, BIN, median, ms, RUNS, timedCli, wallAndCpu } from './ui-common.js';
import { fill } from './ui-inventories.js';

async function sweepBench(lab: Lab): Promise<{ base: number; ops: number; opsCli: number; before?: number; opened: number; baseConns: number; hosts: number; instances: number; loads: string[] }> {
  const home = mkdtempSync(join(lab.dir, 'bench-sweep-'));
  const ops = (args: string[], env: NodeJS.ProcessEnv = {}) => opsdeckSync(home, args, env);
  ops(['env', 'add', 'dev']);
  const insts = lab.hosts.map((h) => ({ h, i: makeLabInstance(lab, h.name, `bench-sweep-${h.name}`) }));
  for (const { h, i } of insts) {
    ops(hostAddArgs(lab, h));
    ops(['instance', 'add', i.name, '--host', h.name, '--path', i.path, '--env', 'dev', '--db', i.dbUrl, '--url', i.url], { OPSDECK_DB_PASSWORD: i.password });
  }
  const ssh = labSsh(lab, join(home, 'known_hosts'));
  // The baseline: every host's figures, every site, every database's size and connections, side by side.
  const sql = "SELECT pg_database_size(current_database()), (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), current_setting('max_connections')";
  const script = [
    ...insts.map(({ h, i }) => `${ssh(h)} ${quoteArg(`sh -c ${quoteArg(HOST_SCRIPT)} sh ${i.path}`)} > /dev/null &`),
    ...insts.map(({ i }) => `curl -s -o /dev/null -w '%{http_code}' ${i.url} > /dev/null &`),
    ...insts.map(
      ({ h, i }) =>
        `{ echo ${i.password}; } | ${ssh(h)} ${quoteArg(`read -r PGPASSWORD; export PGPASSWORD; exec psql -X -At -h 127.0.0.1 -p ${lab.pg.port} -U ${i.role} -c ${quoteArg(sql)} ${i.db}`)} > /dev/null &`,
    ),
    'wait',
  ].join('\n');
  const base: number[] = [];
  const opsT: number[] = [];
  const cli: number[] = [];
  const before: number[] = [];
  const loads: string[] = [];
  let opened = 0;
  for (let run = 0; run < RUNS; run++) {
    loads.push(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    base.push(timedCli([], script));
    const app = openApp(home);
    const t = performance.now();
    const r = await sweep(app, app.inv.listInstances());
    opsT.push(performance.now() - t);
    opened = app.ssh.opened;
    if (r.hosts.some((h) => !h.ok) || r.instances.some((i) => !i.db?.ok)) throw new Error(`bench: a probe failed: ${JSON.stringify(r)}`);
    await app.close();
    // BENCH_BEFORE: that build's health too, in turn with this one (first alternating), under the same load.
    const health = (bin: string) => timedCli([], `${quoteArg(bin)} --home ${quoteArg(home)} health --json > /dev/null || true`);
    for (const bin of BEFORE ? (run % 2 ? [BEFORE, BIN] : [BIN, BEFORE]) : [BIN]) (bin === BIN ? cli : before).push(health(bin));
  }
  spawnSync('rm', ['-rf', home]);
  return {
    base: median(base),
    ops: median(opsT),
    opsCli: median(cli),
    ...(BEFORE && { before: median(before) }),
    opened,
    baseConns: insts.length * 2,
    hosts: lab.hosts.length,
    instances: insts.length,
    loads,
  };
}

/** Start-up of one command, its table. */
export function startupRows(lab: Lab): string[] {
  process.stderr.write('bench: start-up of the command line...\n');
  const home = mkdtempSync(join(lab.dir, 'bench-start-'));
  const inv = new Inventory(home);
  fill(inv, 3);
  inv.close();
  const node = wallAndCpu('node -e 0');
  const version = wallAndCpu(`${quoteArg(BIN)} --version`);
  const list = wallAndCpu(`${quoteArg(BIN)} --home ${quoteArg(home)} instance list`);
  spawnSync('rm', ['-rf', home]);
  return [
    '## Start-up of one command (a fresh Node process each; median of 5)',
    '',
    '| command | wall | CPU (user + system) |',
    '|---|---|---|',
    `| \`node -e 0\` (the floor) | ${ms(node.wall)} | ${ms(node.cpu)} |`,
    `| \`opsdeck --version\` | ${ms(version.wall)} | ${ms(version.cpu)} |`,
    `| \`opsdeck instance list\` (3 instances) | ${ms(list.wall)} | ${ms(list.cpu)} |`,
    '',
  ];
}

/** One health sweep of the lab, its table. */
export async function sweepRows(lab: Lab): Promise<string[]> {
  process.stderr.write('bench: health sweep of the lab...\n');
  const s = await sweepBench(lab);
  return [
    `## One health sweep of the lab: ${s.hosts} hosts, ${s.instances} instances with their databases (median of ${RUNS}; load average ${s.loads.join(', ')})`,
    '',
    '| what | baseline: ssh, curl, psql side by side | opsdeck | ratio | goal |',
    '|---|---|---|---|---|',
    `| wall time, in-process sweep | ${ms(s.base)} | ${ms(s.ops)} | ${(s.ops / s.base).toFixed(2)}x | |`,
    `| wall time, \`opsdeck health\` from start | ${ms(s.base)} | ${ms(s.opsCli)} | ${(s.opsCli / s.base).toFixed(2)}x | ≤ 0.8x |`,
    ...(s.before !== undefined ? [`| wall time, \`opsdeck health\` from start, before (BENCH_BEFORE) | ${ms(s.base)} | ${ms(s.before)} | ${(s.before / s.base).toFixed(2)}x | |`] : []),
    `| SSH connections opened | ${s.baseConns} | ${s.opened} | ${(s.opened / s.baseConns).toFixed(2)}x | one per host |`,
  ];
}
