import Database from 'better-sqlite3';
import { execa, type ResultPromise } from 'execa';
import { execFileSync, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, readdirSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLabInstance, type LabInstance } from '../../fixtures/lab.js';
import { CuttingProxy } from '../../fixtures/proxy.js';
import { BIN, addInstance, asLabUser, cli, dbState, homeWithHosts, lab, must, sql, treeState, until } from '../helpers.js';

const storeEnv = (home: string) => ({ RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass') });
const snapshots = async (home: string): Promise<{ id: string; tags?: string[] }[]> => JSON.parse((await execa('restic', ['snapshots', '--json'], { env: storeEnv(home) })).stdout);
const storeLocks = (home: string) => readdirSync(join(home, 'store', 'locks'));

/** The restic processes opsdeck (pid) has started and that still run. */
function resticChildren(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid), '-x', 'restic'])
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the real program without a terminal (as cron would) and keeps its stderr as it comes. */
function start(home: string, args: string[], env: Record<string, string> = {}): { proc: ResultPromise; err: () => string } {
  const proc = execa(BIN, ['--home', home, ...args], { reject: false, env: { OPSDECK_KNOWN_HOSTS: '', ...env }, stdin: 'ignore', timeout: 120_000 });
  let err = '';
  proc.stderr!.on('data', (d) => {
    err += d;
    if (process.env.INT_DEBUG) appendFileSync(`/tmp/int-${proc.pid}.log`, d);
  });
  return { proc, err: () => err };
}

const lastRun = async (home: string, instance: string) => JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '1', '--instance', instance]))).stdout)[0];

