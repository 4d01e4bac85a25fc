/**
 * npm run bench (second part), or npm run bench:ui alone: the console at scale and the health sweep.
 *
 * console: an inventory of 10,000 instances on 500 hosts, the real program in a pseudo-terminal
 *   (script(1)) with its sampler running: time to the first frame, and from a key press to the frame
 *   that shows its effect (typing a filter, jumping to the bottom and top). Baseline: what a user
 *   would otherwise run for the same answer, `opsdeck instance list` (all of it, or piped to grep).
 * sweep: one health sweep of every lab host and instance, against OpenSSH, curl and psql run side
 *   by side from a shell; wall time and SSH connections opened.
 *
 * The 500 hosts are loopback addresses where nothing listens (127.1.x.y): probes fail at once, and
 * nothing leaves the machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hostAddArgs, labSsh, makeLabInstance, opsdeckSync, startLab, type Lab } from '../fixtures/lab.js';
import { openApp } from '../src/app/app.js';
import { HOST_SCRIPT, sweep } from '../src/health/probes.js';
import { quoteArg } from '../src/remote/quote.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 10_000);
const HOSTS = Number(process.env.BENCH_HOSTS ?? 500);
const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'opsdeck');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (t: number) => `${t.toFixed(0)} ms`;

function bigInventory(dir: string): string {
  const home = mkdtempSync(join(dir, 'bench-ui-'));
  const app = openApp(home);
  const envs = ['dev', 'uat', 'preprod', 'prod'];
  for (const e of envs) app.inv.addEnv(e, e === 'prod');
  for (let h = 0; h < HOSTS; h++) {
    app.inv.addHost({ name: `web${String(h).padStart(3, '0')}`, address: `127.1.${Math.floor(h / 250)}.${(h % 250) + 1}`, port: 9, user: 'ops', keyFile: null, jump: null, hostKey: null });
  }
  for (let i = 0; i < INSTANCES; i++) {
    const h = i % HOSTS;
    const env = envs[i % envs.length];
    app.inv.addInstance({
      name: `app${i}-${env}`,
      host: `web${String(h).padStart(3, '0')}`,
      path: `/srv/app${i}`,
      env,
      url: `http://127.1.${Math.floor(h / 250)}.${(h % 250) + 1}:9/app${i}/`,
      dbUrl: null,
      branch: null,
    });
  }
  void app.close();
  return home;
}

/** The console in a pseudo-terminal: first frame, then keys, each timed to the frame that shows it. */
async function consoleRun(home: string): Promise<{ first: number; filter: number[]; jump: number[] }> {
  const t0 = performance.now();
  const child = spawn('script', ['-qfec', `stty rows 50 cols 160; exec ${quoteArg(BIN)} --home ${quoteArg(home)}`, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, TERM: 'xterm-256color', CI: '' },
  });
  let buf = '';
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
    check();
  });
  const waitFor = (re: RegExp, from: number) =>
    new Promise<number>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`bench: the console never showed ${re}`)), 30_000);
      waiting = { re, from, resolve: (t) => (clearTimeout(timer), res(t)) };
      check();
    });
  const key = async (k: string, re: RegExp) => {
    const from = buf.length;
    const t = performance.now();
    child.stdin.write(k);
    return (await waitFor(re, from)) - t;
  };
  try {
    const first = (await waitFor(/INSTANCES/, 0)) - t0;
    // Raw mode is on once the first frame is drawn; give the terminal a moment, as a person would.
    await sleep(500);
    const filter: number[] = [];
    const typed = 'app12';
    await key('/', /\//);
    for (let i = 1; i <= typed.length; i++) filter.push(await key(typed[i - 1], new RegExp(`filter "${typed.slice(0, i)}"`)));
    await key('\r', /./);
    await key('\x1b', new RegExp(`of ${INSTANCES}`));
    const jump: number[] = [];
    for (let i = 0; i < 10; i++) {
      jump.push(await key('G', new RegExp(`–${INSTANCES} of ${INSTANCES}`)));
      jump.push(await key('g', new RegExp(`(?:^|\\D)1–\\d+ of ${INSTANCES}`)));
    }
    return { first, filter, jump };
  } finally {
    child.stdin.write('q');
    await sleep(300);
    child.kill();
  }
}

