import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { addInstance, appSql, cli, dbStateOf, homeWithHosts, must, treeState } from '../helpers.js';

// Issue 13 item 8: a second store filled with restic copy after each backup (and by backups copy),
// which restores and drills read when the first store is lost; pinned backups that prune never drops.

describe('copy stores', () => {
  let home: string;
  let offsite: string;
  let prod: Awaited<ReturnType<typeof addInstance>>;
  let scratch: Awaited<ReturnType<typeof addInstance>>;
  let backupId: string;
  let tree: Record<string, string>;
  let db: string;

  beforeAll(async () => {
    home = await homeWithHosts(['lab1', 'lab2']);
    offsite = join(mkdtempSync(join(tmpdir(), 'opsdeck-offsite-')), 'restic');
    await must(cli(home, ['settings', 'storeCopies', offsite]));
    prod = await addInstance(home, 'lab1', 'cp-prod', 'dev', { appSchema: true });
    scratch = await addInstance(home, 'lab2', 'cp-scratch', 'dev', { appSchema: true });
    appSql(prod, "INSERT INTO notes (body) VALUES ('in the copy too');");
    // The backup's last step copies it.
    const b = await must(cli(home, ['backup', prod.name, '--json']));
    backupId = JSON.parse(b.stdout).id;
    expect(b.stderr).toContain('Copy the backup into the copy stores');
    tree = treeState(prod.path);
    db = dbStateOf(prod);
  });

  it('backups copy finds the copy store holding every backup already', async () => {
    const copied = JSON.parse((await must(cli(home, ['backups', 'copy', '--yes', '--json']))).stdout);
    expect(copied.copies).toEqual([{ repository: offsite, snapshots: 2, ok: true }]);
    // The first store is lost: what follows reads the copy.
    rmSync(join(home, 'store'), { recursive: true, force: true });
    appSql(prod, "DELETE FROM notes; INSERT INTO notes (body) VALUES ('changed after the backup');");
  });

  it('with the first store lost, verify reads the backup back from the copy', async () => {
    const v = JSON.parse((await must(cli(home, ['backups', 'verify', backupId, '--json']))).stdout);
    expect(v).toEqual({ id: backupId, verified: true, problems: [] });
  });

  it('with the first store lost, restore puts the instance back from the copy', async () => {
    const r = await cli(home, ['restore', prod.name, '--backup', backupId, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(treeState(prod.path)).toEqual(tree);
    expect(dbStateOf(prod)).toEqual(db);
  });

  it('with the first store lost, a drill restores the backup from the copy onto a scratch instance', async () => {
    const d = await cli(home, ['drill', prod.name, '--target', scratch.name, '--backup', backupId, '--yes', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ source: prod.name, target: scratch.name, backup: backupId, ok: true });
  });
});

describe('pinned backups', () => {
  it('a pinned backup is never pruned; unpinned, the policy decides again', async () => {
    const home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'pin-prod', 'dev');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(JSON.parse((await must(cli(home, ['backup', 'pin-prod', '--json']))).stdout).id);
    // All three on one day: the policy keeps the newest of that day.
    await must(cli(home, ['backups', 'pin', ids[0], '--why', 'before the 3.0 migration']));
    const pruned = JSON.parse(
      (await must(cli(home, ['backups', 'prune', 'pin-prod', '--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '0', '--keep-yearly', '0', '--yes', '--json']))).stdout,
    );
    expect(pruned.removed.map((x: { id: string }) => x.id)).toEqual([ids[1]]);
    expect(pruned.kept.map((x: { id: string }) => x.id).sort()).toEqual([ids[0], ids[2]].sort());
    const st = JSON.parse((await must(cli(home, ['store', 'status', '--json']))).stdout);
    expect(st.pinned).toEqual([expect.objectContaining({ id: ids[0], why: 'before the 3.0 migration' })]);

    await must(cli(home, ['backups', 'unpin', ids[0]]));
    const again = JSON.parse(
      (await must(cli(home, ['backups', 'prune', 'pin-prod', '--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '0', '--keep-yearly', '0', '--yes', '--json']))).stdout,
    );
    expect(again.removed.map((x: { id: string }) => x.id)).toEqual([ids[0]]);
    const inv = new Inventory(home);
    try {
      expect(inv.listBackups('pin-prod').map((x) => x.id)).toEqual([ids[2]]);
    } finally {
      inv.close();
    }
    const runs = JSON.parse((await must(cli(home, ['runs', '--json']))).stdout) as { command: string }[];
    expect(runs.map((x) => x.command)).toEqual(expect.arrayContaining(['backups pin', 'backups unpin']));
  });
});

describe('a copy store keeps by its own retention', () => {
  it('backups prune drops from the copy what its retention does not keep; the store untouched, a pinned backup kept', async () => {
    const home = await homeWithHosts(['lab1']);
    const offsite = join(mkdtempSync(join(tmpdir(), 'opsdeck-offsite-')), 'restic');
    await must(cli(home, ['settings', 'storeCopies', offsite]));
    await addInstance(home, 'lab1', 'ret-prod', 'dev');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(JSON.parse((await must(cli(home, ['backup', 'ret-prod', '--json']))).stdout).id);
    // Recorded a day apart (oldest first): the store's retention (daily 3 by default) keeps all three.
    const inv = new Inventory(home);
    try {
      ids.forEach((id, i) => inv.db.prepare('UPDATE backups SET created_at = ? WHERE id = ?').run(new Date(Date.now() - (2 - i) * 86_400_000).toISOString(), id));
    } finally {
      inv.close();
    }
    const bad = await cli(home, ['settings', 'storeCopyRetention', '/elsewhere daily=1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('/elsewhere is not a copy store');
    await must(cli(home, ['settings', 'storeCopyRetention', `${offsite} daily=1,weekly=0,monthly=0,yearly=0`]));
    await must(cli(home, ['backups', 'pin', ids[0], '--why', 'before the migration']));
    const env = { RESTIC_REPOSITORY: offsite, RESTIC_PASSWORD_FILE: join(home, 'store.pass') };
    const held = async (repo: string) =>
      (JSON.parse((await execa('restic', ['snapshots', '--json'], { env: { ...env, RESTIC_REPOSITORY: repo } })).stdout) as { tags: string[] }[]).map((s) =>
        s.tags.find((t) => t.startsWith('backup='))!.slice('backup='.length),
      );
    const storeBefore = (await held(join(home, 'store'))).sort();

    // --dry-run lists what would go from the copy, and nothing of the store.
    const dry = await must(cli(home, ['backups', 'prune', '--dry-run']));
    expect(dry.stdout).toMatch(new RegExp(`would drop manual backup ${ids[1]} of ret-prod \\(.*\\) from copy store ${offsite}`));
    expect(dry.stdout.match(/would drop/g)).toHaveLength(1);
    expect(new Set(await held(offsite))).toEqual(new Set(ids));

    const pruned = JSON.parse((await must(cli(home, ['backups', 'prune', '--yes', '--json']))).stdout);
    expect(pruned.removed).toEqual([]);
    expect(pruned.copies).toEqual([
      expect.objectContaining({ repository: offsite, retention: { daily: 1, weekly: 0, monthly: 0, yearly: 0 }, removed: [expect.objectContaining({ id: ids[1], kind: 'manual' })] }),
    ]);
    expect(pruned.copies[0].kept.map((b: { id: string }) => b.id).sort()).toEqual([ids[0], ids[2]].sort());
    // The copy: the middle backup gone, the newest and the pinned one there. The store: as it was.
    expect(new Set(await held(offsite))).toEqual(new Set([ids[0], ids[2]]));
    expect((await held(join(home, 'store'))).sort()).toEqual(storeBefore);
    for (const id of ids) expect(JSON.parse((await must(cli(home, ['backups', 'verify', id, '--json']))).stdout)).toMatchObject({ verified: true });
    // In the audit trail: the copy's retention in the run's parameters, its step done.
    const run = JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '5']))).stdout).find((r: { command: string }) => r.command === 'backups prune');
    expect(run.params.copies).toEqual({ [offsite]: { daily: 1, weekly: 0, monthly: 0, yearly: 0 } });
    expect((await must(cli(home, ['runs', String(run.id)]))).stdout).toMatch(/done\s+Prune the copy store by its own retention/);
  });
});
