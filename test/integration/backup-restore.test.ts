import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pagilaAvailable } from '../../fixtures/lab.js';
import { mysqlDatabases } from '../../fixtures/lab/mariadb.js';
import { addInstance, asLabUser, cli, local, dbSql, dbSqlAsApp, dbState, homeWithHosts, must, treeState, ENGINES, type Engine } from '../helpers.js';

/** What differs by engine: table names, the damage done, how the dump reads, who the app's role is. */
const KIT: Record<Engine, { table: (t: string) => string; damage: (role: string) => string; dumpHolds: string; superuser: (role: string) => string; no: string }> = {
  postgres: {
    table: (t) => `public.${t}`,
    damage: (role) =>
      `SET ROLE ${role}; DELETE FROM public.payment_p2022_01; UPDATE public.actor SET first_name = 'X'; DROP TABLE public.film_category CASCADE; CREATE TABLE public.intruder (x int); INSERT INTO public.intruder VALUES (1); SELECT setval('public.actor_actor_id_seq', 9999); CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1';`,
    dumpHolds: 'COPY public.actor',
    superuser: (role) => `SELECT rolsuper FROM pg_roles WHERE rolname = '${role}'`,
    no: 'f',
  },
  // Sakila: views, routines, triggers, FULLTEXT, a spatial column, a BLOB.
  mysql: {
    table: (t) => t,
    damage: () =>
      "DELETE FROM payment WHERE payment_id < 500; UPDATE actor SET first_name = 'X'; DROP TRIGGER ins_film; DROP TABLE film_text; CREATE TABLE intruder (x int); INSERT INTO intruder VALUES (1); ALTER TABLE actor AUTO_INCREMENT = 9999; CREATE FUNCTION evil() RETURNS int RETURN 1; DROP VIEW actor_info; DROP TRIGGER customer_create_date; UPDATE staff SET picture = NULL;",
    dumpHolds: 'INSERT INTO `actor` VALUES',
    superuser: (role) => `SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE LIKE '''${role}''@%' AND PRIVILEGE_TYPE = 'SUPER'`,
    no: '0',
  },
};

describe.each(ENGINES)('backup then restore of an instance with the sample database (%s)', (engine) => {
  const kit = KIT[engine];
  let home: string;
  let inst: Awaited<ReturnType<typeof addInstance>>;

  beforeAll(async () => {
    expect(pagilaAvailable()).toBe(true);
    home = await homeWithHosts(['lab1']);
    inst = await addInstance(home, 'lab1', `br-prod-${engine}`, 'prod', { pagila: true, engine });
    // Modes, a symlink and an awkward name, so "identical" means something.
    asLabUser('sh', [
      '-c',
      'cd "$1" && mkdir -p data/uploads && echo secret > data/private.txt && chmod 600 data/private.txt && ln -s ../index.html data/home.html && echo x > "data/uploads/a file; $(x).txt" && chmod 750 data',
      'sh',
      inst.path,
    ]);
  });

  it('puts files and database back exactly after they were damaged', async () => {
    const filesBefore = treeState(inst.path);
    const dbBefore = dbState(inst);
    const b = JSON.parse((await must(cli(home, ['backup', inst.name, '--json']))).stdout);
    expect(b.id).toMatch(/^\d{8}T\d{6}-[0-9a-f]{4}$/);
    expect(b.manifest.db.tables[kit.table('actor')]).toBe(200);
    expect(b.manifest.db.tables[kit.table('rental')]).toBe(16044);

    // Destroy: change and drop tables, delete and change files, add files and tables.
    dbSqlAsApp(inst, kit.damage(inst.role));
    asLabUser('sh', ['-c', 'cd "$1" && rm -f VERSION && echo changed > index.html && echo new > added.txt && mkdir newdir && chmod 644 data/private.txt && rm data/home.html', 'sh', inst.path]);
    expect(treeState(inst.path)).not.toEqual(filesBefore);
    expect(dbState(inst)).not.toEqual(dbBefore);

    const r = await cli(home, ['restore', inst.name, '--yes', '--allow-protected', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.backup).toBe(b.id);
    expect(out.safetyBackup).toBeTruthy();

    expect(treeState(inst.path)).toEqual(filesBefore);
    expect(dbState(inst)).toEqual(dbBefore);
    // Nothing left beside the instance (the previous tree is deleted in the background on the host).
    expect(existsSync(inst.path + '.opsdeck-incoming')).toBe(false);
    // MariaDB: neither the scratch database nor the old tables' is left once the run is done.
    if (engine === 'mysql') expect(mysqlDatabases(`${inst.db}_opsdeck_`)).toEqual([]);
    for (let i = 0; i < 100 && existsSync(inst.path + '.opsdeck-previous'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(inst.path + '.opsdeck-previous')).toBe(false);
    // It was done as the app's own role, which is no superuser.
    expect(dbSql(inst, kit.superuser(inst.role)).trim()).toBe(kit.no);
  });

  it('lists, verifies and exports the backup', async () => {
    const list = JSON.parse((await must(cli(home, ['backups', inst.name, '--json']))).stdout);
    const manual = list.find((b: any) => b.kind === 'manual');
    expect(manual).toMatchObject({ instance: inst.name, verified: false });
    expect(list.some((b: any) => b.kind === 'safety')).toBe(true);
    const v = await cli(home, ['backups', 'verify', manual.id, '--json']);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ verified: true, problems: [] });
    expect(JSON.parse((await must(cli(home, ['backups', inst.name, '--json']))).stdout).find((b: any) => b.id === manual.id).verified).toBe(true);

    const file = join(home, 'export.tar');
    await must(cli(home, ['backups', 'export', manual.id, file]));
    const listing = local('tar', ['-tvf', file]);
    expect(listing).toMatch(/manifest\.json/);
    expect(listing).toMatch(/code\.tar/);
    expect(listing).toMatch(/db\.sql/);
    const manifest = JSON.parse(local('tar', ['-xOf', file, 'manifest.json']));
    expect(manifest.id).toBe(manual.id);
    expect(local('tar', ['-xOf', file, 'db.sql'])).toContain(kit.dumpHolds);
    expect(readFileSync(file).length).toBeGreaterThan(manifest.manifest.db.bytes);
  });

  it('refuses without --yes when there is no terminal, and changes nothing', async () => {
    const before = treeState(inst.path);
    const r = await cli(home, ['restore', inst.name]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--yes/);
    const p = await cli(home, ['restore', inst.name, '--yes']);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/protected/);
    expect(treeState(inst.path)).toEqual(before);
  });

  it('prints the plan with --dry-run and changes nothing', async () => {
    const before = treeState(inst.path);
    const runsBefore = JSON.parse((await must(cli(home, ['runs', '--json']))).stdout).length;
    const r = await must(cli(home, ['restore', inst.name, '--dry-run']));
    expect(r.stderr).toMatch(/Take a safety backup/);
    expect(r.stdout).toMatch(/would restore backup/);
    expect(treeState(inst.path)).toEqual(before);
    expect(JSON.parse((await must(cli(home, ['runs', '--json']))).stdout).length).toBe(runsBefore);
  });
});