function timedCli(args: string[], shell?: string): number {
  const t = performance.now();
  const r = shell ? spawnSync('bash', ['-o', 'pipefail', '-c', shell], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawnSync(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`bench: ${shell ?? args.join(' ')}: ${r.stderr}`);
  return performance.now() - t;
}

async function sweepBench(lab: Lab): Promise<{ base: number; ops: number; opsCli: number; opened: number; baseConns: number; hosts: number; instances: number }> {
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
  let opened = 0;
  for (let run = 0; run < RUNS; run++) {
    base.push(timedCli([], script));
    const app = openApp(home);
    const t = performance.now();
    const r = await sweep(app, app.inv.listInstances());
    opsT.push(performance.now() - t);
    opened = app.ssh.opened;
    if (r.hosts.some((h) => !h.ok) || r.instances.some((i) => !i.db?.ok)) throw new Error(`bench: a probe failed: ${JSON.stringify(r)}`);
    await app.close();
    cli.push(timedCli([], `${quoteArg(BIN)} --home ${quoteArg(home)} health --json > /dev/null || true`));
  }
  spawnSync('rm', ['-rf', home]);
  return { base: median(base), ops: median(opsT), opsCli: median(cli), opened, baseConns: insts.length * 2, hosts: lab.hosts.length, instances: insts.length };
}

export async function uiBench(): Promise<string[]> {
  const lab = await startLab();
  process.stderr.write(`bench: an inventory of ${INSTANCES} instances on ${HOSTS} hosts...\n`);
  const home = bigInventory(lab.dir);
  const firsts: number[] = [];
  const filters: number[] = [];
  const jumps: number[] = [];
  const lists: number[] = [];
  const greps: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    process.stderr.write(`bench: console run ${run + 1} of ${RUNS}\n`);
    const r = await consoleRun(home);
    firsts.push(r.first);
    filters.push(...r.filter);
    jumps.push(...r.jump);
    lists.push(timedCli(['--home', home, 'instance', 'list']));
    greps.push(timedCli([], `${quoteArg(BIN)} --home ${quoteArg(home)} instance list | grep -c app12 > /dev/null`));
  }
  process.stderr.write('bench: health sweep of the lab...\n');
  const s = await sweepBench(lab);
  spawnSync('rm', ['-rf', home]);
  return [
    `## The console with ${INSTANCES} instances on ${HOSTS} hosts (real terminal, sampler running; median of ${RUNS} runs)`,
    '',
    '| what | baseline | opsdeck | ratio | goal |',
    '|---|---|---|---|---|',
    `| first frame, from start (vs \`opsdeck instance list\`, all ${INSTANCES} rows) | ${ms(median(lists))} | ${ms(median(firsts))} | ${(median(firsts) / median(lists)).toFixed(2)}x | < 500 ms |`,
    `| a filter key to its frame, ${filters.length} keys (vs \`opsdeck instance list \\| grep\`) | ${ms(median(greps))} | ${ms(median(filters))} (p95 ${ms(p95(filters))}) | ${(median(filters) / median(greps)).toFixed(3)}x | < 50 ms |`,
    `| jump to bottom / top (G, g) to its frame, ${jumps.length} keys (vs the same) | ${ms(median(greps))} | ${ms(median(jumps))} (p95 ${ms(p95(jumps))}) | ${(median(jumps) / median(greps)).toFixed(3)}x | < 50 ms |`,
    '',
    `## One health sweep of the lab: ${s.hosts} hosts, ${s.instances} instances with their databases (median of ${RUNS})`,
    '',
    '| what | baseline: ssh, curl, psql side by side | opsdeck | ratio | goal |',
    '|---|---|---|---|---|',
    `| wall time, in-process sweep | ${ms(s.base)} | ${ms(s.ops)} | ${(s.ops / s.base).toFixed(2)}x | |`,
    `| wall time, \`opsdeck health\` from start | ${ms(s.base)} | ${ms(s.opsCli)} | ${(s.opsCli / s.base).toFixed(2)}x | |`,
    `| SSH connections opened | ${s.baseConns} | ${s.opened} | ${(s.opened / s.baseConns).toFixed(2)}x | one per host |`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write((await uiBench()).join('\n') + '\n');
}
