/**
 * npm run bench (third part), or node dist/bench/sweep.js alone: one health sweep at the scale of a
 * real fleet. sshd, started here and stopped at the end (never by tests), listens on 200 loopback
 * addresses (127.0.2.1-200, port 2222; 13 daemons, as one listens on at most 16), each a host in
 * the inventory with an instance of
 * its own (a directory there, and a site served by the lab's web server). For 20, 50, 100 and 200
 * hosts: the sweep's wall time in-process and as `opsdeck health` from start, the SSH connections
 * it opened, counted by sshd itself (its log names the address each one came to) and by opsdeck's
 * pool, and the resident memory of `opsdeck health` at its peak.
 *
 * The hosts share this machine's two cores with opsdeck: each sshd session, its login and the
 * probe's commands run here too, where a real fleet runs them on 200 machines.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { constants, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { asLabUser, startLab, type Lab } from '../fixtures/lab.js';
import { waitPort } from '../fixtures/lab/common.js';
import { sshdConfig } from '../fixtures/lab/hosts.js';
import { openApp } from '../src/app/app.js';
import { HOST_SCRIPT, sweep } from '../src/health/probes.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_SWEEP_SIZES ?? '20,50,100,200').split(',').map(Number);
const MAX = Math.max(...SIZES);
const PORT = 2222;
const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'opsdeck');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const address = (n: number) => `127.0.2.${n}`;
const hostName = (n: number) => `fleet${String(n).padStart(3, '0')}`;
const instName = (n: number) => `bench-sweep-${n}`;

/** OpenSSH's sshd listens on at most 16 addresses (MAX_LISTEN_SOCKS): one daemon per 16 hosts. */
const PER_SSHD = 16;

/**
 * The fleet's sshds: one host key for all, configs beside the lab's hosts; each pid goes into `pids`
 * as it starts (to stop them, even when interrupted halfway), and their logs.
 */
