import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { addInstance, appSql, cli, dbState, ENGINES, homeWithHosts, migrateHook, must, sql, treeState, type Engine } from '../helpers.js';

// Maintenance, upgrade and update. Clones and instance make: change-clone.test.ts (split so that
// workers run them side by side).

const get = async (url: string) => {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
};

/** Sets the lab app's migrate hook (for the instance's engine) and a health check that wants the app's own page. */
async function appSettings(home: string, name: string, extra: string[] = [], engine: Engine = 'postgres') {
  await must(cli(home, ['instance', 'set', name, '--hook', `migrate=${migrateHook(engine)}`, '--health-text', 'Sample app', ...extra]));
}

describe('maintenance', () => {
  it('takes the site down with a 503 maintenance page and brings it back', async () => {
    const home = await homeWithHosts(['lab1']);
    const i = await addInstance(home, 'lab1', 'maint-dev', 'dev');
    expect((await get(i.url)).status).toBe(200);
    await must(cli(home, ['maintenance', 'maint-dev', 'on']));
    const down = await get(i.url);
    expect(down.status).toBe(503);
    expect(down.body).toContain('Down for maintenance');
    expect(JSON.parse((await must(cli(home, ['instance', 'show', 'maint-dev', '--json']))).stdout).maintenanceSince).toBeTruthy();
    expect((await must(cli(home, ['instance', 'show', 'maint-dev']))).stdout).toMatch(/IN MAINTENANCE since/);
    await must(cli(home, ['maintenance', 'maint-dev', 'off']));
    expect((await get(i.url)).status).toBe(200);
    expect((await must(cli(home, ['instance', 'show', 'maint-dev']))).stdout).toMatch(/state\s+live/);
    expect((await cli(home, ['maintenance', 'maint-dev', 'sideways'])).code).toBe(2);
  });
});

describe('upgrade and update', () => {
  let home: string;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
  });

  it('upgrades v1 to v2: code, schema and health as v2', async () => {
    const i = await addInstance(home, 'lab1', 'up-dev', 'dev');
    await appSettings(home, 'up-dev');
    const dry = await must(cli(home, ['upgrade', 'up-dev', '--to', 'v2.0.0', '--dry-run']));
    expect(dry.stdout).toMatch(/upgrade up-dev on lab1 from \w+ to \w+ \(v2\.0\.0\)/);
    expect(readFileSync(join(i.path, 'VERSION'), 'utf8')).toBe('v1.0.0\n');

    const r = await cli(home, ['upgrade', 'up-dev', '--to', 'v2.0.0', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ instance: 'up-dev', commits: 1 });
    expect(readFileSync(join(i.path, 'VERSION'), 'utf8')).toBe('v2.0.0\n');
    expect(sql(i.db, "SELECT string_agg(name, ',' ORDER BY name) FROM schema_version").trim()).toBe('001.sql,002.sql');
    expect(sql(i.db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'created_at'").trim()).toBe('1');
    const page = await get(i.url);
    expect(page.status).toBe(200);
    expect(page.body).toContain('version v2.0.0');
    expect(existsSync(join(i.path, 'maintenance.html'))).toBe(false);
    // A backup was taken first.
    expect(JSON.parse((await must(cli(home, ['backups', 'up-dev', '--json']))).stdout)).toHaveLength(1);
  });
});

describe.each(ENGINES)('update rolled back (%s)', (engine) => {
  let home: string;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    // The site is asked for 2 s, not the default 5 (one setting for update, upgrade, rollback, drill).
    await must(cli(home, ['settings', 'healthWait', '2s']));
  });

  // broken-health's migration creates a table: on MariaDB a DDL that commits at once, so only the
  // rollback's restore of the database can take it away.
  for (const [branch, step, why] of [
    // The migration's own error, not a login the hook could not make.
    ['broken-migration', 'migrate', /migrate hook of .* failed.*no_such_table/],
    ['broken-health', 'health', /health check of .* failed: .* answered 404, expected 200 \(asked for [23] s\)[\s\S]*opsdeck settings healthWait/],
  ] as const) {
    it(`an update that fails at ${step} leaves the instance exactly as before, out of maintenance, healthy, exit 1`, async () => {
      const name = `${step}-dev${engine === 'mysql' ? '-m' : ''}`;
      const i = await addInstance(home, 'lab1', name, 'dev', { engine, appSchema: true });
      await appSettings(home, name, ['--branch', branch], engine);
      appSql(i, "INSERT INTO notes (body) VALUES ('keep me');");
      const files = treeState(i.path);
      const db = dbState(i);

      const r = await cli(home, ['update', name, '--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).toMatch(/rolled back/);

      expect(treeState(i.path)).toEqual(files);
      expect(dbState(i)).toEqual(db);
      const page = await get(i.url);
      expect(page.status).toBe(200);
      expect(page.body).toContain('version v1.0.0');
      const run = JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '1']))).stdout)[0];
      expect(run).toMatchObject({ command: 'update', status: 'rolled-back', failedStep: step });
      expect(JSON.parse((await must(cli(home, ['instance', 'show', name, '--json']))).stdout).maintenanceSince).toBeNull();
    });
  }

  it('settings healthWait refuses a wait over an hour or not a duration, and keeps the one set', async () => {
    for (const [bad, fix] of [
      ['2h', /at most 1h/],
      ['soon', /write it as 10m, 90s/],
    ] as const) {
      const r = await cli(home, ['settings', 'healthWait', bad]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(fix);
    }
    expect(JSON.parse((await must(cli(home, ['settings', '--json']))).stdout).healthWait).toBe('2s');
  });
});