describe('interrupted restores: signals, kill -9 and recover', () => {
  const l = lab();
  const proxy = new CuttingProxy({ host: l.hosts[0].address, port: l.hosts[0].port });
  const hooks: { body: string; valid: boolean }[] = [];
  const SECRET = 'interrupts-webhook-secret';
  let web: HttpServer;
  let home: string;
  let inst: LabInstance;
  let before: { files: Record<string, string>; db: string };
  // The instance moves on after its backup, so a restore has something to change.
  const moveOn = () => {
    sql(inst.db, `SET ROLE ${inst.role}; CREATE TABLE moved_on (n int); INSERT INTO moved_on VALUES (1), (2);`);
    asLabUser('sh', ['-c', 'echo changed > "$1/VERSION" && echo new > "$1/new-file"', 'sh', inst.path]);
  };
  let backed: { files: Record<string, string>; db: string };

  beforeAll(async () => {
    await proxy.start();
    web = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const want = 'sha256=' + createHmac('sha256', SECRET).update(`${req.headers['x-opsdeck-timestamp']}.${body}`).digest('hex');
        hooks.push({ body, valid: req.headers['x-opsdeck-signature'] === want });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    home = await homeWithHosts([]);
    await must(cli(home, ['host', 'add', 'held', '--address', '127.0.0.1', '--port', String(proxy.port), '--user', l.user, '--key', l.keyFile, '--fingerprint', l.hosts[0].fingerprint]));
    inst = makeLabInstance(l, 'lab1', 'int-prod');
    await must(cli(home, ['instance', 'add', 'int-prod', '--host', 'held', '--path', inst.path, '--env', 'dev', '--db', inst.dbUrl], { OPSDECK_DB_PASSWORD: inst.password }));
    await must(cli(home, ['notify', 'webhook', '--url', `http://127.0.0.1:${(web.address() as { port: number }).port}/hook`], { OPSDECK_WEBHOOK_SECRET: SECRET }));
    await must(cli(home, ['backup', 'int-prod']));
    backed = { files: treeState(inst.path), db: dbState(inst.db) };
    moveOn();
    before = { files: treeState(inst.path), db: dbState(inst.db) };
  });
  afterAll(async () => {
    await proxy.stop();
    await new Promise((r) => web.close(r));
  });

  // SIGHUP: the operator's SSH session to the jump box dropped.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    it(`${sig} while restic runs: the restore is undone, exit 1, tree and database exactly as before, alert sent`, async () => {
      hooks.length = 0;
      const { proc, err } = start(home, ['restore', 'int-prod', '--yes', '--json']);
      await until('a restic child', () => resticChildren(proc.pid!).length > 0);
      // From here a slow link keeps the restore inside its data step, restic with it, when the signal
      // arrives (slow from the start, the log-in and checks before it took seconds more).
      proxy.slowMs = 100;
      expect(resticChildren(proc.pid!).length).toBeGreaterThan(0);
      process.kill(proc.pid!, sig);
      await until('the cancel', () => err().includes(`${sig} received`));
      if (sig === 'SIGINT') {
        // A second ctrl-c while it undoes is refused, said on stderr.
        process.kill(proc.pid!, 'SIGINT');
        await until('the second ctrl-c refused', () => err().includes('SIGINT ignored'));
      }
      const r = await proc;
      proxy.slowMs = 0;
      expect(r.exitCode).toBe(1);
      expect(err()).toMatch(new RegExp(`cancelled by ${sig}.*rolled back`));
      expect(treeState(inst.path)).toEqual(before.files);
      expect(dbState(inst.db)).toEqual(before.db);
      expect(readdirSync(join(inst.path, '..')).filter((n) => n.startsWith('int-prod.'))).toEqual([]);
      expect(await lastRun(home, 'int-prod')).toMatchObject({ command: 'restore', status: 'rolled-back', failedStep: 'data' });
      // restic stopped with SIGINT removes its lock: the store is not left locked.
      expect(storeLocks(home)).toEqual([]);
      await until('the alert', () => hooks.length > 0, 10_000);
      expect(hooks[0].valid).toBe(true);
      expect(hooks[0].body).toContain(`cancelled by ${sig}`);
    });
  }

  it('kill -9 after the database committed, before the swap: the next run refuses, health says half-restored, recover undoes it', async () => {
    const inv = new Database(join(home, 'inventory.sqlite'), { readonly: true });
    const recorded = () => inv.prepare('SELECT * FROM half_restored').get() as { phase: string; db_touched: number } | undefined;
    // Hold what the host sends from the first byte sent after the critical section was recorded: the
    // COMMIT reaches the database, its answer never reaches opsdeck, so the swap cannot begin.
    proxy.holdWhen = () => recorded() !== undefined;
    const { proc } = start(home, ['restore', 'int-prod', '--yes']);
    await until('the database committed', () => proxy.held && !sql(inst.db, "SELECT to_regclass('public.moved_on')").trim());
    process.kill(proc.pid!, 'SIGKILL');
    await proc;
    proxy.release();
    expect(recorded()).toMatchObject({ phase: 'db-committing', db_touched: 1 });
    inv.close();
    // Half-restored indeed: the backup's database, the code tree of before.
    expect(dbState(inst.db)).toEqual(backed.db);
    expect(treeState(inst.path)).toEqual(before.files);

    const again = await cli(home, ['restore', 'int-prod', '--yes']);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/int-prod is HALF-RESTORED: restore run \d+ stopped while its database load was committing/);
    expect(again.stderr).toMatch(/fix: run: opsdeck recover int-prod/);
    const health = await cli(home, ['health', 'int-prod', '--json']);
    expect(health.code).toBe(1);
    const sample = JSON.parse(health.stdout).instances[0];
    expect(sample.halfRestored).toMatchObject({ command: 'restore', phase: 'db-committing' });
    expect(sample.reasons[0]).toMatch(/^HALF-RESTORED: restore run \d+ was interrupted.*opsdeck recover int-prod/);

    const rec = await cli(home, ['recover', 'int-prod']);
    expect(rec.stderr).toBe('');
    expect(rec.code).toBe(0);
    expect(rec.stdout).toMatch(/int-prod recovered: run \d+ undone, int-prod is as it was before it \(database from safety backup \S+\)/);
    expect(treeState(inst.path)).toEqual(before.files);
    expect(dbState(inst.db)).toEqual(before.db);
    expect(readdirSync(join(inst.path, '..')).filter((n) => n.startsWith('int-prod.'))).toEqual([]);
    expect(await lastRun(home, 'int-prod')).toMatchObject({ command: 'recover', status: 'ok' });
    const healthAfter = JSON.parse((await cli(home, ['health', 'int-prod', '--json'])).stdout).instances[0];
    expect(healthAfter.halfRestored).toBeUndefined();
    // Whole again: the restore now goes through.
    await must(cli(home, ['restore', 'int-prod', '--yes']));
    expect(treeState(inst.path)).toEqual(backed.files);
    expect(dbState(inst.db)).toEqual(backed.db);
    moveOn();
    expect(treeState(inst.path)).toEqual(before.files);
  });

  it('the host refuses connections while the undo runs: the undo tries again until it is back', async () => {
    const { proc, err } = start(home, ['restore', 'int-prod', '--yes']);
    await until('a restic child', () => resticChildren(proc.pid!).length > 0);
    proxy.held = true;
    await proxy.down();
    process.kill(proc.pid!, 'SIGTERM');
    await until('a retry of the undo', () => /ECONNREFUSED.*trying again in/.test(err()));
    await proxy.up();
    const r = await proc;
    expect(r.exitCode).toBe(1);
    expect(err()).toMatch(/cancelled by SIGTERM.*rolled back/);
    expect(treeState(inst.path)).toEqual(before.files);
    expect(dbState(inst.db)).toEqual(before.db);
    expect(readdirSync(join(inst.path, '..')).filter((n) => n.startsWith('int-prod.'))).toEqual([]);
    expect(await lastRun(home, 'int-prod')).toMatchObject({ status: 'rolled-back' });
  });

  it('the host stays away after the COMMIT: the run is marked not undone, names the safety backup and recover, which puts it right later', async () => {
    const inv = new Database(join(home, 'inventory.sqlite'), { readonly: true });
    proxy.holdWhen = () => inv.prepare('SELECT 1 FROM half_restored').get() !== undefined;
    // A short retry window: the host is not coming back within it.
    const { proc, err } = start(home, ['restore', 'int-prod', '--yes'], { OPSDECK_UNDO_RETRY_SECONDS: '2' });
    await until('the database committed', () => proxy.held && !sql(inst.db, "SELECT to_regclass('public.moved_on')").trim());
    inv.close();
    await proxy.down();
    process.kill(proc.pid!, 'SIGTERM');
    const r = await proc;
    await proxy.up();
    expect(r.exitCode).toBe(1);
    expect(err()).toMatch(/UNDO FAILED: .*int-prod IS LEFT HALF-RESTORED; its state before this run is safety backup \S+/);
    expect(err()).toMatch(/fix: when the host answers again, run: opsdeck recover int-prod/);
    expect(await lastRun(home, 'int-prod')).toMatchObject({ command: 'restore', status: 'undo-failed' });
    const again = await cli(home, ['backup', 'int-prod']);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/int-prod is HALF-RESTORED/);

    await must(cli(home, ['recover', 'int-prod']));
    expect(treeState(inst.path)).toEqual(before.files);
    expect(dbState(inst.db)).toEqual(before.db);
    expect(readdirSync(join(inst.path, '..')).filter((n) => n.startsWith('int-prod.'))).toEqual([]);
  });

  it('recover refuses an instance that is not half-restored, exit 2', async () => {
    const r = await cli(home, ['recover', 'int-prod']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/int-prod is not half-restored/);
  });

  // Keeps only the newest backup: prune then has snapshots to forget (restic forget and prune run).
  const pruneAllButNewest = () => cli(home, ['backups', 'prune', 'int-prod', '--yes', '--keep-daily', '0', '--keep-weekly', '0', '--keep-monthly', '0', '--keep-yearly', '0']);

  it('an aborted backup leaves no lock and no partial snapshot, and prune then works', async () => {
    const snaps = await snapshots(home);
    const { proc, err } = start(home, ['backup', 'int-prod', '--yes']);
    await until('a restic child', () => resticChildren(proc.pid!).length > 0);
    // A slow link keeps the backup streaming while the signal arrives.
    proxy.slowMs = 100;
    process.kill(proc.pid!, 'SIGTERM');
    await until('the cancel', () => err().includes('SIGTERM received'));
    const r = await proc;
    proxy.slowMs = 0;
    expect(r.exitCode).toBe(1);
    expect(storeLocks(home)).toEqual([]);
    expect((await snapshots(home)).map((s) => s.id).sort()).toEqual(snaps.map((s) => s.id).sort());
    await must(cli(home, ['backup', 'int-prod']));
    const prune = await pruneAllButNewest();
    expect(prune.stderr).toBe('');
    expect(prune.code).toBe(0);
    expect(prune.stdout).toMatch(/dropped manual backup/);
  });

  it('a host that stops answering while a restore is cancelled: the step gives up on it after the grace period, the undo runs once it answers again, all as before', async () => {
    const { proc, err } = start(home, ['restore', 'int-prod', '--yes'], { OPSDECK_KILL_GRACE_SECONDS: '2' });
    await until('a restic child', () => resticChildren(proc.pid!).length > 0);
    // Everything the host sends from now on is held: channel confirmations, output, the close of the
    // cancelled commands.
    proxy.held = true;
    process.kill(proc.pid!, 'SIGTERM');
    // The cancelled step ends without the host; its undo needs the host, which then answers again.
    await until('the undo', () => err().includes('undoing:'));
    proxy.release();
    const r = await proc;
    expect(r.exitCode).toBe(1);
    expect(err()).toMatch(/cancelled by SIGTERM.*rolled back/);
    expect(treeState(inst.path)).toEqual(before.files);
    expect(dbState(inst.db)).toEqual(before.db);
    expect(readdirSync(join(inst.path, '..')).filter((n) => n.startsWith('int-prod.'))).toEqual([]);
    expect(await lastRun(home, 'int-prod')).toMatchObject({ command: 'restore', status: 'rolled-back', failedStep: 'data' });
    expect(storeLocks(home)).toEqual([]);
  });

  it('a backup killed outright (kill -9) leaves partial snapshots: the next prune drops them', async () => {
    const snaps = await snapshots(home);
    const { proc } = start(home, ['backup', 'int-prod', '--yes']);
    const kids = await until('restic children', () => {
      const k = resticChildren(proc.pid!);
      return k.length ? k : undefined;
    });
    proxy.slowMs = 100;
    process.kill(proc.pid!, 'SIGKILL');
    await proc;
    proxy.slowMs = 0;
    // restic, left alone, either reads the end of its input and stores what it had (a partial
    // snapshot) or dies on its closed stdout, leaving a stale lock. Either way the store must recover;
    // a partial snapshot is made here too, as restic leaves one when its input ends first.
    await until('the restic children to end', () => kids.every((p) => !alive(p)));
    await execa('restic', ['backup', '--stdin', '--stdin-filename', 'int-prod.code.tar', '--host', 'opsdeck', '--tag', 'instance=int-prod,backup=killed,stream=code'], {
      env: storeEnv(home),
      input: 'half a tar',
    });
    const partial = (await snapshots(home)).filter((s) => !snaps.some((x) => x.id === s.id)).map((s) => s.id);
    expect(partial.length).toBeGreaterThan(0);
    const r = await pruneAllButNewest();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const left = (await snapshots(home)).map((s) => s.id);
    expect(left.filter((id) => partial.includes(id))).toEqual([]);
    // What the recorded backups use is still there.
    const inv = new Database(join(home, 'inventory.sqlite'), { readonly: true });
    const used = (inv.prepare('SELECT manifest FROM backups').all() as { manifest: string }[])
      .flatMap((b) => [JSON.parse(b.manifest).code?.snapshot, JSON.parse(b.manifest).db?.snapshot])
      .filter(Boolean);
    inv.close();
    expect(used.length).toBeGreaterThan(0);
    // Manifests hold restic's short ids.
    for (const id of used)
      expect(
        left.some((l) => l.startsWith(id)),
        id,
      ).toBe(true);
  });

  it('removes the stale lock a killed restic left, never a live one', async () => {
    const env = { ...process.env, ...storeEnv(home) };
    // A restic backup killed with -9 cannot clean up: its lock stays, stale (its pid is gone).
    await must(cli(home, ['backup', 'int-prod']));
    const dead = spawn('restic', ['backup', '--stdin', '--stdin-filename', 'x'], { env, stdio: ['pipe', 'ignore', 'ignore'] });
    // Its lock file written whole (restic writes a temporary file first, then renames it).
    const isLock = () => storeLocks(home).filter((n) => /^[0-9a-f]{64}$/.test(n)).length === 1;
    await until('its lock', isLock);
    dead.kill('SIGKILL');
    await new Promise((r) => dead.once('exit', r));
    expect(storeLocks(home)).toHaveLength(1);
    // A restic stopped between writing its lock and renaming it into place leaves the temporary
    // name (the full suite once met one after a SIGHUP): the same bytes, the name restic gives them.
    const [lock] = storeLocks(home);
    copyFileSync(join(home, 'store', 'locks', lock), join(home, 'store', 'locks', `${lock}-tmp-4109760200`));
    expect(storeLocks(home)).toHaveLength(2);
    const pruned = await pruneAllButNewest();
    expect(pruned.stderr).toBe('');
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(/dropped manual backup/);
    expect(storeLocks(home)).toEqual([]);

    // A live restic (a backup from another opsdeck, waiting for its input) keeps its lock: prune
    // waits for it up to storeLockWait (short here), says the store stayed locked, and goes through
    // once that restic is done.
    await must(cli(home, ['backup', 'int-prod']));
    await must(cli(home, ['settings', 'storeLockWait', '2s']));
    const live = spawn('restic', ['backup', '--stdin', '--stdin-filename', 'x', '--tag', 'live-test'], { env, stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      await until('its lock', isLock);
      const r = await pruneAllButNewest();
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the backup store \(.*\) stayed locked by another restic process/);
      expect(storeLocks(home)).toHaveLength(1);
    } finally {
      live.kill('SIGINT');
      await new Promise((r) => (live.exitCode !== null ? r(null) : live.once('exit', r)));
    }
    expect(storeLocks(home)).toEqual([]);
    expect((await pruneAllButNewest()).code).toBe(0);
  });
});

