import Database from 'better-sqlite3';
import type { Server as HttpServer } from 'node:http';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabInstance } from '../../fixtures/lab.js';
import { CuttingProxy } from '../../fixtures/proxy.js';
import { cli, dbState, lab, must, sql, treeState, until } from '../helpers.js';
import { inDataStep, interruptedInstance, lastRun, moveOn as moveOnOf, resticChildren, start, storeLocks } from './interrupted.js';

// Restores interrupted by signals, kill -9 and a host that goes away, and recover. Backups
// interrupted, the store's locks and a drill failing after its swap: interrupts-store.test.ts (split
// so that workers run them side by side).

describe('interrupted restores: signals, kill -9 and recover', () => {
  const l = lab();
  const proxy = new CuttingProxy({ host: l.hosts[0].address, port: l.hosts[0].port });
  const hooks: { body: string; valid: boolean }[] = [];
  let web: HttpServer;
  let home: string;
  let inst: LabInstance;
  let before: { files: Record<string, string>; db: string };
  const moveOn = () => moveOnOf(inst);
  let backed: { files: Record<string, string>; db: string };

  beforeAll(async () => {
    ({ web, home, inst, backed, before } = await interruptedInstance(proxy, hooks, 'int-prod'));
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
      await until('the data step, restic running', () => inDataStep(proc.pid!, inst));
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

  it('the host refuses connections while the undo runs: the undo tries again until it is back, and a SIGTERM then does not stop it', async () => {
    const { proc, err } = start(home, ['restore', 'int-prod', '--yes']);
    await until('the data step, restic running', () => inDataStep(proc.pid!, inst));
    proxy.held = true;
    // The connection goes mid-stream: the step fails on it, and its undo meets a host that refuses.
    // (A SIGTERM sent right after the cut raced the step's own failure: which came first depended on the machine's speed.)
    await proxy.down();
    await until('a retry of the undo', () => /ECONNREFUSED.*trying again in/.test(err()));
    process.kill(proc.pid!, 'SIGTERM');
    await until('the signal seen', () => /SIGTERM received/.test(err()));
    await proxy.up();
    const r = await proc;
    expect(r.exitCode).toBe(1);
    expect(err()).toMatch(/lost while a command ran[^]*rolled back: the done steps were undone/);
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
});
