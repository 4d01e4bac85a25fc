import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { makeLabInstance } from '../../fixtures/lab.js';
import { addInstance, appSql, asLabUser, cli, dbSql, dbSqlAsApp, dbState, ENGINES, homeWithHosts, lab, local, must, sql, repinHostKey, treeState } from '../helpers.js';
import { mysqlAdmin, mysqlDatabases } from '../../fixtures/lab/mariadb.js';
import { CuttingProxy } from '../../fixtures/proxy.js';

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

describe('a restore whose database load fails midway', () => {
  let home: string;
  let inst: Awaited<ReturnType<typeof addInstance>>;

  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    inst = await addInstance(home, 'lab1', 'half-prod', 'dev', { pagila: true });
  });

  it('leaves the target exactly as it was, and says which step failed', async () => {
    await must(cli(home, ['backup', 'half-prod']));
    // The instance moves on after the backup...
    sql(inst.db, `SET ROLE ${inst.role}; INSERT INTO public.actor (first_name, last_name) VALUES ('NEW', 'ROW'); CREATE TABLE public.orders_2026 (id int);`);
    asLabUser('sh', ['-c', 'echo v2 > "$1/VERSION" && echo new > "$1/new-file"', 'sh', inst.path]);
    // ...and the database refuses CREATE TRIGGER, which comes after every row of the dump is loaded.
    sql(
      inst.db,
      `CREATE FUNCTION public.no_triggers() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'simulated failure during load'; END $$;
      CREATE EVENT TRIGGER no_triggers ON ddl_command_end WHEN TAG IN ('CREATE TRIGGER') EXECUTE FUNCTION public.no_triggers();`,
    );
    const files = treeState(inst.path);
    const db = dbState(inst.db);

    const r = await cli(home, ['restore', 'half-prod', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/load the database.*failed/);
    expect(r.stderr).toMatch(/simulated failure during load/);
    expect(r.stderr).toMatch(/rolled back/);

    expect(treeState(inst.path)).toEqual(files);
    expect(dbState(inst.db)).toEqual(db);
    expect(readdirSync(join(inst.path, '..')).filter((n) => n.startsWith('half-prod.'))).toEqual([]);
    const run = JSON.parse((await cli(home, ['runs', '--json', '--limit', '1'])).stdout)[0];
    expect(run).toMatchObject({ command: 'restore', status: 'rolled-back', failedStep: 'data' });

    // With the obstacle gone the same restore goes through.
    sql(inst.db, 'DROP EVENT TRIGGER no_triggers; DROP FUNCTION public.no_triggers();');
    await must(cli(home, ['restore', 'half-prod', '--yes']));
    expect(sql(inst.db, "SELECT count(*) FROM public.actor WHERE first_name = 'NEW'").trim()).toBe('0');
    expect(existsSync(join(inst.path, 'new-file'))).toBe(false);
  });
});

describe('locks', () => {
  let home: string;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'lock-dev', 'dev');
  });

  it('a second run on a locked instance exits 3 naming the holder', async () => {
    const inv = new Inventory(home);
    inv.acquireLock('lock-dev', 'restore (held by the test)', null);
    try {
      const r = await cli(home, ['backup', 'lock-dev']);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('restore (held by the test)');
      expect(r.stderr).toContain(`pid ${process.pid}`);
      expect(JSON.parse((await cli(home, ['backups', 'lock-dev', '--json'])).stdout)).toEqual([]);
    } finally {
      inv.releaseLock('lock-dev');
      inv.close();
    }
  });

  it('a lock whose process is gone is taken over', async () => {
    const dead = await execa('sh', ['-c', 'echo $$']);
    const inv = new Inventory(home);
    inv.db
      .prepare("INSERT INTO locks (instance, pid, host, user, command, started_at) VALUES ('lock-dev', ?, ?, 'x', 'backup', '2026-01-01')")
      .run(Number(dead.stdout), (await import('node:os')).hostname());
    inv.close();
    const r = await cli(home, ['backup', 'lock-dev']);
    expect(r.code, r.stderr).toBe(0);
    expect(new Inventory(home).listLocks()).toEqual([]);
  });
});

