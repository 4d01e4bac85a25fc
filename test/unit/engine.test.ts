import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { Engine } from '../../src/engine/engine.js';
import type { RunEvent } from '../../src/core/events.js';
import type { Plan } from '../../src/core/plan.js';
import { OpsError } from '../../src/core/errors.js';

function setup() {
  const inv = new Inventory(mkdtempSync(join(tmpdir(), 'engine-')));
  inv.addEnv('dev', false);
  inv.addHost({ name: 'h', address: '127.0.0.1', port: 22, user: 'u', keyFile: null, jump: null, hostKey: null });
  inv.addInstance({ name: 'app', host: 'h', path: '/srv/app', env: 'dev', url: null, dbUrl: null, branch: null });
  return { inv, engine: new Engine(inv) };
}

function plan(log: string[], failAt?: string): Plan<{ n: number }, number> {
  const step = (name: string, undoable = true) => ({
    name,
    title: `step ${name}`,
    run: async () => {
      log.push(`run ${name}`);
      if (name === failAt) throw new OpsError(`${name} broke`);
    },
    undo: undoable ? async () => void log.push(`undo ${name}`) : undefined,
  });
  return { command: 'test', params: { password: 'hunter2', path: '/x' }, instance: 'app', state: { n: 0 }, steps: [step('a'), step('b', false), step('c'), step('d')], result: () => 42 };
}

