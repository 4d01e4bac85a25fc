import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { BIN, addInstance, asLabUser, cli, dbState, homeWithHosts, lab, must, sql, treeState, until } from '../helpers.js';

// What the README promises and no other test checked (issue 10, item 6), each against the real lab
// through bin/opsdeck, as a user would see it.

const l = lab();
const lastRun = async (home: string, instance: string) => JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '1', '--instance', instance]))).stdout)[0];

// ctrl-c during an update and the safety backups' retention; the other promises are in
// promises-cli.test.ts (split so that workers run them side by side).

describe('ctrl-c during an update', () => {
  const root = l.hosts[0].root;
  // The migrate hook says when it has migrated, then waits for the test (as a long migration would).
  const migrated = join(root, 'pr-ctrlc.migrated');
  const go = join(root, 'pr-ctrlc.go');
  let home: string;

  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
  });
  afterAll(() => {
    // A hook the cancel did not stop must not wait forever.
    asLabUser('touch', [go]);
  });

  it('SIGINT while the migration runs: undone, exit 1 rolled back, tree and database exactly as before, out of maintenance', async () => {
    const i = await addInstance(home, 'lab1', 'pr-ctrlc', 'dev');
    asLabUser('rm', ['-f', migrated, go]);
    const hook = `migrate=sh -c "bin/migrate && touch ${migrated} && while [ ! -e ${go} ]; do sleep 0.1; done"`;
    await must(cli(home, ['instance', 'set', 'pr-ctrlc', '--branch', 'main', '--hook', hook, '--health-text', 'Sample app']));
    sql(i.db, `SET ROLE ${i.role}; INSERT INTO notes (body) VALUES ('before the update');`);
    const files = treeState(i.path);
    const db = dbState(i.db);

    const proc = execa(BIN, ['--home', home, 'update', 'pr-ctrlc', '--yes'], { reject: false, env: { OPSDECK_KNOWN_HOSTS: '' }, stdin: 'ignore', timeout: 120_000 });
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    // The new code is checked out, the site in maintenance, the database migrated: ctrl-c now.
    await until('the migration', () => existsSync(migrated));
    expect(sql(i.db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tags'").trim()).toBe('1');
    process.kill(proc.pid!, 'SIGINT');
    const r = await proc;

    expect(r.exitCode).toBe(1);
    expect(err).toMatch(/cancelled by SIGINT.*rolled back/);
    expect(treeState(i.path)).toEqual(files);
    expect(dbState(i.db)).toEqual(db);
    const page = await fetch(i.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('version v1.0.0');
    expect(await lastRun(home, 'pr-ctrlc')).toMatchObject({ command: 'update', status: 'rolled-back', failedStep: 'migrate' });
    expect(JSON.parse((await must(cli(home, ['instance', 'show', 'pr-ctrlc', '--json']))).stdout).maintenanceSince).toBeNull();
  });
});

describe('backups prune keeps safety backups 7 days', () => {
  it('keeps the newest safety backup and those younger than 7 days, drops older ones', async () => {
    const home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'pr-safety', 'dev');
    const manual = JSON.parse((await must(cli(home, ['backup', 'pr-safety', '--json']))).stdout);
    // Each restore takes a safety backup of the instance first.
    const safety: string[] = [];
    for (let n = 0; n < 3; n++) safety.push(JSON.parse((await must(cli(home, ['restore', 'pr-safety', '--yes', '--json']))).stdout).safetyBackup);
    const [oldest, middle, newest] = safety;
    const age = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
    const setAges = (ages: Record<string, number>) => {
      const inv = new Inventory(home);
      for (const [id, days] of Object.entries(ages)) inv.db.prepare('UPDATE backups SET created_at = ? WHERE id = ?').run(age(days), id);
      inv.close();
    };
    const ids = async () => (JSON.parse((await must(cli(home, ['backups', 'pr-safety', '--json']))).stdout) as { id: string }[]).map((b) => b.id).sort();
    const snapshots = async () =>
      (
        JSON.parse((await execa('restic', ['snapshots', '--json'], { env: { RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass') } })).stdout) as { id: string }[]
      ).map((s) => s.id);
    const oldDb = new Inventory(home);
    const oldestDbSnapshot = oldDb.getBackup(oldest)!.manifest.db!.snapshot;
    oldDb.close();
    // The manual backup is new and the policy keeps it: only safety backups are at stake.
    const prune = async () => {
      const r = await cli(home, ['backups', 'prune', 'pr-safety', '--yes', '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { removed: { id: string }[]; kept: { id: string }[] };
    };

    setAges({ [oldest]: 8, [middle]: 6 });
    const first = await prune();
    expect(first.removed.map((b) => b.id)).toEqual([oldest]);
    expect(await ids()).toEqual([manual.id, middle, newest].sort());
    expect((await snapshots()).some((s) => s.startsWith(oldestDbSnapshot))).toBe(false);

    // Past 7 days, the newest safety backup is still kept: it is the instance's state before its last restore.
    setAges({ [middle]: 20, [newest]: 10 });
    const second = await prune();
    expect(second.removed.map((b) => b.id)).toEqual([middle]);
    expect(await ids()).toEqual([manual.id, newest].sort());
    await must(cli(home, ['backups', 'verify', newest]));
  });
});
