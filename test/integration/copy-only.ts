import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { addInstance, appSql, asLabUser, cli, dbStateOf, homeWithHosts, must, treeState, type Backend } from '../helpers.js';

// Issue 13 item 8: a backup the store's retention drops while a copy store keeps it by its own
// stays in the inventory, held by the copies only, and restores like any backup from there; it goes
// once the copies drop it too. Run by store-copy-only.test.ts (SQLite) and store-copy-only-team.test.ts
// (a team inventory on PostgreSQL).

/** The tests of a backup only the copy stores keep, on one inventory backend (a file per backend: they run side by side). */
export function copyOnlySuite(backend: Backend): void {
  describe(`a backup only the copy stores keep (${backend})`, () => {
    let home: string;
    let offsite: string;
    let prod: Awaited<ReturnType<typeof addInstance>>;
    let scratch: Awaited<ReturnType<typeof addInstance>>;
    const ids: string[] = [];
    const trees: Record<string, string>[] = [];
    const dbs: string[] = [];
    const held = async (repo: string) =>
      new Set(
        (JSON.parse((await execa('restic', ['snapshots', '--json'], { env: { RESTIC_PASSWORD_FILE: join(home, 'store.pass'), RESTIC_REPOSITORY: repo } })).stdout) as { tags: string[] }[]).map((s) =>
          s.tags.find((t) => t.startsWith('backup='))!.slice('backup='.length),
        ),
      );
    const listed = async () => (JSON.parse((await must(cli(home, ['backups', prod.name, '--json']))).stdout) as { id: string; copiesOnly: boolean }[]).map((b) => [b.id, b.copiesOnly]);

    beforeAll(async () => {
      home = await homeWithHosts(['lab1', 'lab2'], backend);
      offsite = join(mkdtempSync(join(tmpdir(), 'opsdeck-offsite-')), 'restic');
      await must(cli(home, ['settings', 'storeCopies', offsite]));
      prod = await addInstance(home, 'lab1', `co-prod-${backend}`, 'dev', { appSchema: true });
      scratch = await addInstance(home, 'lab2', `co-scratch-${backend}`, 'dev', { appSchema: true });
      for (let i = 0; i < 3; i++) {
        appSql(prod, `INSERT INTO notes (body) VALUES ('note ${i}');`);
        asLabUser('sh', ['-c', 'echo "$2" > "$1/release-note.txt"', 'sh', prod.path, `release ${i}`]);
        ids.push(JSON.parse((await must(cli(home, ['backup', prod.name, '--json']))).stdout).id);
        trees.push(treeState(prod.path));
        dbs.push(dbStateOf(prod));
      }
      // Recorded a day apart (oldest first), so a daily tier tells them apart.
      const inv = new Inventory(home);
      try {
        ids.forEach((id, i) => inv.db.prepare('UPDATE backups SET created_at = ? WHERE id = ?').run(new Date(Date.now() - (2 - i) * 86_400_000).toISOString(), id));
      } finally {
        inv.close();
      }
      // The store keeps 1, the copy 3.
      await must(cli(home, ['env', 'set', 'dev', '--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '0', '--keep-yearly', '0']));
      await must(cli(home, ['settings', 'storeCopyRetention', `${offsite} daily=3`]));
    });

    it('--dry-run of prune says which backups would stay as copy-only, and changes nothing', async () => {
      expect(new Set(dbs).size).toBe(3);
      const dry = await must(cli(home, ['backups', 'prune', '--dry-run']));
      for (const id of ids.slice(0, 2))
        expect(dry.stdout).toMatch(new RegExp(`would drop manual backup ${id} of ${prod.name} \\(.*\\) from the store; it would stay as copy-only \\(held by ${offsite}\\)`));
      expect(dry.stdout).toContain(`would keep 1 backups: ${ids[2]}`);
      expect(await listed()).toEqual([...ids].reverse().map((id) => [id, false]));
    });

    it('prune drops them from the store; the inventory lists them as held by the copy only', async () => {
      const pruned = JSON.parse((await must(cli(home, ['backups', 'prune', '--yes', '--json']))).stdout);
      expect(pruned.removed).toEqual([]);
      expect(pruned.kept.map((b: { id: string }) => b.id)).toEqual([ids[2]]);
      expect(pruned.copiesOnly.map((b: { id: string; copies: string[] }) => [b.id, b.copies]).sort()).toEqual([
        [ids[0], [offsite]],
        [ids[1], [offsite]],
      ]);
      expect(await listed()).toEqual([
        [ids[2], false],
        [ids[1], true],
        [ids[0], true],
      ]);
      expect((await must(cli(home, ['backups', prod.name]))).stdout).toMatch(new RegExp(`${ids[0]} .* copies only`));
      expect(await held(join(home, 'store'))).toEqual(new Set([ids[2]]));
      expect([...(await held(offsite))].filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
    });

    it('verify and export read a copy-only backup from the copy', async () => {
      expect(JSON.parse((await must(cli(home, ['backups', 'verify', ids[0], '--json']))).stdout)).toEqual({ id: ids[0], verified: true, problems: [] });
      const tar = join(mkdtempSync(join(tmpdir(), 'opsdeck-export-')), 'old.tar');
      await must(cli(home, ['backups', 'export', ids[1], tar]));
      expect((await execa('tar', ['-tf', tar])).stdout.split('\n').sort()).toEqual(['code.tar', 'db.sql', 'manifest.json']);
    });

    it('a drill restores a copy-only backup onto a scratch instance', async () => {
      const d = await cli(home, ['drill', prod.name, '--target', scratch.name, '--backup', ids[1], '--yes', '--json']);
      expect(d.code, d.stderr).toBe(0);
      expect(JSON.parse(d.stdout)).toMatchObject({ source: prod.name, target: scratch.name, backup: ids[1], ok: true });
      expect(dbStateOf(scratch)).toEqual(dbs[1]);
    });

    it('restore puts the instance back exactly as the copy-only backup has it', async () => {
      const r = await cli(home, ['restore', prod.name, '--backup', ids[0], '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(treeState(prod.path)).toEqual(trees[0]);
      expect(dbStateOf(prod)).toEqual(dbs[0]);
    });

    it('a backup of the restored tree stores it anew: the copy-only backup has no snapshot in the store to reuse', async () => {
      const next = await must(cli(home, ['backup', prod.name, '--json']));
      expect(next.stderr).not.toMatch(/snapshot is reused/);
      ids.push(JSON.parse(next.stdout).id);
      expect(await held(join(home, 'store'))).toContain(ids[3]);
    });

    it('with the copy keeping less, prune drops them from the copy and the inventory; the store never forgets them again', async () => {
      await must(cli(home, ['settings', 'storeCopyRetention', `${offsite} daily=1`]));
      const dry = await must(cli(home, ['backups', 'prune', '--dry-run']));
      for (const id of ids.slice(0, 2)) expect(dry.stdout).toMatch(new RegExp(`would drop copy-only manual backup ${id} of ${prod.name} \\(.*\\) from the inventory: no copy store keeps it`));
      const again = JSON.parse((await must(cli(home, ['backups', 'prune', '--yes', '--json']))).stdout);
      // The store drops only the backup the new one replaces.
      expect(again.removed.map((b: { id: string }) => b.id)).toEqual([ids[2]]);
      expect(again.copiesOnly).toEqual([]);
      expect(again.copiesOnlyDropped.map((b: { id: string }) => b.id).sort()).toEqual([ids[0], ids[1]].sort());
      const left = (await listed()).map(([id]) => id);
      expect(left).toContain(ids[3]);
      for (const id of ids.slice(0, 3)) expect(left).not.toContain(id);
      // (The restore's safety backup reused the tree snapshot ids[2] took: both stores keep that one.)
      const copyHolds = await held(offsite);
      for (const id of ids.slice(0, 2)) expect(copyHolds.has(id)).toBe(false);
      expect(copyHolds.has(ids[3])).toBe(true);
      expect((await cli(home, ['backups', 'verify', ids[0]])).code).toBe(2);
    });
  });
}
