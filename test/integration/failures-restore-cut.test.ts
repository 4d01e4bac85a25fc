import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addInstance, appSql, asLabUser, cli, dbSql, dbState, ENGINES, homeWithHosts, lab, must, treeState } from '../helpers.js';
import { mysqlDatabases } from '../../fixtures/lab/mariadb.js';
import { CuttingProxy } from '../../fixtures/proxy.js';

// The connection to the host cut mid-stream during a restore, through the test's proxy: split from
// failures.test.ts (the cut mid-backup) so that another worker runs it meanwhile.

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
