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
 *   against the SQLite figures (issue 11: within 1.2x).
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
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hostAddArgs, labSsh, makeLabInstance, opsdeckSync, pgAdmin, startLab, type Lab } from '../fixtures/lab.js';
import { Inventory } from '../inventory/index.js';
import { firstPageSql } from '../inventory/list-sql.js';
import { openApp } from '../src/app/app.js';
import { HOST_SCRIPT, sweep } from '../src/health/probes.js';
import { quoteArg } from '../src/remote/quote.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SCALES = (process.env.BENCH_SCALES ?? '1000,10000,100000').split(',').map(Number);
const HOSTS = Number(process.env.BENCH_HOSTS ?? 500);
const BIN = process.env.BENCH_BIN ?? resolve(import.meta.dirname, '..', '..', 'bin', 'opsdeck');
const BEFORE = process.env.BENCH_BEFORE;
const ONLY = process.env.BENCH_ONLY?.split(',');
const part = (p: string) => !ONLY || ONLY.includes(p);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (t: number) => `${t.toFixed(0)} ms`;
const n = (x: number) => x.toLocaleString('en');

/**
 * Fills an inventory with `count` instances on HOSTS hosts, in one transaction of plain INSERTs:
 * addInstance checks each new tree against every other one (right for a person adding one, a
 * quadratic wait at 100,000).
 */