describe('Engine', () => {
  it('runs every step, records the run, and releases the lock', async () => {
    const { inv, engine } = setup();
    const log: string[] = [];
    const events: RunEvent['type'][] = [];
    engine.subscribe((e) => events.push(e.type));
    const out = await engine.run(plan(log));
    expect(out).toMatchObject({ status: 'ok', exitCode: 0, result: 42 });
    expect(log).toEqual(['run a', 'run b', 'run c', 'run d']);
    expect(events[0]).toBe('run-started');
    expect(events.at(-1)).toBe('run-finished');
    const run = inv.listRuns(1)[0];
    expect(run).toMatchObject({ command: 'test', status: 'ok', instance: 'app' });
    expect(run.params).toEqual({ password: '[redacted]', path: '/x' });
    expect(inv.runSteps(run.id).map((s) => s.status)).toEqual(['done', 'done', 'done', 'done']);
    expect(inv.listLocks()).toEqual([]);
  });

  it('undoes the done steps newest first when one fails, the failed one included', async () => {
    const { inv, engine } = setup();
    const log: string[] = [];
    const out = await engine.run(plan(log, 'c'));
    expect(out).toMatchObject({ status: 'rolled-back', exitCode: 1, failedStep: 'c' });
    expect(out.error).toMatch(/step c failed: c broke/);
    expect(log).toEqual(['run a', 'run b', 'run c', 'undo c', 'undo a']);
    const run = inv.listRuns(1)[0];
    expect(run).toMatchObject({ status: 'rolled-back', failedStep: 'c' });
    expect(inv.listLocks()).toEqual([]);
  });

  it('changes nothing on a dry run', async () => {
    const { inv, engine } = setup();
    const log: string[] = [];
    const out = await engine.run(plan(log), { dryRun: true });
    expect(out.status).toBe('dry-run');
    expect(log).toEqual([]);
    expect(inv.listRuns()).toEqual([]);
  });

  it('refuses a second run on a locked instance with exit 3', async () => {
    const { inv, engine } = setup();
    inv.acquireLock('app', 'backup', null);
    await expect(engine.run(plan([]))).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('locked by another run: backup') });
  });

  it('shows a run whose process died as interrupted, and one still going as running', async () => {
    const { inv, engine } = setup();
    let finish!: () => void;
    const blocked = new Promise<void>((r) => (finish = r));
    const running = engine.run({ command: 'slow', params: {}, instance: 'app', state: {}, steps: [{ name: 's', title: 'slow step', run: () => blocked }], result: () => 0 });
    await new Promise((r) => setTimeout(r, 20));
    expect(inv.listRuns(1)[0]).toMatchObject({ command: 'slow', status: 'running' });
    // As if this process had been killed: the lock's holder is a pid that no longer exists.
    const dead = spawnSync('true').pid!;
    const db = new Database(inv.file);
    db.prepare('UPDATE locks SET pid = ? WHERE instance = ?').run(dead, 'app');
    db.close();
    const [r] = inv.listRuns(1);
    expect(r.status).toBe('interrupted');
    expect(inv.getRun(r.id)!.status).toBe('interrupted');
    finish();
    await running;
    expect(inv.getRun(r.id)!.status).toBe('ok');
  });

  it('keeps the audit trail append-only', () => {
    const { inv } = setup();
    const id = inv.startRun('x', {}, null, false);
    inv.finishRun(id, 'ok', null, null, 1);
    expect(() => inv.db.prepare('DELETE FROM runs').run()).toThrow(/append-only/);
    expect(() => inv.db.prepare("UPDATE runs SET status = 'failed'").run()).toThrow(/append-only/);
  });

  it('runs a final step only after every other step succeeded, and its failure is a warning', async () => {
    const { inv, engine } = setup();
    const log: string[] = [];
    const steps = (failAt?: string, finalFails = false) => [
      { name: 'swap', title: 'swap', run: async () => void log.push('run swap'), undo: async () => void log.push('undo swap') },
      {
        name: 'delete',
        title: 'delete the old tree',
        final: true,
        run: async () => {
          log.push('run delete');
          if (finalFails) throw new OpsError('rm failed');
        },
      },
      {
        name: 'later',
        title: 'later',
        run: async () => {
          log.push('run later');
          if (failAt === 'later') throw new OpsError('later broke');
        },
      },
    ];
    // A step listed after the final one fails: the final one never ran, the swap is undone.
    const failed = await engine.run({ command: 't', params: {}, instance: 'app', state: {}, steps: steps('later'), result: () => 0 });
    expect(failed).toMatchObject({ status: 'rolled-back', failedStep: 'later' });
    expect(log).toEqual(['run swap', 'run later', 'undo swap']);
    log.length = 0;
    const ok = await engine.run({ command: 't', params: {}, instance: 'app', state: {}, steps: steps(undefined, true), result: () => 0 });
    expect(ok).toMatchObject({ status: 'ok', exitCode: 0 });
    expect(log).toEqual(['run swap', 'run later', 'run delete']);
    expect(inv.runSteps(ok.runId!).map((s) => [s.name, s.status, s.error])).toEqual([
      ['swap', 'done', null],
      ['later', 'done', null],
      ['delete', 'warning', 'rm failed'],
    ]);
  });

  it('retries an undo whose host could not be reached, then marks a run whose undo failed', async () => {
    const { inv, engine } = setup();
    process.env.OPSDECK_UNDO_RETRY_SECONDS = '3';
    try {
      let tries = 0;
      const mk = (undoFailsTimes: number) => ({
        command: 't',
        params: {},
        instance: 'app',
        state: {},
        steps: [
          {
            name: 'a',
            title: 'step a',
            run: async () => {},
            undo: async () => {
              if (++tries <= undoFailsTimes) throw new OpsError('cannot connect to host h (u@127.0.0.1:22): connect ECONNREFUSED 127.0.0.1:22');
            },
          },
          {
            name: 'b',
            title: 'step b',
            run: async () => {
              throw new OpsError('b broke');
            },
          },
        ],
        undoFailed: () => ({ message: 'app IS LEFT HALF-RESTORED', hint: 'run: opsdeck recover app' }),
        result: () => 0,
      });
      const once = await engine.run(mk(1));
      expect(once.status).toBe('rolled-back');
      expect(tries).toBe(2);
      tries = 0;
      const never = await engine.run(mk(100));
      expect(never).toMatchObject({ status: 'failed', hint: 'run: opsdeck recover app' });
      expect(never.error).toMatch(/UNDO FAILED: step a: cannot connect .*; app IS LEFT HALF-RESTORED/);
      expect(inv.getRun(never.runId!)!.status).toBe('undo-failed');
    } finally {
      delete process.env.OPSDECK_UNDO_RETRY_SECONDS;
    }
  });

  it('refuses every run on a half-restored instance but the ones that repair it, naming recover', async () => {
    const { inv, engine } = setup();
    inv.setHalfRestored({ instance: 'app', runId: 7, command: 'restore', phase: 'db-committed', safetyBackup: 'S1', staging: '/srv/app.in', old: '/srv/app.old', dbTouched: true });
    await expect(engine.run(plan([]))).rejects.toMatchObject({
      exitCode: 3,
      message: expect.stringContaining('app is HALF-RESTORED: restore run 7 stopped after its database was replaced'),
      hint: expect.stringContaining('opsdeck recover app'),
    });
    expect(inv.listLocks()).toEqual([]);
    const out = await engine.run({ ...plan([]), whileHalfRestored: true });
    expect(out.status).toBe('ok');
  });
});
