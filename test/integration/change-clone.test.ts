import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { addInstance, appSql, asLabUser, cli, dbSql, dbState, dbStateOf, ENGINES, homeWithHosts, lab, migrateHook, must, pgAdmin, sql, treeState, type Engine } from '../helpers.js';

// Clones and instance make. Split from change.test.ts so that workers run them side by side (its
// two helpers copied).

const get = async (url: string) => {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
};

/** Sets the lab app's migrate hook (for the instance's engine) and a health check that wants the app's own page. */
async function appSettings(home: string, name: string, extra: string[] = [], engine: Engine = 'postgres') {
  await must(cli(home, ['instance', 'set', name, '--hook', `migrate=${migrateHook(engine)}`, '--health-text', 'Sample app', ...extra]));
}

describe('clone', () => {
  let home: string;
  let prod: Awaited<ReturnType<typeof addInstance>>;
  let staging: Awaited<ReturnType<typeof addInstance>>;

  beforeAll(async () => {
    home = await homeWithHosts(['lab1', 'lab2']);
    prod = await addInstance(home, 'lab1', 'cl-prod', 'prod', { version: 'v2.0.0' });
    staging = await addInstance(home, 'lab2', 'cl-staging', 'dev', { version: 'v1.0.0' });
    await appSettings(home, 'cl-prod');
    await appSettings(home, 'cl-staging', ['--local', 'config/local.env']);
    // prod's v2 schema and data
    await must(cli(home, ['upgrade', 'cl-prod', '--to', 'v2.0.0', '--yes', '--allow-protected']));
    sql(prod.db, `SET ROLE ${prod.role}; INSERT INTO notes (body) SELECT 'prod note ' || g FROM generate_series(1, 50) g;`);
  });

  it('makes staging a copy of prod at its own URL, with its own database and settings', async () => {
    const prodFiles = treeState(prod.path);
    const prodDb = dbState(prod.db);
    await must(cli(home, ['clone', 'cl-prod', 'cl-staging', '--yes']));
    // Prod is untouched.
    expect(treeState(prod.path)).toEqual(prodFiles);
    expect(dbState(prod.db)).toEqual(prodDb);
    // Staging serves prod's code and data, at its own URL, from its own database.
    const page = await get(staging.url);
    expect(page.status).toBe(200);
    expect(page.body).toContain('version v2.0.0');
    expect(sql(staging.db, 'SELECT count(*) FROM notes').trim()).toBe('50');
    expect(readFileSync(join(staging.path, 'config', 'local.env'), 'utf8')).toBe(`DATABASE=${staging.db}\n`);
    const show = JSON.parse((await must(cli(home, ['instance', 'show', 'cl-staging', '--json']))).stdout);
    expect(show).toMatchObject({ url: staging.url, dbUrl: staging.dbUrl, maintenanceSince: null });
    // Files except the local ones are prod's.
    const { 'config/local.env': a, ...restStaging } = treeState(staging.path);
    const { 'config/local.env': b, ...restProd } = prodFiles;
    expect(a).not.toEqual(b);
    expect(restStaging).toEqual(restProd);
  });

  it('--upgrade-to upgrades the copy and leaves prod untouched', async () => {
    const prodFiles = treeState(prod.path);
    const prodDb = dbState(prod.db);
    await must(cli(home, ['clone', 'cl-prod', 'cl-staging', '--upgrade-to', 'v3.0.0', '--yes']));
    expect(readFileSync(join(staging.path, 'VERSION'), 'utf8')).toBe('v3.0.0\n');
    expect(sql(staging.db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tags'").trim()).toBe('1');
    expect(sql(staging.db, 'SELECT count(*) FROM notes').trim()).toBe('50');
    expect(treeState(prod.path)).toEqual(prodFiles);
    expect(dbState(prod.db)).toEqual(prodDb);
  });

  it('--from-backup copies the newest backup, --as-of the newest one at least that old', async () => {
    // prod's only backup was taken by its upgrade, before the 50 notes were written.
    await must(cli(home, ['clone', 'cl-prod', 'cl-staging', '--from-backup', '--yes']));
    expect(sql(staging.db, 'SELECT count(*) FROM notes').trim()).toBe('0');
    expect(readFileSync(join(staging.path, 'config', 'local.env'), 'utf8')).toBe(`DATABASE=${staging.db}\n`);
    const old = await cli(home, ['clone', 'cl-prod', 'cl-staging', '--as-of', '3650d', '--yes']);
    expect(old.code).toBe(2);
    expect(old.stderr).toContain('no backup at least 3650d old');
    expect((await cli(home, ['clone', 'cl-prod', 'cl-staging', '--as-of', 'yesterday', '--yes'])).code).toBe(2);
  });

  it('onto a protected instance without confirmation: refused, exit 2, nothing changed', async () => {
    const before = treeState(prod.path);
    const db = dbState(prod.db);
    for (const args of [
      ['clone', 'cl-staging', 'cl-prod'],
      ['clone', 'cl-staging', 'cl-prod', '--yes'],
      ['restore', 'cl-prod', '--yes'],
      ['update', 'cl-prod', '--yes'],
    ]) {
      const r = await cli(home, args);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(treeState(prod.path)).toEqual(before);
    expect(dbState(prod.db)).toEqual(db);
  });
});

describe.each(ENGINES)('clone --data-only (%s)', (engine) => {
  it('copies the database across hosts and keeps the target code', async () => {
    const home = await homeWithHosts(['lab1', 'lab2']);
    const m = engine === 'mysql' ? '-m' : '';
    const prod = await addInstance(home, 'lab1', `cld-prod${m}`, 'dev', { version: 'v2.0.0', engine, appSchema: true });
    const staging = await addInstance(home, 'lab2', `cld-staging${m}`, 'dev', { version: 'v1.0.0', engine, appSchema: true });
    appSql(prod, "INSERT INTO notes (body) VALUES ('prod note 1'), ('prod note 2'), ('prod note 3');");
    const code = treeState(staging.path);
    await must(cli(home, ['clone', prod.name, staging.name, '--data-only', '--yes']));
    expect(treeState(staging.path)).toEqual(code);
    expect(dbStateOf(staging)).toEqual(dbStateOf(prod));
    expect(dbSql(staging, 'SELECT count(*) FROM notes').trim()).toBe('3');
  });
});

describe('instance make', () => {
  let home: string;
  const role = 'r_made';
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    pgAdmin(`DROP DATABASE IF EXISTS d_made WITH (FORCE); DROP DATABASE IF EXISTS d_made_bad WITH (FORCE); DROP ROLE IF EXISTS ${role}; CREATE ROLE ${role} LOGIN CREATEDB PASSWORD 'made-pw';`);
  });
  const dbExists = (db: string) => pgAdmin(`SELECT count(*) FROM pg_database WHERE datname = '${db}'`).trim() === '1';

  it('makes an instance from the repository, then remove --purge leaves nothing behind', async () => {
    const l = lab();
    const path = join(l.hosts[0].root, 'made');
    asLabUser('rm', ['-rf', path]);
    const url = `http://${l.hosts[0].address}:${l.hosts[0].httpPort}/made/`;
    const r = await cli(
      home,
      [
        'instance',
        'make',
        'made',
        '--host',
        'lab1',
        '--path',
        path,
        '--env',
        'dev',
        '--repo',
        l.appRepo,
        '--ref',
        'v2.0.0',
        '--db',
        `postgres://${role}@127.0.0.1:${l.pg.port}/d_made`,
        '--url',
        url,
        '--hook',
        'migrate=bin/migrate',
        '--json',
      ],
      { OPSDECK_DB_PASSWORD: 'made-pw' },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'made', path, hooks: { migrate: ['bin/migrate'] } });
    expect(readFileSync(join(path, 'VERSION'), 'utf8')).toBe('v2.0.0\n');
    expect(sql('d_made', "SELECT string_agg(name, ',' ORDER BY name) FROM schema_version").trim()).toBe('001.sql,002.sql');
    expect((await get(url)).body).toContain('version v2.0.0');

    await must(cli(home, ['instance', 'remove', 'made', '--purge', '--yes']));
    expect(existsSync(path)).toBe(false);
    expect(dbExists('d_made')).toBe(false);
    expect((await cli(home, ['instance', 'show', 'made'])).code).toBe(2);
    // Its last backup is kept.
    expect(JSON.parse((await must(cli(home, ['backups', '--json']))).stdout).some((b: any) => b.instance === 'made')).toBe(true);
  });

  it('a make that fails leaves nothing on the host or in the inventory', async () => {
    const l = lab();
    const path = join(l.hosts[0].root, 'made-bad');
    asLabUser('rm', ['-rf', path]);
    const r = await cli(
      home,
      [
        'instance',
        'make',
        'made-bad',
        '--host',
        'lab1',
        '--path',
        path,
        '--env',
        'dev',
        '--repo',
        l.appRepo,
        '--ref',
        'v1.0.0',
        '--db',
        `postgres://${role}@127.0.0.1:${l.pg.port}/d_made_bad`,
        '--hook',
        'install=sh -c "echo installing; exit 3"',
      ],
      { OPSDECK_DB_PASSWORD: 'made-pw' },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/install hook of made-bad failed \(exit status 3\)/);
    expect(existsSync(path)).toBe(false);
    expect(dbExists('d_made_bad')).toBe(false);
    expect((await cli(home, ['instance', 'show', 'made-bad'])).code).toBe(2);
    // And a path that exists is refused before anything happens.
    const taken = await cli(home, ['instance', 'make', 'x', '--host', 'lab1', '--path', l.hosts[0].root + '/cl-prod', '--env', 'dev', '--repo', l.appRepo, '--ref', 'v1.0.0']);
    expect(taken.code).toBe(2);
  });
});
