import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLabInstance } from '../../fixtures/lab.js';
import { addInstance, appSql, asLabUser, cli, dbSql, dbState, ENGINES, homeWithHosts, lab, must, treeState } from '../helpers.js';
import { mysqlDatabases } from '../../fixtures/lab/mariadb.js';
import { CuttingProxy } from '../../fixtures/proxy.js';

// The connection to the host cut mid-stream, through the test's proxy. The other failures are in
// failures-load.test.ts and failures-refusals.test.ts: split so that three workers run them side by side.

async function storeSnapshots(home: string): Promise<unknown[]> {
  if (!existsSync(join(home, 'store', 'config'))) return [];
  const r = await execa('restic', ['snapshots', '--json'], { env: { RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass') } });
  return JSON.parse(r.stdout);
}

describe('the SSH connection cut mid-backup', () => {
  const proxy = new CuttingProxy({ host: lab().hosts[0].address, port: lab().hosts[0].port });
  let home: string;

  beforeAll(async () => {
    await proxy.start();
    home = await homeWithHosts([]);
    const l = lab();
    await must(cli(home, ['host', 'add', 'flaky', '--address', '127.0.0.1', '--port', String(proxy.port), '--user', l.user, '--key', l.keyFile, '--fingerprint', l.hosts[0].fingerprint]));
    const i = makeLabInstance(l, 'lab1', 'cut-prod', { pagila: true });
    await must(cli(home, ['instance', 'add', 'cut-prod', '--host', 'flaky', '--path', i.path, '--env', 'dev', '--db', i.dbUrl], { OPSDECK_DB_PASSWORD: i.password }));
  });
  afterAll(() => proxy.stop());

  it('fails with a clear message, records no backup, and the next backup succeeds', async () => {
    // The code tree is ~100 KB, the dump 3.4 MB: the cut lands inside the database stream.
    proxy.cutAfter = 1_000_000;
    const r = await cli(home, ['backup', 'cut-prod']);
    expect(proxy.cuts).toBeGreaterThan(0);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/connection to host flaky was lost/);
    expect(JSON.parse((await cli(home, ['backups', 'cut-prod', '--json'])).stdout)).toEqual([]);
    // Not even the code stream that had completed is left in the store.
    expect(await storeSnapshots(home)).toEqual([]);

    proxy.cutAfter = undefined;
    const ok = await cli(home, ['backup', 'cut-prod', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const list = JSON.parse((await cli(home, ['backups', 'cut-prod', '--json'])).stdout);
    expect(list.map((b: any) => b.id)).toEqual([JSON.parse(ok.stdout).id]);
    expect((await storeSnapshots(home)).length).toBe(2);
    const runs = JSON.parse((await cli(home, ['runs', '--json'])).stdout);
    expect(runs.map((x: any) => x.status).slice(0, 2)).toEqual(['ok', 'rolled-back']);
  });
});

describe.each(ENGINES)('the SSH connection cut mid-dump during a restore (%s)', (engine) => {
  const proxy = new CuttingProxy({ host: lab().hosts[0].address, port: lab().hosts[0].port });
  afterAll(() => proxy.stop());

  it('leaves the target exactly as it was (tree, database, nothing left beside them), and the next restore goes through', async () => {
    await proxy.start();
    const home = await homeWithHosts([]);
    const l = lab();
    await must(cli(home, ['host', 'add', 'flaky', '--address', '127.0.0.1', '--port', String(proxy.port), '--user', l.user, '--key', l.keyFile, '--fingerprint', l.hosts[0].fingerprint]));
    const name = `cutr-prod${engine === 'mysql' ? '-m' : ''}`;
    const inst = await addInstance(home, 'lab1', name, 'dev', { engine, appSchema: true, via: 'flaky' });
    // About 3 MB of rows, against a code tree of ~100 KB: a cut after 1 MB sent lands inside the dump.
    appSql(
      inst,
      engine === 'mysql'
        ? 'CREATE TABLE big (id int PRIMARY KEY, body text); INSERT INTO big SELECT seq, REPEAT(MD5(seq), 32) FROM seq_1_to_3000;'
        : 'CREATE TABLE big (id int PRIMARY KEY, body text); INSERT INTO big SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 3000) g;',
    );
    await must(cli(home, ['backup', name]));
    // The instance moves on after the backup.
    appSql(inst, "INSERT INTO notes (body) VALUES ('after the backup'); DELETE FROM big WHERE id <= 10;");
    asLabUser('sh', ['-c', 'echo new > "$1/new-file"', 'sh', inst.path]);
    const files = treeState(inst.path);
    const db = dbState(inst);

    // One drop of the network; what comes after (the undo) gets through.
    proxy.cutAfterSent = 1_000_000;
    const r = await cli(home, ['restore', name, '--yes']);
    expect(proxy.cuts).toBe(1);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/connection to host flaky was lost/);
    expect(r.stderr).toMatch(/rolled back/);
    expect(treeState(inst.path)).toEqual(files);
    expect(dbState(inst)).toEqual(db);
    expect(readdirSync(join(inst.path, '..')).filter((n) => n.startsWith(`${name}.`))).toEqual([]);
    if (engine === 'mysql') expect(mysqlDatabases(`${inst.db}_opsdeck_`)).toEqual([]);
    const run = JSON.parse((await cli(home, ['runs', '--json', '--limit', '1'])).stdout)[0];
    expect(run).toMatchObject({ command: 'restore', status: 'rolled-back', failedStep: 'data' });
    if (engine === 'mysql') {
      // Nothing of the target changes before the swap: the undo loads nothing back (the command log
      // shows the one dump read from the store, the restore's).
      const commands = (await must(cli(home, ['runs', String(run.id), '--commands']))).stdout;
      expect(commands.match(/restic dump \S+ \S+\.db\.sql/g)).toHaveLength(1);
    }

    await must(cli(home, ['restore', name, '--yes']));
    expect(dbSql(inst, "SELECT count(*) FROM notes WHERE body = 'after the backup'").trim()).toBe('0');
    expect(dbSql(inst, 'SELECT count(*) FROM big').trim()).toBe('3000');
    expect(existsSync(join(inst.path, 'new-file'))).toBe(false);
  });
});
