import Database from 'better-sqlite3';
import { execa, type ResultPromise } from 'execa';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mysqlAdmin, mysqlDatabases } from '../../fixtures/lab/mariadb.js';
import { CuttingProxy } from '../../fixtures/proxy.js';
import { BIN, ENGINES, addInstance, appSql, asLabUser, cli, dbState, homeWithHosts, lab, must, treeState, until, type Engine } from '../helpers.js';

/** The instance's half-restored record, as the killed run left it (read from the inventory file). */
interface HalfRow {
  phase: string;
  db_touched: number;
  db_kept: string | null;
}

/** The real program without a terminal, as cron would start it; killed by the test. */
function start(home: string, args: string[]): ResultPromise {
  return execa(BIN, ['--home', home, ...args], { reject: false, env: { OPSDECK_KNOWN_HOSTS: '' }, stdin: 'ignore', timeout: 120_000 });
}

/**
 * kill -9 of a restore at the database's swap: `opsdeck recover` gives the instance back exactly as
 * it was before the restore (tree; schema, rows and CHECKSUM TABLE of every table), and leaves
 * nothing beside it: no staged or previous tree, no swap database. On MariaDB what the load kept
 * aside is recorded with the half-restored record, so recover swaps the old tables back instead of
 * loading the safety backup; on PostgreSQL (one transaction, nothing kept) it loads the safety backup.
 */
