/**
 * BENCH_ONLY=delta: the second backup of the bench instance (pagila + the 300 MB, 20,000-file tree)
 * through a TCP relay in front of the lab's sshd that counts bytes, once at full speed and once
 * throttled to 100 Mbit/s each way: the shell pipeline (ssh tar | restic backup --stdin, pg_dump |
 * restic backup --stdin), opsdeck as it streams the tree whole, and opsdeck with treeMirrors on.
 * Each figure is the median of RUNS second backups (each after one unchanged-tree backup).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asLabUser, makeLabInstance, type Lab, type LabInstance } from '../fixtures/lab.js';
import { CuttingProxy } from '../fixtures/proxy.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'opsdeck');

/** Runs a command without blocking this process (the relay lives in it); rejects on a non-zero exit. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bench: ${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

async function measured(wire: CuttingProxy, f: () => Promise<void>): Promise<{ s: number; bytes: number }> {
  const b = wire.bytes;
  const t = process.hrtime.bigint();
  await f();
  return { s: Number(process.hrtime.bigint() - t) / 1e9, bytes: wire.bytes - b };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface DeltaRow {
  what: string;
  baseline: number;
  opsdeck: number;
  baselineBytes: number;
  opsdeckBytes: number;
}

/** The rows: per link speed, the pipeline against opsdeck whole and opsdeck through its mirror. */
export async function benchDelta(lab: Lab, makeTree: (path: string) => void, runs: number): Promise<{ rows: DeltaRow[]; treeBytes: number }> {
  // An instance of its own, shaped as the bench's (pagila, the same tree): other parts of the bench
  // remake theirs, and a tree remade under a backup fails it.
  const inst: LabInstance = makeLabInstance(lab, 'lab1', 'bench-delta', { pagila: true });
  makeTree(inst.path);
  const treeBytes = Number(asLabUser('du', ['-sb', inst.path]).split('\t')[0]);
  const h = lab.hosts[0];
  const wire = new CuttingProxy({ host: h.address, port: h.port });
  await wire.start();
  const dir = mkdtempSync(join(lab.dir, 'bench-delta-'));
  const known = join(dir, 'known_hosts');
  writeFileSync(known, '');
  // The relay's address is not the host's: the key is checked by opsdeck's pinned fingerprint; the
  // pipeline's ssh trusts the relay's first key (it is the lab host's, on loopback).
  const ssh = [
    'ssh',
    '-q',
    '-i',
    lab.keyFile,
    '-p',
    String(wire.port),
    '-o',
    `UserKnownHostsFile=${known}`,
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    'BatchMode=yes',
    `${lab.user}@127.0.0.1`,
  ].join(' ');
  const renv = { RESTIC_REPOSITORY: join(dir, 'repo'), RESTIC_PASSWORD_FILE: join(dir, 'pass'), RESTIC_CACHE_DIR: join(dir, 'cache') };
  writeFileSync(renv.RESTIC_PASSWORD_FILE, 'bench-password\n', { mode: 0o600 });
  await run('restic', ['init', '-q'], renv);
  const pgConn = `-h 127.0.0.1 -p ${lab.pg.port} -U ${inst.role} ${inst.db}`;
  const pipeline = () =>
    run(
      'bash',
      [
        '-o',
        'pipefail',
        '-c',
        `${ssh} tar -C ${inst.path} -cf - . | restic backup -q --stdin --stdin-filename code.tar --host bench && ` +
          `{ echo ${inst.password}; } | ${ssh} 'read -r PGPASSWORD; export PGPASSWORD; exec pg_dump --no-owner --no-privileges ${pgConn}' | restic backup -q --stdin --stdin-filename db.sql --host bench`,
      ],
      renv,
    );
  const homes: Record<'whole' | 'mirror', string> = { whole: join(dir, 'whole'), mirror: join(dir, 'mirror') };
  const ops = (home: string, args: string[], env: NodeJS.ProcessEnv = {}) => run(BIN, ['--home', home, ...args], { OPSDECK_KNOWN_HOSTS: '', ...env });
  for (const [kind, home] of Object.entries(homes)) {
    await ops(home, ['env', 'add', 'prod']);
    await ops(home, ['host', 'add', 'wire', '--address', '127.0.0.1', '--port', String(wire.port), '--user', lab.user, '--key', lab.keyFile, '--fingerprint', h.fingerprint]);
    await ops(home, ['instance', 'add', inst.name, '--host', 'wire', '--path', inst.path, '--env', 'prod', '--db', inst.dbUrl], { OPSDECK_DB_PASSWORD: inst.password });
    if (kind === 'mirror') await ops(home, ['settings', 'treeMirrors', 'on']);
    // The first backups, at full speed: the store (and the mirror) hold the tree before the runs.
    await ops(home, ['backup', inst.name]);
  }
  await pipeline();

  const rows: DeltaRow[] = [];
  for (const [label, rate] of [
    ['loopback', 0],
    ['100 Mbit/s', 100e6 / 8],
  ] as const) {
    wire.rate = rate;
    const t: Record<'pipe' | 'whole' | 'mirror', { s: number; bytes: number }[]> = { pipe: [], whole: [], mirror: [] };
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`bench: delta, ${label}, run ${i + 1} of ${runs}\n`);
      t.pipe.push(await measured(wire, pipeline));
      t.whole.push(await measured(wire, () => ops(homes.whole, ['backup', inst.name])));
      t.mirror.push(await measured(wire, () => ops(homes.mirror, ['backup', inst.name])));
    }
    const m = (xs: { s: number; bytes: number }[]) => ({ s: median(xs.map((x) => x.s)), bytes: median(xs.map((x) => x.bytes)) });
    const [pipe, whole, mirror] = [m(t.pipe), m(t.whole), m(t.mirror)];
    rows.push({ what: `second backup, unchanged, ${label}: opsdeck streaming the tree whole`, baseline: pipe.s, opsdeck: whole.s, baselineBytes: pipe.bytes, opsdeckBytes: whole.bytes });
    rows.push({ what: `second backup, unchanged, ${label}: opsdeck with treeMirrors on`, baseline: pipe.s, opsdeck: mirror.s, baselineBytes: pipe.bytes, opsdeckBytes: mirror.bytes });
  }
  await wire.stop();
  process.stderr.write(`bench: delta, the tree is ${(treeBytes / 1e6).toFixed(0)} MB\n`);
  rmSync(dir, { recursive: true, force: true });
  return { rows, treeBytes };
}

/** The rows as the README's table: time and bytes over the wire, each against the pipeline. */
export function deltaTable(rows: DeltaRow[], treeBytes: number): string[] {
  const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB (${((b / treeBytes) * 100).toFixed(1)}% of the tree)`;
  return [
    '| second backup (pagila + tree) | pipeline | opsdeck | ratio | bytes over ssh: pipeline | opsdeck |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.baseline.toFixed(2)} s | ${r.opsdeck.toFixed(2)} s | ${(r.opsdeck / r.baseline).toFixed(2)}x | ${mb(r.baselineBytes)} | ${mb(r.opsdeckBytes)} |`),
  ];
}