function fill(inv: Inventory, count: number): void {
  const envs = ['dev', 'uat', 'preprod', 'prod'];
  inv.transaction(() => {
    for (const e of envs) inv.addEnv(e, e === 'prod');
    for (let h = 0; h < HOSTS; h++) {
      inv.addHost({ name: `web${String(h).padStart(3, '0')}`, address: `127.1.${Math.floor(h / 250)}.${(h % 250) + 1}`, port: 9, user: 'ops', keyFile: null, jump: null, hostKey: null });
    }
    const insert = inv.db.prepare(
      'INSERT INTO instances (name, host, path, env, url, db_url, db_secret, branch, created_at, hooks, health, local_paths, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const at = new Date().toISOString();
    for (let i = 0; i < count; i++) {
      const h = i % HOSTS;
      const addr = `127.1.${Math.floor(h / 250)}.${(h % 250) + 1}`;
      insert.run(
        `app${i}-${envs[i % envs.length]}`,
        `web${String(h).padStart(3, '0')}`,
        `/srv/app${i}`,
        envs[i % envs.length],
        `http://${addr}:9/app${i}/`,
        null,
        null,
        null,
        at,
        '{}',
        null,
        '[]',
        null,
      );
    }
  });
}

export function sqliteInventory(dir: string, count: number): string {
  const home = mkdtempSync(join(dir, `bench-ui-${count}-`));
  const inv = new Inventory(home);
  fill(inv, count);
  inv.close();
  return home;
}

/**
 * A team inventory on the lab's PostgreSQL (a fresh database, `team init`), filled like the SQLite one.
 * Two logins: its owner, a team admin (row-level security does not apply to the tables' owner), and
 * an operator granted on every environment, as most of a team logs in (the policies apply).
 */
export function pgInventory(lab: Lab, count: number): { home: string; env: NodeJS.ProcessEnv; operator: { home: string; env: NodeJS.ProcessEnv }; url: string; drop: () => void } {
  const role = 'opsdeck_bench_admin';
  const password = randomBytes(12).toString('hex');
  pgAdmin(`DO $$ BEGIN CREATE ROLE ${role} LOGIN CREATEROLE; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; ALTER ROLE ${role} PASSWORD '${password}';`);
  const db = `opsdeck_bench_${randomBytes(4).toString('hex')}`;
  pgAdmin(`CREATE DATABASE ${db} OWNER ${role};`);
  const url = `postgres://${role}@127.0.0.1:${lab.pg.port}/${db}`;
  const home = mkdtempSync(join(lab.dir, `bench-ui-pg-${count}-`));
  const init = new Inventory(home, { url, password, forInit: true });
  let roles: { user: string; admin: string };
  try {
    roles = init.pg!.init().roles;
  } finally {
    init.close();
  }
  const inv = new Inventory(home, { url, password });
  fill(inv, count);
  const op = { role: `opsdeck_bench_op_${randomBytes(3).toString('hex')}`, password: randomBytes(12).toString('hex') };
  pgAdmin(`CREATE ROLE ${op.role} LOGIN PASSWORD '${op.password}'; GRANT ${roles.user} TO ${op.role};`);
  for (const e of inv.listEnvs()) inv.rights.grant(op.role, e.name, 'operator');
  inv.close();
  // The tables were filled in one go: statistics as autovacuum would have them by now.
  pgAdmin('ANALYZE;', db);
  writeFileSync(join(home, 'settings.json'), JSON.stringify({ inventory: url }));
  const opHome = mkdtempSync(join(lab.dir, `bench-ui-pg-op-${count}-`));
  writeFileSync(join(opHome, 'settings.json'), JSON.stringify({ inventory: url.replace(`//${role}@`, `//${op.role}@`) }));
  return {
    home,
    env: { OPSDECK_INVENTORY_PASSWORD: password },
    operator: { home: opHome, env: { OPSDECK_INVENTORY_PASSWORD: op.password } },
    url,
    drop: () => {
      pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE);`);
      pgAdmin(`DROP ROLE IF EXISTS ${op.role}, ${roles.user}, ${roles.admin};`);
      spawnSync('rm', ['-rf', home, opHome]);
    },
  };
}

/**
 * Where the console's first read goes, in this process: opening the inventory (on PostgreSQL: the
 * worker thread, pg loaded, the connection, the schema check) and each query the first frame waits
 * for, wall and this process's CPU (both threads), median of RUNS.
 */
function firstRead(home: string, password?: string): { step: string; wall: number; cpu: number }[] {
  const runs: { step: string; wall: number; cpu: number }[][] = [];
  for (let r = 0; r < RUNS; r++) {
    const out: { step: string; wall: number; cpu: number }[] = [];
    let t = performance.now();
    let c = process.cpuUsage();
    const lap = (step: string) => {
      const u = process.cpuUsage(c);
      out.push({ step, wall: performance.now() - t, cpu: (u.user + u.system) / 1000 });
      t = performance.now();
      c = process.cpuUsage();
    };
    const inv = new Inventory(home, password === undefined ? {} : { password });
    lap('open the inventory');
    // What the first frame reads (UiModel.readFirstPage, a 50-row terminal), then the whole lists after it.
    for (const sql of Object.values(firstPageSql(50))) inv.db.prepare(sql).all();
    lap("the first frame's page (50 rows, counts, hosts)");
    inv.listEnvs();
    inv.latestBackupTimes();
    lap('environments, newest backups');
    inv.listInstances();
    lap('the instances (all columns)');
    inv.listHosts();
    lap('the hosts');
    inv.listRuns(500);
    inv.listLocks();
    inv.changes.list({ open: true });
    lap('runs, locks, open changes');
    inv.rights.levelOn('prod');
    lap('own rights');
    inv.close();
    runs.push(out);
  }
  return runs[0].map((s, i) => ({ step: s.step, wall: median(runs.map((x) => x[i].wall)), cpu: median(runs.map((x) => x[i].cpu)) }));
}

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

interface ConsoleFigures {
  first: number;
  filter: number[];
  jump: number[];
  rss: number;
  /** CPU the console used up to its first frame, and per key (key to frame, sampler included), in ms. */
  firstCpu: number;
  keyCpu: number;
}

/** The console in a pseudo-terminal: first frame, then keys, each timed to the frame that shows it. */
async function consoleRun(home: string, count: number, env: NodeJS.ProcessEnv = {}, bin = BIN): Promise<ConsoleFigures> {
  const t0 = performance.now();
  const child = spawn('script', ['-qfec', `stty rows 50 cols 160; exec ${quoteArg(bin)} --home ${quoteArg(home)}`, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env, TERM: 'xterm-256color', CI: '' },
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
      const timer = setTimeout(() => rej(new Error(`bench: the console never showed ${re}; it showed:\n${buf.slice(-2000)}`)), 60_000);
      waiting = { re, from, resolve: (t) => (clearTimeout(timer), res(t)) };
      check();
    });
  let pid: number | undefined;
  let keyCpu = 0;
  let keys = 0;
  const key = async (k: string, re: RegExp) => {
    const from = buf.length;
    const c = cpuMs(pid);
    const t = performance.now();
    child.stdin.write(k);
    const dt = (await waitFor(re, from)) - t;
    keyCpu += cpuMs(pid) - c;
    keys++;
    return dt;
  };
  try {
    const first = (await waitFor(/INSTANCES/, 0)) - t0;
    pid = consolePid(child.pid!);
    const firstCpu = cpuMs(pid);
    // Raw mode is on once the first frame is drawn; give the terminal a moment, as a person would.
    await sleep(500);
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
    return { first, filter, jump, rss: peakRss(child.pid!), firstCpu, keyCpu: keyCpu / keys };
  } finally {
    child.stdin.write('q');
    await sleep(300);
    child.kill();
  }
}

/** RUNS console runs on one inventory, their figures pooled; with BENCH_BEFORE, as many of that build's, in turn with these. */
async function consoleRuns(home: string, count: number, env: NodeJS.ProcessEnv = {}): Promise<ConsoleFigures & { before?: ConsoleFigures }> {
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
    keyCpu: median(rs.map((r) => r.keyCpu)),
  });
  return { ...pool(runs[0]), ...(BEFORE && { before: pool(runs[1]) }) };
}

/** A console table row: first frame (its CPU), filter key and G/g to frame p50 / p95, CPU per key, peak RSS. */
const consoleCells = (f: ConsoleFigures) =>
  `${ms(f.first)} (CPU ${ms(f.firstCpu)}) | ${ms(median(f.filter))} / ${ms(p95(f.filter))} | ${ms(median(f.jump))} / ${ms(p95(f.jump))} | ${ms(f.keyCpu)} | ${f.rss.toFixed(0)} MB`;

function timedCli(args: string[], shell?: string): number {
  const t = performance.now();
  const r = shell ? spawnSync('bash', ['-o', 'pipefail', '-c', shell], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawnSync(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`bench: ${shell ?? args.join(' ')}: ${r.stderr}`);
  return performance.now() - t;
}

/** Wall and CPU (user + system, the process and its children) of a command line, median of `times`. */
function wallAndCpu(line: string, times = 5): { wall: number; cpu: number } {
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
        '| instances | first frame from start (its CPU) | filter key to frame, p50 / p95 | G / g to frame, p50 / p95 | CPU per key | peak RSS | goal, first frame |',
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

  if (part('team') && sqlite10k.figures) {
    process.stderr.write('bench: the same console on a PostgreSQL inventory...\n');
    const pg = pgInventory(lab, 10_000);
    const sqlHome = sqliteInventory(lab.dir, 10_000);
    try {
      const owner = await consoleRuns(pg.home, 10_000, pg.env);
      process.stderr.write('bench: ... logged in as an operator (row-level security applies)\n');
      const op = await consoleRuns(pg.operator.home, 10_000, pg.operator.env);
      const s = sqlite10k.figures;
      const r = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
      const row = (what: string, a: number, b: number, c: number, goal = '') => `| ${what} | ${ms(a)} | ${ms(b)} (${r(b, a)}) | ${ms(c)} (${r(c, a)}) | ${goal} |`;
      out.push(
        `## The console with 10,000 instances on a team inventory (PostgreSQL on this machine) against SQLite (median of ${RUNS})`,
        '',
        "PostgreSQL as the team admin who made it (its tables' owner: row-level security does not apply) and as an operator granted on every environment (it does).",
        '',
        '| what | SQLite | PostgreSQL, team admin (ratio) | PostgreSQL, operator (ratio) | goal |',
        '|---|---|---|---|---|',
        row('first frame, from start', s.first, owner.first, op.first, '<= 1.2x'),
        row('CPU to the first frame', s.firstCpu, owner.firstCpu, op.firstCpu),
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

  if (part('startup')) {
    process.stderr.write('bench: start-up of the command line...\n');
    const home = mkdtempSync(join(lab.dir, 'bench-start-'));
    const inv = new Inventory(home);
    fill(inv, 3);
    inv.close();
    const node = wallAndCpu('node -e 0');
    const version = wallAndCpu(`${quoteArg(BIN)} --version`);
    const list = wallAndCpu(`${quoteArg(BIN)} --home ${quoteArg(home)} instance list`);
    spawnSync('rm', ['-rf', home]);
    out.push(
      '## Start-up of one command (a fresh Node process each; median of 5)',
      '',
      '| command | wall | CPU (user + system) |',
      '|---|---|---|',
      `| \`node -e 0\` (the floor) | ${ms(node.wall)} | ${ms(node.cpu)} |`,
      `| \`opsdeck --version\` | ${ms(version.wall)} | ${ms(version.cpu)} |`,
      `| \`opsdeck instance list\` (3 instances) | ${ms(list.wall)} | ${ms(list.cpu)} |`,
      '',
    );
  }

  if (part('sweep')) {
    process.stderr.write('bench: health sweep of the lab...\n');
    const s = await sweepBench(lab);
    out.push(
      `## One health sweep of the lab: ${s.hosts} hosts, ${s.instances} instances with their databases (median of ${RUNS})`,
      '',
      '| what | baseline: ssh, curl, psql side by side | opsdeck | ratio | goal |',
      '|---|---|---|---|---|',
      `| wall time, in-process sweep | ${ms(s.base)} | ${ms(s.ops)} | ${(s.ops / s.base).toFixed(2)}x | |`,
      `| wall time, \`opsdeck health\` from start | ${ms(s.base)} | ${ms(s.opsCli)} | ${(s.opsCli / s.base).toFixed(2)}x | |`,
      `| SSH connections opened | ${s.baseConns} | ${s.opened} | ${(s.opened / s.baseConns).toFixed(2)}x | one per host |`,
    );
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write((await uiBench()).join('\n') + '\n');
}