async function startFleet(lab: Lab, pids: number[]): Promise<{ logs: string[]; fingerprint: string; keyPub: string }> {
  if (MAX > 250) throw new Error('bench: at most 250 hosts (127.0.2.1-250)');
  const dir = join(lab.dir, 'sweep-fleet');
  mkdirSync(dir, { recursive: true });
  const key = join(dir, 'ssh_host_ed25519_key');
  if (!existsSync(key)) spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fleet', '-f', key]);
  const logs: string[] = [];
  for (let first = 1; first <= MAX; first += PER_SSHD) {
    const tag = `sshd-${first}`;
    const log = join(dir, `${tag}.log`);
    const conf = join(dir, `${tag}_config`);
    // VERBOSE: one "Connection from ... on ADDRESS port 2222" line per connection, to count them.
    // MaxStartups: 10 unauthenticated at once per address, as 16 real hosts with their default of 10
    // each would take (the default for one daemon dropped OpenSSH's 32 at once here).
    const listen = Array.from({ length: Math.min(PER_SSHD, MAX - first + 1) }, (_, i) => `${address(first + i)}:${PORT}`);
    const config = sshdConfig({ listen, hostKey: key, pidFile: join(dir, `${tag}.pid`), allowUsers: [lab.user], logLevel: 'VERBOSE' });
    writeFileSync(conf, `${config}MaxStartups ${PER_SSHD * 10}\n`);
    writeFileSync(log, '');
    const child = spawn('/usr/sbin/sshd', ['-D', '-f', conf, '-E', log], { stdio: 'ignore' });
    pids.push(child.pid!);
    logs.push(log);
    // Up once its last address answers (sshd binds them all before it accepts).
    await waitPort(address(Math.min(first + PER_SSHD - 1, MAX)), PORT);
  }
  const fingerprint = spawnSync('ssh-keygen', ['-lf', `${key}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1];
  return { logs, fingerprint, keyPub: `${key}.pub` };
}

/**
 * A child's output, without blocking this process: a SIGINT or SIGTERM meanwhile is handled at once
 * (the fleet stopped, the child too). The child is in `running` while it runs.
 */
function output(running: Set<ChildProcess>, cmd: string, args: string[], stderr: 'pipe' | 'inherit' = 'pipe'): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', stderr] });
    running.add(p);
    const out = { stdout: '', stderr: '' };
    p.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (out.stderr += d.toString()));
    p.on('error', reject);
    p.on('close', () => {
      running.delete(p);
      resolve(out);
    });
  });
}

/**
 * CPU seconds this whole machine has been busy since boot (all cores, from /proc/stat): opsdeck or
 * the baseline's clients, and the fleet beside them (sshds, logins, probe commands, the sites'
 * server, the kernel's share). A walk of the fleet sshds' process trees read 0.41 s of the 5.7
 * core-seconds a 200-host sweep kept this machine busy (why, not pinned down): this counts it all.
 */
function machineCpu(): number {
  // cpu user nice system idle iowait irq softirq steal ...: all but idle and iowait.
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3] - f[4]) / 100;
}

/** Where each log ends now. */
const logSizes = (logs: string[]) => logs.map((l) => statSync(l).size);

/** Connections the sshds logged since `from` (byte offsets of their logs), by the address they came to. */
function connectionsSince(logs: string[], from: number[]): Map<string, number> {
  const by = new Map<string, number>();
  logs.forEach((log, i) => {
    const text = readFileSync(log).subarray(from[i]).toString('utf8');
    for (const m of text.matchAll(/Connection from \S+ port \d+ on (\S+) port \d+/g)) by.set(m[1], (by.get(m[1]) ?? 0) + 1);
  });
  return by;
}

/** A home whose inventory holds the first n hosts of the fleet, each with its instance. */
function fleetHome(lab: Lab, n: number, fingerprint: string): string {
  const home = mkdtempSync(join(lab.dir, `bench-sweep-${n}-`));
  const app = openApp(home);
  app.inv.addEnv('dev', false);
  const web = lab.hosts[0];
  for (let i = 1; i <= n; i++) {
    app.inv.addHost({ name: hostName(i), address: address(i), port: PORT, user: lab.user, keyFile: lab.keyFile, jump: null, hostKey: fingerprint });
    app.inv.addInstance({
      name: instName(i),
      host: hostName(i),
      path: join(web.root, instName(i)),
      env: 'dev',
      url: `http://${web.address}:${web.httpPort}/${instName(i)}/`,
      dbUrl: null,
      branch: null,
    });
  }
  void app.close();
  return home;
}

/**
 * What a sysadmin would run instead of `opsdeck health`: OpenSSH's ssh to every host with the same
 * probe script (`sh -s` on its stdin), then curl for the host's instance's site, `xargs -P 32` at a
 * time. Every ssh is ControlMaster=auto with ControlPersist: a first sweep leaves its connections
 * open in `dir`/mux/, and the next rides them, as the console's next refresh rides its open
 * connections. Returns the wall time and the clients' CPU seconds.
 */
