/**
 * npm run bench: opsdeck against what a sysadmin would otherwise run, in the same run, on the lab.
 *
 * backup:  ssh host tar -cf - DIR | restic backup --stdin   and   ssh host pg_dump | restic backup --stdin
 * restore: restic dump | ssh host tar -x                     and   restic dump | ssh host psql
 * second backup of the unchanged instance: bytes the store grew by.
 * MariaDB: a Sakila instance (small code tree), against ssh host tar + mariadb-dump | restic backup
 * --stdin and restic dump | ssh host tar -x + mariadb. BENCH_ONLY=mysql runs only those rows.
 *
 * The instance: the pagila database and a code tree of about 20,000 files / 300 MB (made once and
 * kept in the lab). Each figure is the median of RUNS alternating runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asLabUser, hostAddArgs, labSsh, makeLabInstance, opsdeckSync, startLab, type Lab } from '../fixtures/lab.js';
import { Store } from '../src/store/restic.js';
import { makeLabMysqlInstance, MYSQL_PORT } from '../fixtures/lab/mariadb.js';
import { repoRoot } from '../fixtures/lab/common.js';
import { benchDelta, deltaTable } from './delta.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FILES = Number(process.env.BENCH_FILES ?? 20_000);
const BYTES = Number(process.env.BENCH_BYTES ?? 300e6);
const ONLY = process.env.BENCH_ONLY;
/** BENCH_ONLY=pg,watch,mysql (any of them, comma-separated) runs only those parts; unset, all. BENCH_ONLY=restore: see benchRestore. */
const want = (part: 'pg' | 'watch' | 'mysql' | 'delta') => !ONLY || ONLY.split(',').includes(part);

function sh(cmd: string, env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`bench: ${cmd}\n${r.stderr}`);
}

/** Times fn after the disk has settled: written-back pages and background deletions of earlier steps
 * would otherwise be charged to whichever side runs next. Only the bench's own instances (bench-*) are
 * waited for: a test's deliberate leftover in a shared lab would otherwise cost 60 s per figure. */
