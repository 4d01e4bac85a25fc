import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { addInstance, asLabUser, cli, dbSql, dbSqlAsApp, dbState, homeWithHosts, must, sql, treeState } from '../helpers.js';
import { mysqlAdmin, mysqlDatabases } from '../../fixtures/lab/mariadb.js';

// Restores whose database load fails midway, or whose dump was tampered with: the target stays
// exactly as it was. (Split from failures.test.ts so that workers run them side by side.)

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