describe('host keys', () => {
  it('refuses a host whose key is not the expected one', async () => {
    const home = await homeWithHosts([]);
    const l = lab();
    const r = await cli(home, ['host', 'add', 'impostor', '--address', l.hosts[1].address, '--port', '2222', '--user', l.user, '--key', l.keyFile, '--fingerprint', l.hosts[0].fingerprint]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`offered key ${l.hosts[1].fingerprint}`);
    expect(JSON.parse((await cli(home, ['host', 'list', '--json'])).stdout)).toEqual([]);
  });

  it('stops every operation on a host whose key changed, until it is trusted again', async () => {
    const home = await homeWithHosts(['lab2']);
    await addInstance(home, 'lab2', 'keyed-dev', 'dev');
    const l = lab();
    // The host now presents a key other than the pinned one.
    repinHostKey(home, 'lab2', l.hosts[0].fingerprint);
    const check = await cli(home, ['host', 'check', 'lab2']);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/HOST KEY OF lab2 .* HAS CHANGED/);
    expect(check.stderr).toContain(`opsdeck host trust lab2 --fingerprint ${l.hosts[1].fingerprint}`);
    const b = await cli(home, ['backup', 'keyed-dev']);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/HAS CHANGED/);
    expect(JSON.parse((await cli(home, ['backups', '--json'])).stdout)).toEqual([]);

    const t = await cli(home, ['host', 'trust', 'lab2']);
    expect(t.code).toBe(2); // no terminal, no --fingerprint, no --yes: it will not guess
    await must(cli(home, ['host', 'trust', 'lab2', '--fingerprint', l.hosts[1].fingerprint]));
    await must(cli(home, ['backup', 'keyed-dev']));
  });
});

describe('hostile names and paths', () => {
  let home: string;
  const canary = () => mkdtempSync('/tmp/opsdeck-canary-');
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
  });

  it('refuses bad names, addresses and URLs with exit 2 and changes nothing', async () => {
    const dir = canary();
    const bad: string[][] = [
      ['instance', 'add', `x;touch ${dir}/pwned`, '--host', 'lab1', '--path', '/tmp/x/y', '--env', 'dev'],
      ['instance', 'add', '--', '-rf', '--host', 'lab1', '--path', '/tmp/x/y', '--env', 'dev'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', `/tmp/$(touch ${dir}/pwned)`, '--env', 'dev'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', '/tmp/../etc', '--env', 'dev'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', 'relative/path', '--env', 'dev'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', '/tmp/x/y', '--env', 'dev', '--db', 'postgres://u:hunter2@127.0.0.1/db'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', '/tmp/x/y', '--env', 'dev', '--db', "postgres://u@127.0.0.1/d'b"],
      ['host', 'add', 'evil', '--address', `-oProxyCommand=touch ${dir}/pwned`],
      ['host', 'add', 'evil', '--address', '127.0.0.1', '--user', '$(id)'],
      ['env', 'add', 'a b'],
      ['backup', 'nope'],
    ];
    for (const args of bad) {
      const r = await cli(home, args);
      expect(r.code, args.join(' ') + '\n' + r.stderr).toBe(2);
      expect(r.stderr).toMatch(/opsdeck: |error: /);
    }
    expect(readdirSync(dir)).toEqual([]);
    expect(JSON.parse((await cli(home, ['instance', 'list', '--json'])).stdout)).toEqual([]);
    // The password never reached the audit trail either.
    expect(JSON.stringify(JSON.parse((await cli(home, ['runs', '--json'])).stdout))).not.toContain('hunter2');
  });

  it('backs up and restores a directory named with quotes, spaces, $(...) and ;', async () => {
    const l = lab();
    const path = join(l.hosts[0].root, `we'ird "dir" $(touch PWNED); echo \`touch PWNED2\``);
    asLabUser('sh', ['-c', 'rm -rf -- "$1" && mkdir -- "$1" && echo hello > "$1/-n file;$(x)"', 'sh', path]);
    await must(cli(home, ['instance', 'add', 'weird', '--host', 'lab1', '--path', path, '--env', 'dev']));
    const before = treeState(path);
    await must(cli(home, ['backup', 'weird']));
    asLabUser('sh', ['-c', 'echo changed > "$1/-n file;$(x)"', 'sh', path]);
    await must(cli(home, ['restore', 'weird', '--yes']));
    expect(treeState(path)).toEqual(before);
    // Commands run in the lab user's home or the srv directory: nothing named PWNED appeared anywhere.
    expect(local('find', [l.dir, '-name', 'PWNED*'])).toBe('');
  });
});