function timed(fn: () => void): number {
  const settling = () => readdirSync(settleDir).some((n) => n.startsWith('bench-') && n.includes('.opsdeck-previous'));
  for (let i = 0; i < 600 && settling(); i++) execFileSync('sleep', ['0.1']);
  execFileSync('sync');
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

let settleDir = '/tmp';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

/** A fresh restic repository for the pipeline, made as an admin would (restic init): its environment, and what to remove after. */
function pipelineRepo(lab: Lab): { renv: { RESTIC_REPOSITORY: string; RESTIC_PASSWORD_FILE: string; RESTIC_CACHE_DIR: string }; files: string[] } {
  const repo = mkdtempSync(join(lab.dir, 'bench-restic-'));
  const pw = `${repo}.pass`;
  writeFileSync(pw, 'bench-password\n', { mode: 0o600 });
  const renv = { RESTIC_REPOSITORY: join(repo, 'r'), RESTIC_PASSWORD_FILE: pw, RESTIC_CACHE_DIR: join(repo, 'cache') };
  sh('restic init -q', renv);
  return { renv, files: [repo, pw] };
}

/** A code tree like a real app's: many small text files, some larger assets that do not compress. */
function makeTree(path: string): void {
  const marker = join(path, '.bench-tree');
  if (existsSync(marker)) return;
  const avg = BYTES / FILES;
  for (let i = 0; i < FILES; i++) {
    const dir = join(path, 'src', `m${i % 200}`, `d${i % 7}`);
    if (i < 1400) mkdirSync(dir, { recursive: true });
    const size = Math.floor(avg * (0.2 + ((i * 7919) % 100) / 62.5));
    const body =
      i % 3 === 0
        ? randomBytes(size)
        : Buffer.from(
            randomBytes(Math.ceil(size / 2))
              .toString('hex')
              .slice(0, size)
              .replace(/(.{72})/g, '$1\n'),
          );
    writeFileSync(join(dir, `f${i}.${i % 3 === 0 ? 'bin' : 'php'}`), body);
  }
  writeFileSync(marker, `${FILES} ${BYTES}\n`);
  execFileSync('chown', ['-R', `${process.env.BENCH_OWNER ?? 'opslab'}`, path]);
}

/**
 * MariaDB: backup and restore of a Sakila instance (its code tree is the lab app's, about 100 KB)
 * against the pipelines an admin would run, the password on stdin (MYSQL_PWD inside the remote
 * shell, never argv). The pipeline's restore loads over the live tables (the dump drops and creates
 * each); opsdeck loads beside them, checks rows and swaps them all in at once, after a safety backup.
 */
async function benchMysql(lab: Lab, sshTo: (h: Lab['hosts'][number]) => string): Promise<{ what: string; baseline: number; opsdeck: number }[]> {
  const code = makeLabInstance(lab, 'lab1', 'bench-maria', {});
  const m = makeLabMysqlInstance(lab, 'lab1', 'bench-maria', { sakila: true });
  const h = lab.hosts[0];
  const ssh = sshTo(h);
  const conn = `--protocol=tcp -h 127.0.0.1 -P ${MYSQL_PORT} -u ${m.user}`;
  const remote = (cmd: string) => `${ssh} 'read -r MYSQL_PWD; export MYSQL_PWD; exec ${cmd}'`;
  const backupBase: number[] = [];
  const backupOps: number[] = [];
  const restoreBase: number[] = [];
  const restoreOps: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    process.stderr.write(`bench: MariaDB run ${run + 1} of ${RUNS}\n`);
    const { renv, files } = pipelineRepo(lab);
    backupBase.push(
      timed(() => {
        sh(`${ssh} tar -C ${code.path} -cf - . | restic backup -q --stdin --stdin-filename code.tar --host bench`, renv);
        sh(
          `{ echo ${m.password}; } | ${remote(`mariadb-dump ${conn} --single-transaction --routines --triggers --events --hex-blob --no-tablespaces ${m.db}`)} | restic backup -q --stdin --stdin-filename db.sql --host bench`,
          renv,
        );
      }),
    );
    const home = mkdtempSync(join(lab.dir, 'bench-opsdeck-'));
    const ops = (args: string[], env: NodeJS.ProcessEnv = {}) => opsdeckSync(home, args, env);
    ops(['env', 'add', 'prod']);
    ops(hostAddArgs(lab, h));
    ops(['instance', 'add', 'bench-maria', '--host', h.name, '--path', code.path, '--env', 'prod', '--db', m.dbUrl], { OPSDECK_DB_PASSWORD: m.password });
    await new Store(home).ensure();
    backupOps.push(timed(() => ops(['backup', 'bench-maria'])));
    const target = `${code.path}.bench-restore`;
    asLabUser('rm', ['-rf', target]);
    restoreBase.push(
      timed(() => {
        sh(`restic dump -q --path /code.tar latest /code.tar --host bench | ${ssh} 'mkdir -p ${target} && tar -x -p -f - -C ${target}'`, renv);
        sh(`{ echo ${m.password}; restic dump -q --path /db.sql latest /db.sql --host bench; } | ${remote(`mariadb ${conn} ${m.db}`)}`, renv);
      }),
    );
    asLabUser('rm', ['-rf', target]);
    restoreOps.push(timed(() => ops(['restore', 'bench-maria', '--yes', '--allow-protected'])));
    execFileSync('rm', ['-rf', ...files, home]);
  }
  return [
    { what: 'MariaDB backup (Sakila + small tree; vs tar and mariadb-dump into restic backup --stdin)', baseline: median(backupBase), opsdeck: median(backupOps) },
    { what: 'MariaDB restore (vs restic dump into tar -x and mariadb)', baseline: median(restoreBase), opsdeck: median(restoreOps) },
  ];
}

/**
 * BENCH_ONLY=restore: the PostgreSQL restore alone, on its own instance (bench-restore: pagila and the
 * big tree) and one backup, against the pipeline reading the same store (restic dump | ssh tar -x,
 * restic dump | ssh psql). With BENCH_BIN=PATH (another build's bin/opsdeck) that build restores too,
 * on the same home and backup: an A/B of two builds, which goes first alternating each round.
 */