async function baselineSweep(running: Set<ChildProcess>, n: number, dir: string, web: Lab['hosts'][number]): Promise<{ ms: number; cpu: number }> {
  const out = join(dir, 'out');
  spawnSync('rm', ['-rf', out]);
  mkdirSync(out, { recursive: true });
  const list = join(dir, 'hosts');
  writeFileSync(list, Array.from({ length: n }, (_, i) => `${address(i + 1)} ${join(web.root, instName(i + 1))} http://${web.address}:${web.httpPort}/${instName(i + 1)}/\n`).join(''));
  const t = performance.now();
  // GNU time: the CPU of the ssh and curl clients (not of a ControlMaster gone to the background).
  const r = await output(running, '/usr/bin/time', ['-f', '%U %S', 'sh', '-c', `xargs -P 32 -n 3 sh ${join(dir, 'probe.sh')} < ${list}`]);
  const ms = performance.now() - t;
  const [u, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  const bad = Array.from({ length: n }, (_, i) => address(i + 1)).filter((a) => {
    const text = existsSync(join(out, a)) ? readFileSync(join(out, a), 'utf8') : '';
    return !/^cpu \d+ \d+$/m.test(text) || !/^http 200$/m.test(text);
  });
  if (bad.length) throw new Error(`bench: the OpenSSH sweep failed on ${bad.length} hosts, first ${bad[0]}: ${r.stderr.slice(0, 300)}`);
  return { ms, cpu: u + sys };
}

/** The baseline's script and known_hosts (HostKeyAlias: the fleet shares one host key). */
function baselineFiles(lab: Lab, dir: string, keyPub: string): void {
  mkdirSync(join(dir, 'mux'), { recursive: true });
  writeFileSync(join(dir, 'known_hosts'), `fleet ${readFileSync(keyPub, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
  writeFileSync(
    join(dir, 'probe.sh'),
    [
      `out=${join(dir, 'out')}/$1`,
      `ssh -F none -p ${PORT} -i ${lab.keyFile} -o BatchMode=yes -o HostKeyAlias=fleet -o UserKnownHostsFile=${join(dir, 'known_hosts')} -o StrictHostKeyChecking=yes \\`,
      // stderr to a file: a ControlMaster that goes to the background keeps it open (xargs would wait for it).
      `  -o ControlMaster=auto -o ControlPersist=300 -o ControlPath=${join(dir, 'mux')}/%h ${lab.user}@$1 sh -s -- "$2" < ${join(dir, 'script.sh')} > "$out" 2> "$out.err"`,
      'echo "http $(curl -s -o /dev/null -w "%{http_code}" --max-time 10 "$3")" >> "$out"',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'script.sh'), HOST_SCRIPT + '\n');
}

/** Closes the baseline's ControlMaster connections. */
function closeMux(lab: Lab, dir: string, n: number): void {
  for (let i = 1; i <= n; i++) spawnSync('ssh', ['-F', 'none', '-p', String(PORT), '-o', `ControlPath=${join(dir, 'mux')}/%h`, '-O', 'exit', `${lab.user}@${address(i)}`], { stdio: 'ignore' });
}

interface Row {
  hosts: number;
  inProcess: number;
  cli: number;
  rssMb: number;
  opened: number;
  logged: number;
  perHost: string;
  /** CPU seconds of the in-process sweep: opsdeck's, and this whole machine's (opsdeck and the fleet). */
  opsCpu: number;
  machineCpu: number;
  /** The second sweep in the same process, on the connections the first opened (as the console's next refresh). */
  again: number;
  opsCpuAgain: number;
  machineCpuAgain: number;
  openedAgain: number;
  /** The OpenSSH + curl sweep: a first one (its connections left open), then the next on them. */
  base: BaseSweep;
  baseAgain: BaseSweep;
}

/** One OpenSSH + curl sweep: its wall time (ms), its clients' CPU and this whole machine's (s). */
interface BaseSweep {
  ms: number;
  cpu: number;
  machine: number;
}

/** What `--one` prints. */
interface OneSweep {
  ms: number;
  again: number;
  opened: number;
  openedAgain: number;
  bad: string[];
  opsCpu: number;
  machineCpu: number;
  opsCpuAgain: number;
  machineCpuAgain: number;
}

export async function sweepBench(): Promise<string[]> {
  const lab = await startLab();
  const web = lab.hosts[0];
  const dirs = Array.from({ length: MAX }, (_, i) => join(web.root, instName(i + 1)));
  const pids: number[] = [];
  const running = new Set<ChildProcess>();
  // The fleet is the bench's own (the lab never stops it): it goes at the end, and when the bench is
  // interrupted (Ctrl-C, kill) too, with the instances' directories and whatever sweep is running.
  const stopFleet = () => {
    for (const p of running) p.kill('SIGTERM');
    for (const pid of pids.splice(0)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
    }
    spawnSync('rm', ['-rf', ...dirs]);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    stopFleet();
    process.exit(128 + constants.signals[sig]);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const rows: Row[] = [];
  try {
    // Each instance's directory, on the one filesystem every fleet host shares, and its site.
    for (const d of dirs) asLabUser('sh', ['-c', 'mkdir -p "$1" && echo "<html>ok</html>" > "$1/index.html"', 'sh', d]);
    const fleet = await startFleet(lab, pids);
    const baseDir = join(lab.dir, 'sweep-fleet', 'openssh');
    baselineFiles(lab, baseDir, fleet.keyPub);
    for (const n of SIZES) {
      process.stderr.write(`bench: sweep of ${n} hosts...\n`);
      const home = fleetHome(lab, n, fleet.fingerprint);
      dirs.push(home); // removed with the rest if the bench is interrupted
      const inProcess: number[] = [];
      const cli: number[] = [];
      const rss: number[] = [];
      const opsCpu: number[] = [];
      const machine: number[] = [];
      const again: number[] = [];
      const opsCpuAgain: number[] = [];
      const machineAgain: number[] = [];
      let opened = 0;
      let openedAgain = 0;
      let logged = new Map<string, number>();
      for (let run = 0; run < RUNS; run++) {
        const from = logSizes(fleet.logs);
        // In a process of its own: nothing of an earlier run (kept-alive sockets, warm caches) helps it.
        const one = JSON.parse((await output(running, process.execPath, [process.argv[1], '--one', home], 'inherit')).stdout) as OneSweep;
        if (one.bad.length) throw new Error(`bench: ${one.bad.length} probes failed, first: ${one.bad[0]}`);
        inProcess.push(one.ms);
        opsCpu.push(one.opsCpu);
        machine.push(one.machineCpu);
        again.push(one.again);
        opsCpuAgain.push(one.opsCpuAgain);
        machineAgain.push(one.machineCpuAgain);
        opened = one.opened;
        openedAgain = one.openedAgain;
        logged = connectionsSince(fleet.logs, from);
        // From start, as cron runs it: GNU time gives the peak resident memory.
        const fromCli = logSizes(fleet.logs);
        const t2 = performance.now();
        const c = await output(running, '/usr/bin/time', ['-f', '%M', BIN, '--home', home, 'health', '--json']);
        cli.push(performance.now() - t2);
        const json = JSON.parse(c.stdout) as { hosts: { host: string; ok: boolean; reason?: string }[] };
        const down = json.hosts.filter((h) => !h.ok);
        if (json.hosts.length !== n || down.length)
          throw new Error(`bench: opsdeck health found ${down.length} of ${json.hosts.length} hosts down, first: ${down[0] ? `${down[0].host}: ${down[0].reason}` : 'none'}; ${c.stderr}`);
        rss.push(Number(c.stderr.trim().split('\n').pop()) / 1024);
        const byCli = connectionsSince(fleet.logs, fromCli);
        if (byCli.size !== n || [...byCli.values()].some((k) => k !== 1)) throw new Error(`bench: opsdeck health opened other than one connection per host: ${JSON.stringify([...byCli])}`);
      }
      // The same fleet swept by OpenSSH and curl: fresh connections, then on ControlMaster's.
      const base: BaseSweep[] = [];
      const baseAgain: BaseSweep[] = [];
      for (let run = 0; run < RUNS; run++) {
        closeMux(lab, baseDir, n);
        for (const into of [base, baseAgain]) {
          const m0 = machineCpu();
          const b = await baselineSweep(running, n, baseDir, web);
          into.push({ ...b, machine: machineCpu() - m0 });
        }
      }
      closeMux(lab, baseDir, n);
      const mid = (xs: BaseSweep[]) => xs.find((x) => x.ms === median(xs.map((y) => y.ms)))!;
      const counts = [...logged.values()];
      rows.push({
        hosts: n,
        inProcess: median(inProcess),
        cli: median(cli),
        rssMb: median(rss),
        opened,
        logged: counts.reduce((a, b) => a + b, 0),
        opsCpu: median(opsCpu),
        machineCpu: median(machine),
        again: median(again),
        opsCpuAgain: median(opsCpuAgain),
        machineCpuAgain: median(machineAgain),
        openedAgain,
        base: mid(base),
        baseAgain: mid(baseAgain),
        perHost: logged.size === n && counts.every((c) => c === 1) ? 'exactly 1 each' : `NOT one each: ${logged.size} hosts, ${Math.min(...counts)}-${Math.max(...counts)}`,
      });
      spawnSync('rm', ['-rf', home]);
    }
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    stopFleet();
  }
  const ms = (t: number) => `${t.toFixed(0)} ms`;
  return [
    `## One health sweep of a fleet: N hosts (sshd on N loopback addresses), an instance each (median of ${RUNS})`,
    '',
    "| hosts | in-process sweep | its CPU: opsdeck / this machine | next sweep on the open connections (the console's refresh) | its CPU: opsdeck / this machine | `opsdeck health` from start | its peak RSS | SSH connections (sshd log / opsdeck) | per host | goal |",
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.hosts} | ${ms(r.inProcess)} | ${r.opsCpu.toFixed(2)} s / ${r.machineCpu.toFixed(2)} s | ${ms(r.again)}${r.openedAgain ? ` (${r.openedAgain} new connections!)` : ''} | ${r.opsCpuAgain.toFixed(2)} s / ${r.machineCpuAgain.toFixed(2)} s | ${ms(r.cli)} | ${r.rssMb.toFixed(0)} MB | ${r.logged} / ${r.opened} | ${r.perHost} | < 3 s, one per host |`,
    ),
    '',
    `### Against OpenSSH and curl: the same probe script with \`ssh host sh -s\`, then curl for the site, \`xargs -P 32\`; the next sweep over ControlMaster connections the first left open (median of ${RUNS})`,
    '',
    '| hosts | `opsdeck health` from start | OpenSSH + curl | ratio | its CPU: clients / this machine | next sweep: opsdeck in-process | OpenSSH over ControlMaster | ratio | its CPU: clients / this machine |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.hosts} | ${ms(r.cli)} | ${ms(r.base.ms)} | **${(r.cli / r.base.ms).toFixed(2)}x** | ${r.base.cpu.toFixed(2)} s / ${r.base.machine.toFixed(2)} s | ${ms(r.again)} | ${ms(r.baseAgain.ms)} | **${(r.again / r.baseAgain.ms).toFixed(2)}x** | ${r.baseAgain.cpu.toFixed(2)} s / ${r.baseAgain.machine.toFixed(2)} s |`,
    ),
    '',
    `Every sshd session, login and probe command of the fleet runs on this machine too, beside opsdeck: "this machine" is all its ${cpus().length} cores' busy time, opsdeck's and the fleet's. When it comes near cores x wall time, the sweep waits for CPU, not for the network.`,
    'The next sweep opens no connection: its cost is the probe commands, on the hosts and here.',
  ];
}

