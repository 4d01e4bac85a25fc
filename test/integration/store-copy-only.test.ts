import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { addInstance, cli, homeWithHosts, must } from '../helpers.js';
import { copyOnlySuite } from './copy-only.js';

// Issue 13 item 8: a backup the store's retention drops while a copy store keeps it by its own
// stays in the inventory, held by the copies only, and restores like any backup from there; it goes
// once the copies drop it too. The same tests on a team inventory: store-copy-only-team.test.ts.

copyOnlySuite('sqlite');

describe('a copy store that cannot be read', () => {
  it('prune never marks a backup copy-only on a guess: the one no readable copy holds stays in the store, said, and the run fails', async () => {
    const home = await homeWithHosts(['lab1']);
    // A copy store restic cannot open (its config is not restic's): neither holds nor drops anything.
    const broken = mkdtempSync(join(tmpdir(), 'opsdeck-broken-copy-'));
    writeFileSync(join(broken, 'config'), 'not a restic repository\n');
    const prod = await addInstance(home, 'lab1', 'cu-prod', 'dev');
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push(JSON.parse((await must(cli(home, ['backup', prod.name, '--json']))).stdout).id);
    const inv = new Inventory(home);
    try {
      inv.db.prepare('UPDATE backups SET created_at = ? WHERE id = ?').run(new Date(Date.now() - 86_400_000).toISOString(), ids[0]);
    } finally {
      inv.close();
    }
    await must(cli(home, ['env', 'set', 'dev', '--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '0', '--keep-yearly', '0']));
    await must(cli(home, ['settings', 'storeCopies', broken]));
    const dry = await must(cli(home, ['backups', 'prune', '--dry-run']));
    expect(dry.stdout).toMatch(new RegExp(`would keep manual backup ${ids[0]} of cu-prod \\(.*\\) in the store for now: ${broken} cannot be read`));
    const r = await cli(home, ['backups', 'prune', '--yes']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`${broken} could not be read: ${ids[0]} stay in the store until a prune can read it`);
    // Still an ordinary backup, in the store, and it verifies.
    const listed = JSON.parse((await must(cli(home, ['backups', prod.name, '--json']))).stdout) as { id: string; copiesOnly: boolean }[];
    expect(listed.map((b) => [b.id, b.copiesOnly])).toEqual([
      [ids[1], false],
      [ids[0], false],
    ]);
    await must(cli(home, ['settings', 'storeCopies', '']));
    expect(JSON.parse((await must(cli(home, ['backups', 'verify', ids[0], '--json']))).stdout)).toMatchObject({ verified: true });
  });
});