async function benchRestore(lab: Lab, sshTo: (h: Lab['hosts'][number]) => string): Promise<{ what: string; baseline: number; opsdeck: number }[]> {
  const inst = makeLabInstance(lab, 'lab1', 'bench-restore', { pagila: true });
  process.stderr.write(`bench: making the code tree (${FILES} files, ${(BYTES / 1e6).toFixed(0)} MB)...\n`);
  makeTree(inst.path);
  const h = lab.hosts[0];
  const ssh = sshTo(h);
  const home = mkdtempSync(join(lab.dir, 'bench-opsdeck-'));
  const bins: [string, string][] = [['opsdeck', join(repoRoot(), 'bin', 'opsdeck')], ...(process.env.BENCH_BIN ? [['BENCH_BIN', process.env.BENCH_BIN] as [string, string]] : [])];
  const ops = (bin: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(bin, ['--home', home, ...args], { env: { ...process.env, OPSDECK_KNOWN_HOSTS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`opsdeck ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  };
  ops(bins[0][1], ['env', 'add', 'prod']);
  ops(bins[0][1], hostAddArgs(lab, h));
  ops(bins[0][1], ['instance', 'add', inst.name, '--host', h.name, '--path', inst.path, '--env', 'prod', '--db', inst.dbUrl], { OPSDECK_DB_PASSWORD: inst.password });
  await new Store(home).ensure();
  ops(bins[0][1], ['backup', inst.name]);
  const renv = { RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass'), RESTIC_CACHE_DIR: join(home, 'pipeline-cache') };
  const snaps = JSON.parse(execFileSync('restic', ['snapshots', '--json'], { env: { ...process.env, ...renv }, encoding: 'utf8' })) as { id: string; tags?: string[] }[];
  const snap = (stream: string) => snaps.find((x) => x.tags?.includes(`stream=${stream}`))!.id;
  const pgConn = `-h 127.0.0.1 -p ${lab.pg.port} -U ${inst.role} ${inst.db}`;
  const target = `${inst.path}.bench-restore`;
  const base: number[] = [];
  const times = new Map<string, number[]>(bins.map(([name]) => [name, []]));
  for (let run = 0; run < RUNS; run++) {
    process.stderr.write(`bench: restore run ${run + 1} of ${RUNS} (load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})\n`);
    asLabUser('rm', ['-rf', target]);
    base.push(
      timed(() => {
        sh(`restic dump -q ${snap('code')} /${inst.name}.code.tar | ${ssh} 'mkdir -p ${target} && tar -x -p -f - -C ${target}'`, renv);
        sh(
          `{ echo ${inst.password}; echo 'BEGIN; DROP OWNED BY CURRENT_USER;'; restic dump -q ${snap('db')} /${inst.name}.db.sql; echo 'COMMIT;'; } | ${ssh} 'read -r PGPASSWORD; export PGPASSWORD; exec psql -X -q -v ON_ERROR_STOP=1 -f - ${pgConn}'`,
          renv,
        );
      }),
    );
    asLabUser('rm', ['-rf', target]);
    for (const [name, bin] of run % 2 ? [...bins].reverse() : bins) times.get(name)!.push(timed(() => ops(bin, ['restore', inst.name, '--yes'])));
  }
  execFileSync('rm', ['-rf', home]);
  return bins.map(([name]) => ({ what: `restore alone (code + database)${name === 'opsdeck' ? '' : `, ${process.env.BENCH_BIN}`}`, baseline: median(base), opsdeck: median(times.get(name)!) }));
}

/**
 * watch over WATCH_FILES files against find | xargs sha256sum run on the host itself. The tree is
 * kept in the lab between runs (a marker says how many files it holds): making it takes a minute.
 * With BENCH_BIN=PATH (another build's bin/opsdeck) that build watches too, on a home of its own (the
 * builds may store baselines differently), in turn with this one, which goes first alternating.
 */
function benchWatch(lab: Lab, sshTo: (h: Lab['hosts'][number]) => string): { what: string; baseline: number; opsdeck: number }[] {
  const WATCH_FILES = Number(process.env.BENCH_WATCH_FILES ?? 100_000);
  const h = lab.hosts[0];
  const ssh = sshTo(h);
  const path = join(h.root, 'bench-watch');
  const marker = join(path, '.bench-watch-tree');
  if (!existsSync(marker) || readFileSync(marker, 'utf8').trim() !== String(WATCH_FILES)) {
    process.stderr.write(`bench: making a ${WATCH_FILES}-file tree for watch...\n`);
    makeLabInstance(lab, h.name, 'bench-watch', {});
    asLabUser('sh', [
      '-c',
      `cd "$1" && mkdir -p w && cd w && i=0; while [ $i -lt ${WATCH_FILES / 1000} ]; do mkdir d$i; i=$((i+1)); done; ` +
        `find . -maxdepth 1 -name 'd*' -type d | xargs -P 2 -I{} sh -c 'cd {} && seq 1 1000 | while read n; do echo "file $n of {}" > f$n.php; done'`,
      'sh',
      path,
    ]);
    asLabUser('sh', ['-c', 'echo "$2" > "$1"', 'sh', marker, String(WATCH_FILES)]);
  }
  const bins: [string, string][] = [['opsdeck', join(repoRoot(), 'bin', 'opsdeck')], ...(process.env.BENCH_BIN ? [['BENCH_BIN', process.env.BENCH_BIN] as [string, string]] : [])];
  const homes = new Map(bins.map(([name]) => [name, mkdtempSync(join(lab.dir, 'bench-watch-'))]));
  const ops = (name: string, bin: string, args: string[]) => {
    const r = spawnSync(bin, ['--home', homes.get(name)!, ...args], { env: { ...process.env, OPSDECK_KNOWN_HOSTS: '' }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`opsdeck ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  };
  for (const [name, bin] of bins) {
    ops(name, bin, ['env', 'add', 'dev']);
    ops(name, bin, hostAddArgs(lab, h));
    ops(name, bin, ['instance', 'add', 'bench-watch', '--host', h.name, '--path', path, '--env', 'dev']);
    ops(name, bin, ['watch', 'bench-watch']);
  }
  const watchBase: number[] = [];
  const times = new Map<string, number[]>(bins.map(([name]) => [name, []]));
  const loads: string[] = [];
  for (let run = 0; run < RUNS; run++) {
    loads.push(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    process.stderr.write(`bench: watch run ${run + 1} of ${RUNS} (load ${loads[run]})\n`);
    watchBase.push(timed(() => sh(`${ssh} 'cd ${path} && find . -type f -print0 | xargs -0 sha256sum' > /dev/null`)));
    for (const [name, bin] of run % 2 ? [...bins].reverse() : bins) times.get(name)!.push(timed(() => ops(name, bin, ['watch', 'bench-watch'])));
  }
  for (const home of homes.values()) execFileSync('rm', ['-rf', home]);
  return bins.map(([name]) => ({
    what: `watch, ${WATCH_FILES} files (vs find | xargs sha256sum on the host)${name === 'opsdeck' ? '' : `, ${process.env.BENCH_BIN}`}; load ${loads.join(', ')}`,
    baseline: median(watchBase),
    opsdeck: median(times.get(name)!),
  }));
}

async function main() {
  return startLab().then(async (lab: Lab) => {
    if (process.getuid?.() !== 0) process.env.BENCH_OWNER = lab.user;
    settleDir = lab.hosts[0].root;
    const h = lab.hosts[0];
    const h2 = lab.hosts[1];
    const sshTo = labSsh(lab, join(lab.dir, 'bench_known_hosts'));
    const ssh = sshTo(h);
    const ssh2 = sshTo(h2);

    const results: { what: string; baseline: number; opsdeck: number }[] = [];
    const backupBase: number[] = [];
    const backupOps: number[] = [];
    const restoreBase: number[] = [];
    const restoreOps: number[] = [];
    const cloneBase: number[] = [];
    const cloneOps: number[] = [];
    let growth = { base: 0, ops: 0, first: 0, baseFirst: 0 };
    // bench-prod (pagila, the big tree) and bench-staging are the PostgreSQL rows' alone, remade only
    // when those run: the other parts have instances of their own.
    const pg = want('pg') ? { inst: makeLabInstance(lab, 'lab1', 'bench-prod', { pagila: true }), staging: makeLabInstance(lab, 'lab2', 'bench-staging', {}) } : undefined;
    if (pg) {
      process.stderr.write(`bench: making the code tree (${FILES} files, ${(BYTES / 1e6).toFixed(0)} MB)...\n`);
      makeTree(pg.inst.path);
    }
    const treeBytes = pg ? Number(asLabUser('du', ['-sb', pg.inst.path]).split('\t')[0]) : 0;

    for (let run = 0; pg && run < RUNS; run++) {
      const { inst, staging } = pg;
      const stagingConn = `-h 127.0.0.1 -p ${lab.pg.port} -U ${staging.role} ${staging.db}`;
      const pgConn = `-h 127.0.0.1 -p ${lab.pg.port} -U ${inst.role} ${inst.db}`;
      // The password reaches pg_dump the way a careful admin would pass it: on stdin, not in argv.
      const withPw = (cmd: string) => `{ echo ${inst.password}; } | ${ssh} 'read -r PGPASSWORD; export PGPASSWORD; exec ${cmd}'`;
      process.stderr.write(`bench: run ${run + 1} of ${RUNS}\n`);
      // Baseline: a fresh restic repository and the two pipelines, one after the other.
      const { renv, files } = pipelineRepo(lab);
      const baseBackup = () => {
        sh(`${ssh} tar -C ${inst.path} -cf - . | restic backup -q --stdin --stdin-filename code.tar --host bench`, renv);
        sh(`${withPw(`pg_dump --no-owner --no-privileges ${pgConn}`)} | restic backup -q --stdin --stdin-filename db.sql --host bench`, renv);
      };
      backupBase.push(timed(baseBackup));

      // opsdeck: a fresh home (inventory and store), the instance registered, then `opsdeck backup`.
      const home = mkdtempSync(join(lab.dir, 'bench-opsdeck-'));
      const ops = (args: string[], env: NodeJS.ProcessEnv = {}) => opsdeckSync(home, args, env);
      ops(['env', 'add', 'prod']);
      ops(['env', 'add', 'staging']);
      ops(hostAddArgs(lab, h));
      ops(['instance', 'add', inst.name, '--host', h.name, '--path', inst.path, '--env', 'prod', '--db', inst.dbUrl], { OPSDECK_DB_PASSWORD: inst.password });
      ops(hostAddArgs(lab, h2));
      ops(['instance', 'add', staging.name, '--host', h2.name, '--path', staging.path, '--env', 'staging', '--db', staging.dbUrl], { OPSDECK_DB_PASSWORD: staging.password });
      // Make the store first, as `restic init` is for the pipeline: both start from an empty repository.
      await new Store(home).ensure();
      backupOps.push(timed(() => ops(['backup', inst.name])));

      if (run === 0) {
        // A second backup of the unchanged instance: how much the store grows.
        const baseBefore = dirBytes(renv.RESTIC_REPOSITORY);
        baseBackup();
        const opsBefore = dirBytes(join(home, 'store'));
        ops(['backup', inst.name]);
        growth = { base: dirBytes(renv.RESTIC_REPOSITORY) - baseBefore, ops: dirBytes(join(home, 'store')) - opsBefore, first: opsBefore, baseFirst: baseBefore };
      }

      // Restore. Baseline: into a fresh directory beside the instance, and the dump into the database.
      const target = `${inst.path}.bench-restore`;
      asLabUser('rm', ['-rf', target]);
      restoreBase.push(
        timed(() => {
          sh(`restic dump -q --path /code.tar latest /code.tar --host bench | ${ssh} 'mkdir -p ${target} && tar -x -p -f - -C ${target}'`, renv);
          sh(
            `{ echo ${inst.password}; echo 'BEGIN; DROP OWNED BY CURRENT_USER;'; restic dump -q --path /db.sql latest /db.sql --host bench; echo 'COMMIT;'; } | ${ssh} 'read -r PGPASSWORD; export PGPASSWORD; exec psql -X -q -v ON_ERROR_STOP=1 -f - ${pgConn}'`,
            renv,
          );
        }),
      );
      asLabUser('rm', ['-rf', target]);
      restoreOps.push(timed(() => ops(['restore', inst.name, '--yes'])));
      // Clone to another host. Pipeline: host to host directly, tree and database.
      const pipeDir = `${staging.path}.pipe`;
      asLabUser('rm', ['-rf', pipeDir]);
      cloneBase.push(
        timed(() => {
          sh(`${ssh} tar -C ${inst.path} -cf - . | ${ssh2} 'mkdir -p ${pipeDir} && tar -x -p -f - -C ${pipeDir}'`);
          sh(
            `{ echo ${staging.password}; echo 'BEGIN; DROP OWNED BY CURRENT_USER;'; { echo ${inst.password}; } | ${ssh} 'read -r PGPASSWORD; export PGPASSWORD; exec pg_dump --no-owner --no-privileges ${pgConn}'; echo 'COMMIT;'; } | ${ssh2} 'read -r PGPASSWORD; export PGPASSWORD; exec psql -X -q -v ON_ERROR_STOP=1 -f - ${stagingConn}'`,
          );
        }),
      );
      asLabUser('rm', ['-rf', pipeDir]);
      cloneOps.push(timed(() => ops(['clone', inst.name, staging.name, '--yes'])));
      execFileSync('rm', ['-rf', ...files, home]);
    }

    if (ONLY?.split(',').includes('restore')) {
      const rows = await benchRestore(lab, sshTo);
      process.stdout.write(
        [
          '| operation | shell pipeline | opsdeck | ratio |',
          '|---|---|---|---|',
          ...rows.map((r) => `| ${r.what} | ${r.baseline.toFixed(2)} s | ${r.opsdeck.toFixed(2)} s | ${(r.opsdeck / r.baseline).toFixed(2)}x |`),
        ].join('\n') + '\n',
      );
      if (ONLY === 'restore') return;
    }
    // watch over 100,000 files against find | xargs sha256sum run on the host itself.
    const mysqlRows = want('mysql') ? await benchMysql(lab, sshTo) : [];
    if (ONLY === 'mysql') {
      process.stdout.write(
        [
          '| operation | shell pipeline | opsdeck | ratio |',
          '|---|---|---|---|',
          ...mysqlRows.map((r) => `| ${r.what} | ${r.baseline.toFixed(2)} s | ${r.opsdeck.toFixed(2)} s | ${(r.opsdeck / r.baseline).toFixed(2)}x |`),
        ].join('\n') + '\n',
      );
      return;
    }
    const watchRows = want('watch') ? benchWatch(lab, sshTo) : [];
    // BENCH_ONLY=delta: second backups through a byte-counting, optionally throttled relay (bench/delta.ts).
    const delta = want('delta') ? await benchDelta(lab, makeTree, RUNS) : undefined;
    const deltaRows = delta ? deltaTable(delta.rows, delta.treeBytes) : [];
    if (ONLY === 'delta') return void process.stdout.write(deltaRows.join('\n') + '\n');

    if (want('pg')) {
      results.push({ what: 'backup (code + database)', baseline: median(backupBase), opsdeck: median(backupOps) });
      results.push({ what: 'restore (code + database)', baseline: median(restoreBase), opsdeck: median(restoreOps) });
      results.push({ what: 'clone to another host (code + database)', baseline: median(cloneBase), opsdeck: median(cloneOps) });
    }
    results.push(...mysqlRows);
    results.push(...watchRows);
    const lines = [
      `# opsdeck benchmark, ${new Date().toISOString()}`,
      '',
      ...(pg ? [`instance: pagila database + ${FILES} files, ${(treeBytes / 1e6).toFixed(0)} MB code tree, over ssh on loopback; median of ${RUNS} runs`, ''] : []),
      '| operation | shell pipeline | opsdeck | ratio (opsdeck / pipeline) |',
      '|---|---|---|---|',
      ...results.map((r) => `| ${r.what} | ${r.baseline.toFixed(2)} s | ${r.opsdeck.toFixed(2)} s | ${(r.opsdeck / r.baseline).toFixed(2)}x |`),
      '',
      ...(want('pg') ? [] : ['(some parts only: BENCH_ONLY=' + ONLY + ')']),
      ...(deltaRows.length ? [...deltaRows, ''] : []),
      ...(pg
        ? [
            `second backup of the unchanged instance: store grew ${(growth.ops / 1e6).toFixed(2)} MB = ${((growth.ops / growth.first) * 100).toFixed(2)}% of the first backup's ${(growth.first / 1e6).toFixed(0)} MB (plain restic pipeline: ${(growth.base / 1e6).toFixed(2)} MB = ${((growth.base / growth.baseFirst) * 100).toFixed(2)}%)`,
            '',
          ]
        : []),
      'opsdeck restore includes what the pipeline does not: a safety backup of the target, checksum checks of both streams, a staged tree swapped in atomically.',
      'opsdeck clone streams host to host as the pipeline does, and also keeps the target in maintenance, takes a safety backup of its database beside the copy, checks it and keeps its local files.',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  });
}

await main();