describe('a restore whose MariaDB load fails midway', () => {
  it('leaves the target exactly as it was (nothing swapped, no scratch database left), and goes through once the obstacle is gone', async () => {
    const home = await homeWithHosts(['lab1']);
    const inst = await addInstance(home, 'lab1', 'half-maria', 'dev', { engine: 'mysql' });
    const ext = `${inst.db}_ext`;
    // The app reads a table of another database through a view, as apps sharing a server do.
    mysqlAdmin(`DROP DATABASE IF EXISTS ${ext}; CREATE DATABASE ${ext}; CREATE TABLE ${ext}.t (x int); GRANT SELECT ON ${ext}.* TO '${inst.role}'@'127.0.0.1';`);
    dbSqlAsApp(inst, `CREATE TABLE actor (id int PRIMARY KEY, name text); INSERT INTO actor VALUES (1, 'a'), (2, 'b'); CREATE VIEW ext AS SELECT x FROM ${ext}.t;`);
    await must(cli(home, ['backup', 'half-maria']));
    // The instance moves on, and loses the right its backup's view needs: the view, created after
    // every row of the dump loaded, now fails.
    dbSqlAsApp(inst, "INSERT INTO actor VALUES (3, 'NEW'); CREATE TABLE orders_2026 (id int); DROP VIEW ext;");
    mysqlAdmin(`REVOKE SELECT ON ${ext}.* FROM '${inst.role}'@'127.0.0.1';`);
    const files = treeState(inst.path);
    const db = dbState(inst);

    const r = await cli(home, ['restore', 'half-maria', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/load the database.*failed/);
    expect(r.stderr).toMatch(/denied/);
    expect(r.stderr).toMatch(/rolled back/);
    expect(treeState(inst.path)).toEqual(files);
    expect(dbState(inst)).toEqual(db);
    expect(mysqlDatabases(`${inst.db}_opsdeck_`)).toEqual([]);

    mysqlAdmin(`GRANT SELECT ON ${ext}.* TO '${inst.role}'@'127.0.0.1';`);
    await must(cli(home, ['restore', 'half-maria', '--yes']));
    expect(dbSql(inst, "SELECT COUNT(*) FROM actor WHERE name = 'NEW'").trim()).toBe('0');
    expect(dbSql(inst, 'SELECT COUNT(*) FROM ext').trim()).toBe('0');
    expect(mysqlDatabases(`${inst.db}_opsdeck_`)).toEqual([]);
  });
});

describe('a MariaDB restore of a tampered dump', () => {
  it('never swaps it in: the checksum fails before the end marker, the target is exactly as it was', async () => {
    const home = await homeWithHosts(['lab1']);
    const inst = await addInstance(home, 'lab1', 'tamper-maria', 'dev', { engine: 'mysql' });
    dbSqlAsApp(inst, "CREATE TABLE actor (id int PRIMARY KEY, name text); INSERT INTO actor VALUES (1, 'a'), (2, 'b');");
    const b = JSON.parse((await must(cli(home, ['backup', 'tamper-maria', '--json']))).stdout);
    // The store hands back a dump with a row taken out (valid SQL, the same tables), in place of the backup's.
    const env = { RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass') };
    const file = b.manifest.db.file ?? 'tamper-maria.db.sql';
    const dump = (await execa('restic', ['dump', b.manifest.db.snapshot, `/${file}`], { env })).stdout;
    const bad = dump.replace("(1,'a'),\n", '');
    expect(bad).not.toBe(dump);
    const put = await execa('restic', ['backup', '--json', '--stdin', '--stdin-filename', file], { env, input: bad + '\n' });
    const snap = JSON.parse(put.stdout.trim().split('\n').pop()!).snapshot_id;
    const inv = new Inventory(home);
    const row = inv.db.prepare('SELECT manifest FROM backups WHERE id = ?').get(b.id) as { manifest: string };
    const m = JSON.parse(row.manifest);
    (m.db ?? m.manifest?.db).snapshot = snap;
    inv.db.prepare('UPDATE backups SET manifest = ? WHERE id = ?').run(JSON.stringify(m), b.id);
    inv.close();
    dbSqlAsApp(inst, "INSERT INTO actor VALUES (3, 'after');");
    const db = dbState(inst);

    const r = await cli(home, ['restore', 'tamper-maria', '--backup', b.id, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/checksum|does not match/);
    expect(r.stderr).toMatch(/rolled back/);
    expect(dbState(inst)).toEqual(db);
    expect(mysqlDatabases(`${inst.db}_opsdeck_`)).toEqual([]);
  });
});
