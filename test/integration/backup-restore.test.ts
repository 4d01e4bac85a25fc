import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pagilaAvailable } from '../../fixtures/lab.js';
import { addInstance, asLabUser, cli, local, dbState, homeWithHosts, must, sql, treeState } from '../helpers.js';

describe('backup then restore of an instance with the pagila database', () => {
  let home: string;
  let inst: Awaited<ReturnType<typeof addInstance>>;

  beforeAll(async () => {
    expect(pagilaAvailable()).toBe(true);
    home = await homeWithHosts(['lab1']);
    inst = await addInstance(home, 'lab1', 'br-prod', 'prod', { pagila: true });
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
    const dbBefore = dbState(inst.db);
    const b = JSON.parse((await must(cli(home, ['backup', 'br-prod', '--json']))).stdout);
    expect(b.id).toMatch(/^\d{8}T\d{6}-[0-9a-f]{4}$/);
    expect(b.manifest.db.tables['public.actor']).toBe(200);
    expect(b.manifest.db.tables['public.rental']).toBe(16044);

    // Destroy: change and drop tables, delete and change files, add files and tables.
    sql(
      inst.db,
      `SET ROLE ${inst.role}; DELETE FROM public.payment_p2022_01; UPDATE public.actor SET first_name = 'X'; DROP TABLE public.film_category CASCADE; CREATE TABLE public.intruder (x int); INSERT INTO public.intruder VALUES (1); SELECT setval('public.actor_actor_id_seq', 9999); CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1';`,
    );
    asLabUser('sh', ['-c', 'cd "$1" && rm -f VERSION && echo changed > index.html && echo new > added.txt && mkdir newdir && chmod 644 data/private.txt && rm data/home.html', 'sh', inst.path]);
    expect(treeState(inst.path)).not.toEqual(filesBefore);
    expect(dbState(inst.db)).not.toEqual(dbBefore);

    const r = await cli(home, ['restore', 'br-prod', '--yes', '--allow-protected', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.backup).toBe(b.id);
    expect(out.safetyBackup).toBeTruthy();

    expect(treeState(inst.path)).toEqual(filesBefore);
    expect(dbState(inst.db)).toEqual(dbBefore);
    // Nothing left beside the instance (the previous tree is deleted in the background on the host).
    expect(existsSync(inst.path + '.opsdeck-incoming')).toBe(false);
    for (let i = 0; i < 100 && existsSync(inst.path + '.opsdeck-previous'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(inst.path + '.opsdeck-previous')).toBe(false);
    // It was done as the app's own role, which is no superuser.
    expect(sql(inst.db, `SELECT rolsuper FROM pg_roles WHERE rolname = '${inst.role}'`).trim()).toBe('f');
  });

  it('lists, verifies and exports the backup', async () => {
    const list = JSON.parse((await must(cli(home, ['backups', 'br-prod', '--json']))).stdout);
    const manual = list.find((b: any) => b.kind === 'manual');
    expect(manual).toMatchObject({ instance: 'br-prod', verified: false });
    expect(list.some((b: any) => b.kind === 'safety')).toBe(true);
    const v = await cli(home, ['backups', 'verify', manual.id, '--json']);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ verified: true, problems: [] });
    expect(JSON.parse((await must(cli(home, ['backups', 'br-prod', '--json']))).stdout).find((b: any) => b.id === manual.id).verified).toBe(true);

    const file = join(home, 'export.tar');
    await must(cli(home, ['backups', 'export', manual.id, file]));
    const listing = local('tar', ['-tvf', file]);
    expect(listing).toMatch(/manifest\.json/);
    expect(listing).toMatch(/code\.tar/);
    expect(listing).toMatch(/db\.sql/);
    const manifest = JSON.parse(local('tar', ['-xOf', file, 'manifest.json']));
    expect(manifest.id).toBe(manual.id);
    expect(local('tar', ['-xOf', file, 'db.sql'])).toContain('COPY public.actor');
    expect(readFileSync(file).length).toBeGreaterThan(manifest.manifest.db.bytes);
  });

  it('refuses without --yes when there is no terminal, and changes nothing', async () => {
    const before = treeState(inst.path);
    const r = await cli(home, ['restore', 'br-prod']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--yes/);
    const p = await cli(home, ['restore', 'br-prod', '--yes']);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/protected/);
    expect(treeState(inst.path)).toEqual(before);
  });

  it('prints the plan with --dry-run and changes nothing', async () => {
    const before = treeState(inst.path);
    const runsBefore = JSON.parse((await must(cli(home, ['runs', '--json']))).stdout).length;
    const r = await must(cli(home, ['restore', 'br-prod', '--dry-run']));
    expect(r.stderr).toMatch(/Take a safety backup/);
    expect(r.stdout).toMatch(/would restore backup/);
    expect(treeState(inst.path)).toEqual(before);
    expect(JSON.parse((await must(cli(home, ['runs', '--json']))).stdout).length).toBe(runsBefore);
  });
});
