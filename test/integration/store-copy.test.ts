import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