describe.each(ENGINES)('kill -9 at the swap, then opsdeck recover (%s)', (engine: Engine) => {
  const l = lab();
  const proxy = new CuttingProxy({ host: l.hosts[0].address, port: l.hosts[0].port });
  let home: string;
  let inst: Awaited<ReturnType<typeof addInstance>>;
  let before: { files: Record<string, string>; db: string };
  let backed: { db: string };
  const name = `kill-${engine}`;
  const leftBeside = () => [...readdirSync(join(inst.path, '..')).filter((n) => n.startsWith(`${name}.`)), ...(engine === 'mysql' ? mysqlDatabases(`${inst.db}_opsdeck_`) : [])];

  beforeAll(async () => {
    await proxy.start();
    home = await homeWithHosts([]);
    await must(cli(home, ['host', 'add', 'held', '--address', '127.0.0.1', '--port', String(proxy.port), '--user', l.user, '--key', l.keyFile, '--fingerprint', l.hosts[0].fingerprint]));
    inst = await addInstance(home, 'lab1', name, 'dev', { engine, appSchema: true, via: 'held' });
    await must(cli(home, ['backup', name]));
    backed = { db: dbState(inst) };
    // The instance moves on after its backup, so the restore changes something.
    appSql(inst, 'CREATE TABLE moved_on (n int); INSERT INTO moved_on VALUES (1), (2);');
    asLabUser('sh', ['-c', 'echo changed > "$1/VERSION" && echo new > "$1/new-file"', 'sh', inst.path]);
    before = { files: treeState(inst.path), db: dbState(inst) };
  });
  afterAll(async () => {
    await proxy.stop();
  });
  // A test that failed half-way leaves the next one a whole instance.
  afterEach(async () => {
    proxy.held = false;
    proxy.holdWhen = undefined;
    const inv = new Database(join(home, 'inventory.sqlite'), { readonly: true });
    const half = inv.prepare('SELECT 1 FROM half_restored').get();
    inv.close();
    if (half) await cli(home, ['recover', name]);
  });

  /**
   * Starts a restore, holds every answer of the host from the first byte opsdeck sends once
   * `holdAt` is true of its record, waits until `reached` says the host got that far, kills it.
   */
  async function killAt(holdAt: (r: HalfRow) => boolean, reached: () => boolean): Promise<HalfRow> {
    const inv = new Database(join(home, 'inventory.sqlite'), { readonly: true });
    const record = () => inv.prepare('SELECT * FROM half_restored').get() as HalfRow | undefined;
    try {
      proxy.holdWhen = () => {
        const r = record();
        return r !== undefined && holdAt(r);
      };
      const proc = start(home, ['restore', name, '--yes']);
      await until('the host to get there', () => proxy.held && reached(), 120_000, 50);
      process.kill(proc.pid!, 'SIGKILL');
      await proc;
      proxy.release();
      return record()!;
    } finally {
      inv.close();
    }
  }

  async function recoverExactly(): Promise<string> {
    const rec = await cli(home, ['recover', name]);
    expect(rec.stderr).toBe('');
    expect(rec.code).toBe(0);
    expect(treeState(inst.path)).toEqual(before.files);
    expect(dbState(inst)).toEqual(before.db);
    expect(leftBeside()).toEqual([]);
    return rec.stdout;
  }

  it('after the database was swapped in, before the code tree: recover puts both back exactly, nothing left beside', async () => {
    const r = await killAt(
      (x) => x.phase === 'db-committed',
      () => dbState(inst) === backed.db,
    );
    expect(r).toMatchObject({ phase: 'db-committed', db_touched: 1 });
    // Half-restored: the backup's database, the code tree of before.
    expect(dbState(inst)).toEqual(backed.db);
    expect(treeState(inst.path)).toEqual(before.files);
    const out = await recoverExactly();
    if (engine === 'mysql') {
      expect(JSON.parse(r.db_kept!)).toMatchObject({ old: expect.stringMatching(/_old$/), tables: expect.arrayContaining(['moved_on']) });
      expect(out).toMatch(new RegExp(`${name} recovered: run \\d+ undone, ${name} is as it was before it \\(database put back from what the run kept aside\\)`));
    } else {
      expect(r.db_kept).toBeNull();
      expect(out).toMatch(/database from safety backup \S+/);
    }
    // Whole again: the restore now goes through.
    await must(cli(home, ['restore', name, '--yes']));
    expect(dbState(inst)).toEqual(backed.db);
    expect(leftBeside()).toEqual([]);
    appSql(inst, 'CREATE TABLE moved_on (n int); INSERT INTO moved_on VALUES (1), (2);');
    asLabUser('sh', ['-c', 'echo changed > "$1/VERSION" && echo new > "$1/new-file"', 'sh', inst.path]);
    expect(treeState(inst.path)).toEqual(before.files);
    expect(dbState(inst)).toEqual(before.db);
  });

  it.runIf(engine === 'mysql')('in the middle of the swap (its one session ran on the host, its answer never came back): recover swaps the kept tables back exactly', async () => {
    // An admin's lock on one of the target's tables holds the swap's RENAME TABLE on the host, so the
    // host's answers can be held from exactly then: the swap's session has arrived whole.
    const locker = spawn('mariadb', ['--no-defaults', `--socket=${l.mysql!.socket}`, '-u', userInfo().username, '-e', `LOCK TABLES ${inst.db}.schema_version READ; SELECT SLEEP(600);`], {
      stdio: 'ignore',
    });
    const inv = new Database(join(home, 'inventory.sqlite'), { readonly: true });
    try {
      await until('the lock', () => mysqlAdmin(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(600)%'`).trim() === '1', 60_000, 50);
      const proc = start(home, ['restore', name, '--yes']);
      await until('the swap waiting for the lock', () => mysqlAdmin(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%'`).trim() === '1', 120_000, 50);
      proxy.held = true;
      locker.kill();
      // The swap's session ran to its end on the host: the scratch database dropped, the old tables kept.
      await until('the swap done on the host', () => mysqlDatabases(`${inst.db}_opsdeck_`).every((d) => d.endsWith('_old')) && dbState(inst) === backed.db, 60_000, 50);
      process.kill(proc.pid!, 'SIGKILL');
      await proc;
      proxy.release();
      const r = inv.prepare('SELECT * FROM half_restored').get() as HalfRow;
      expect(r).toMatchObject({ phase: 'db-committing', db_touched: 1 });
      expect(mysqlDatabases(`${inst.db}_opsdeck_`)).toEqual([`${inst.db}_opsdeck_${JSON.parse(r.db_kept!).runId}_old`]);
    } finally {
      locker.kill();
      inv.close();
    }
    const out = await recoverExactly();
    expect(out).toMatch(/database put back from what the run kept aside/);
  });

  it.runIf(engine === 'mysql')('while the load still ran beside the database (the swap not begun): recover drops the scratch database and loads nothing', async () => {
    const r = await killAt(
      (x) => x.phase === 'db-committing',
      () => mysqlDatabases(`${inst.db}_opsdeck_`).length > 0,
    );
    expect(JSON.parse(r.db_kept!)).not.toHaveProperty('tables');
    expect(dbState(inst)).toEqual(before.db);
    const out = await recoverExactly();
    expect(out).toMatch(/database put back from what the run kept aside/);
    // Nothing was loaded again: the recover run read no backup from the store.
    const run = JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '1']))).stdout)[0];
    expect(run.command).toBe('recover');
    const commands = (await must(cli(home, ['runs', String(run.id), '--commands']))).stdout;
    expect(commands).not.toMatch(/restic .*dump/);
  });
});

describe('instance set checks an sql: metric by the rules of the instance own engine', () => {
  it.each(ENGINES)('%s: what its probe would refuse is refused when it is set (exit 2), nothing saved', async (engine) => {
    const home = await homeWithHosts(['lab1']);
    const name = `metric-${engine}`;
    await addInstance(home, 'lab1', name, 'dev', { engine, appSchema: true });
    await must(cli(home, ['instance', 'set', name, '--metric', 'versions=sql:SELECT count(*) FROM schema_version']));
    const refused =
      engine === 'mysql'
        ? ["SELECT GET_LOCK('x', 1)", 'SELECT SLEEP(5)', "SELECT 1 INTO OUTFILE '/tmp/x'", 'SELECT @v := 1']
        : ['SELECT pg_terminate_backend(1)', "SELECT set_config('a.b', 'c', false)"];
    for (const q of refused) {
      const r = await cli(home, ['instance', 'set', name, '--metric', `bad=sql:${q}`]);
      expect(r.code, q).toBe(2);
      expect(r.stderr, q).toMatch(/metric bad is refused: /);
    }
    const saved = JSON.parse((await must(cli(home, ['inventory', 'export']))).stdout).instances.find((i: { name: string }) => i.name === name);
    expect(saved.metrics.map((m: { name: string }) => m.name)).toEqual(['versions']);
  });
});