describe('a step that fails after the swap (a drill whose target does not answer)', () => {
  let home: string;
  let scratch: LabInstance;

  beforeAll(async () => {
    home = await homeWithHosts(['lab2']);
    await addInstance(home, 'lab2', 'int-src', 'dev');
    scratch = await addInstance(home, 'lab2', 'int-scratch', 'dev');
    await must(cli(home, ['backup', 'int-src']));
    // The scratch instance has code of its own that no backup holds (drills keep no code in their
    // safety backup): deleting its tree too early would lose it for good.
    asLabUser('sh', ['-c', 'echo only-here > "$1/scratch-only" && mkdir -p "$1/work" && echo 1 > "$1/work/state"', 'sh', scratch.path]);
    // Its site does not answer: the drill's check-target step, after the swap, fails.
    await must(cli(home, ['instance', 'set', 'int-scratch', '--url', 'http://127.0.0.1:9/']));
  });

  it('undoes the swap with the previous tree whole: the delete of the old tree comes only after every step succeeded', async () => {
    const files = treeState(scratch.path);
    const db = dbState(scratch.db);
    const r = await cli(home, ['drill', 'int-src', '--target', 'int-scratch', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Check the restored target answers.*failed/);
    expect(r.stderr).toMatch(/rolled back/);
    expect(treeState(scratch.path)).toEqual(files);
    expect(dbState(scratch.db)).toEqual(db);
    expect(existsSync(`${scratch.path}.opsdeck-previous`)).toBe(false);
    expect(existsSync(`${scratch.path}.opsdeck-incoming`)).toBe(false);
    const run = JSON.parse((await cli(home, ['runs', '--json', '--limit', '1'])).stdout)[0];
    expect(run).toMatchObject({ command: 'drill', status: 'rolled-back', failedStep: 'check-target' });
    const steps = JSON.parse((await cli(home, ['runs', String(run.id), '--json'])).stdout).steps;
    expect(steps.map((s: { name: string }) => s.name)).not.toContain('cleanup');
  });
});
