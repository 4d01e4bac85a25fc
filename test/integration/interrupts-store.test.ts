import Database from 'better-sqlite3';
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabInstance } from '../../fixtures/lab.js';
import { CuttingProxy } from '../../fixtures/proxy.js';
import { addInstance, asLabUser, cli, dbState, homeWithHosts, lab, must, treeState, until } from '../helpers.js';
import { alive, inDataStep, interruptedInstance, lastRun, resticChildren, snapshots, start, storeEnv, storeLocks } from './interrupted.js';

// Backups interrupted (a signal, kill -9), a restore cancelled while its host stops answering, the
// store's locks, and a drill failing after its swap. Split from interrupts.test.ts so that workers
// run them side by side; the same set-up (interrupted.ts), an instance of its own.

describe("interrupted backups and the store's locks", () => {
  const l = lab();
  const proxy = new CuttingProxy({ host: l.hosts[0].address, port: l.hosts[0].port });
  const hooks: { body: string; valid: boolean }[] = [];
  let web: HttpServer;
  let home: string;
  let inst: LabInstance;
  let before: { files: Record<string, string>; db: string };

  beforeAll(async () => {
    ({ web, home, inst, before } = await interruptedInstance(proxy, hooks, 'int-store'));
  });
  afterAll(async () => {
    await proxy.stop();
    await new Promise((r) => web.close(r));
  });

  // Keeps only the newest backup: prune then has snapshots to forget (restic forget and prune run).
  const pruneAllButNewest = () => cli(home, ['backups', 'prune', 'int-store', '--yes', '--keep-daily', '0', '--keep-weekly', '0', '--keep-monthly', '0', '--keep-yearly', '0']);

  it('an aborted backup leaves no lock and no partial snapshot, and prune then works', async () => {
    const snaps = await snapshots(home);
    const { proc, err } = start(home, ['backup', 'int-store', '--yes']);
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
    await must(cli(home, ['backup', 'int-store']));
    const prune = await pruneAllButNewest();
    expect(prune.stderr).toBe('');
    expect(prune.code).toBe(0);
    expect(prune.stdout).toMatch(/dropped manual backup/);
  });

  it('a host that stops answering while a restore is cancelled: the step gives up on it after the grace period, the undo runs once it answers again, all as before', async () => {
    const { proc, err } = start(home, ['restore', 'int-store', '--yes'], { OPSDECK_KILL_GRACE_SECONDS: '2' });
    await until('the data step, restic running', () => inDataStep(proc.pid!, inst));
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
    expect(readdirSync(join(inst.path, '..')).filter((n) => n.startsWith('int-store.'))).toEqual([]);
    expect(await lastRun(home, 'int-store')).toMatchObject({ command: 'restore', status: 'rolled-back', failedStep: 'data' });
    expect(storeLocks(home)).toEqual([]);
  });

  it('a backup killed outright (kill -9) leaves partial snapshots: the next prune drops them', async () => {
    const snaps = await snapshots(home);
    const { proc } = start(home, ['backup', 'int-store', '--yes']);
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
    await execa('restic', ['backup', '--stdin', '--stdin-filename', 'int-store.code.tar', '--host', 'opsdeck', '--tag', 'instance=int-store,backup=killed,stream=code'], {
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
    await must(cli(home, ['backup', 'int-store']));
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
    await must(cli(home, ['backup', 'int-store']));
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