/** --one HOME: one sweep of every instance of HOME, timed in-process; prints its figures as JSON. */
async function oneSweep(home: string): Promise<void> {
  const app = openApp(home);
  const insts = app.inv.listInstances();
  const cpu = () => {
    const c = process.cpuUsage();
    return { ops: (c.user + c.system) / 1e6, machine: machineCpu() };
  };
  const c0 = cpu();
  const t = performance.now();
  const r = await sweep(app, insts);
  const ms = performance.now() - t;
  const opened = app.ssh.opened;
  const c1 = cpu();
  // The console's next refresh: the same sweep on the connections this one opened.
  const t2 = performance.now();
  const r2 = await sweep(app, insts);
  const again = performance.now() - t2;
  const c2 = cpu();
  await app.close();
  const bad = [r, r2].flatMap((x) => [...x.hosts.filter((h) => !h.ok).map((h) => `${h.host}: ${h.reason}`), ...x.instances.filter((i) => !i.http?.ok).map((i) => `${i.instance}: ${i.http?.reason}`)]);
  process.stdout.write(
    JSON.stringify({
      ms,
      again,
      opened,
      openedAgain: app.ssh.opened - opened,
      bad,
      opsCpu: c1.ops - c0.ops,
      machineCpu: c1.machine - c0.machine,
      opsCpuAgain: c2.ops - c1.ops,
      machineCpuAgain: c2.machine - c1.machine,
    }) + '\n',
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === '--one') await oneSweep(process.argv[3]);
  else process.stdout.write((await sweepBench()).join('\n') + '\n');
}
