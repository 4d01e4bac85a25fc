import { execa } from 'execa';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { addInstance, cli, homeWithHosts, must } from '../helpers.js';

async function snapshotIds(home: string): Promise<string[]> {
  const r = await execa('restic', ['snapshots', '--json'], { env: { RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass') } });
  return (JSON.parse(r.stdout) as { short_id: string; id: string }[]).map((s) => s.id);
}

describe('backups prune', () => {
  it('drops what the policy does not keep from the store and the inventory, never a snapshot still in use', async () => {
    const home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'prune-dev', 'dev');
    const a = JSON.parse((await must(cli(home, ['backup', 'prune-dev', '--json']))).stdout);
    // A restore takes a safety backup; the tree is unchanged, so it shares a's code snapshot.
    const restored = JSON.parse((await must(cli(home, ['restore', 'prune-dev', '--yes', '--json']))).stdout);
    const b = JSON.parse((await must(cli(home, ['backup', 'prune-dev', '--json']))).stdout);
    // History: a was taken three days ago.
    const inv = new Inventory(home);
    inv.db.prepare('UPDATE backups SET created_at = ? WHERE id = ?').run(new Date(Date.now() - 3 * 86_400_000).toISOString(), a.id);
    const safety = inv.getBackup(restored.safetyBackup)!;
    inv.close();
    expect(safety.manifest.code!.snapshot).toBe(a.manifest.code.snapshot);
    const before = await snapshotIds(home);

    const dry = await must(cli(home, ['backups', 'prune', '--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '0', '--keep-yearly', '0', '--dry-run']));
    expect(dry.stdout).toContain(`would drop manual backup ${a.id}`);
    expect(await snapshotIds(home)).toEqual(before);

    const r = await cli(home, ['backups', 'prune', '--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '0', '--keep-yearly', '0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.removed.map((x: any) => x.id)).toEqual([a.id]);
    expect(out.kept.map((x: any) => x.id).sort()).toEqual([b.id, safety.id].sort());
    const after = await snapshotIds(home);
    // a's database snapshot is gone; its code snapshot stays, the safety backup uses it.
    expect(after.some((id) => id.startsWith(a.manifest.db.snapshot))).toBe(false);
    expect(after.some((id) => id.startsWith(a.manifest.code.snapshot))).toBe(true);
    expect(
      JSON.parse((await must(cli(home, ['backups', 'prune-dev', '--json']))).stdout)
        .map((x: any) => x.id)
        .sort(),
    ).toEqual([b.id, safety.id].sort());
    await must(cli(home, ['backups', 'verify', safety.id]));
    await must(cli(home, ['backups', 'verify', b.id]));
  });

  it('uses the policy set on the environment', async () => {
    const home = await homeWithHosts([]);
    const r = await must(cli(home, ['env', 'set', 'dev', '--keep-daily', '14', '--json']));
    expect(JSON.parse(r.stdout).retention).toEqual({ daily: 14, weekly: 2, monthly: 6, yearly: 1 });
    expect((await cli(home, ['env', 'set', 'dev', '--keep-weekly', 'many'])).code).toBe(2);
  });
});
