import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { addInstance, appSql, cli, dbStateOf, ENGINES, homeWithHosts, must, treeState } from '../helpers.js';

/** Every file under dir, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

describe.each(ENGINES)('restore drill (%s)', (engine) => {
  it('restores the newest backup onto a scratch instance, checks it, and reports RTO and RPO', async () => {
    const home = await homeWithHosts(['lab1', 'lab2']);
    const m = engine === 'mysql' ? '-m' : '';
    const prod = await addInstance(home, 'lab1', `dr-prod${m}`, 'prod', { version: 'v2.0.0', engine, appSchema: true });
    const scratch = await addInstance(home, 'lab2', `dr-scratch${m}`, 'dev', { engine, appSchema: true });
    appSql(prod, "INSERT INTO notes (body) VALUES ('kept by the drill'), ('and this');");
    const b = JSON.parse((await must(cli(home, ['backup', prod.name, '--json']))).stdout);
    // The backup was taken five hours ago: that is the data a real restore would lose (RPO).
    const takenAt = Date.now() - 5 * 3_600_000;
    const inv = new Inventory(home);
    inv.db.prepare('UPDATE backups SET created_at = ? WHERE id = ?').run(new Date(takenAt).toISOString(), b.id);
    inv.close();

    const t0 = Date.now();
    const r = await cli(home, ['drill', prod.name, '--target', scratch.name, '--yes', '--json']);
    const wallMs = Date.now() - t0;
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep).toMatchObject({ source: prod.name, target: scratch.name, backup: b.id, ok: true });
    const steps = rep.steps as { title: string; ms: number; ok: boolean }[];
    expect(steps.map((s) => s.ok)).not.toContain(false);
    expect(steps[0].title).toBe('Verify the backup against its manifest');
    const answered = steps.findIndex((s) => s.title === 'Check the restored target answers and matches the backup');
    expect(answered).toBeGreaterThan(1);
    // RTO is the restore up to a verified, answering target: the steps after the verification up
    // to that check (the old tree's removal comes after), within the drill's time less the verification.
    const restoreMs = steps.slice(1, answered + 1).reduce((n, s) => n + s.ms, 0);
    expect(rep.rtoSeconds).toBeGreaterThanOrEqual(Math.round(restoreMs / 1000));
    expect(rep.rtoSeconds).toBeLessThanOrEqual(Math.round((wallMs - steps[0].ms) / 1000));
    // RPO is the backup's age when the drill started.
    expect(rep.rpoSeconds).toBeGreaterThanOrEqual(Math.round((t0 - takenAt) / 1000));
    expect(rep.rpoSeconds).toBeLessThanOrEqual(Math.round((t0 + wallMs - takenAt) / 1000));
    const md = readFileSync(rep.file, 'utf8');
    expect(md).toContain(`RTO (restore to a verified, answering target): ${rep.rtoSeconds} s`);
    expect(md).toContain('RPO (age of the data restored): 5.0 h');
    expect(await fetch(scratch.url).then((x) => x.text())).toContain('version v2.0.0');
    // The scratch holds the source's database, but for the names that are the scratch's own.
    expect(dbStateOf(scratch)).toEqual(dbStateOf(prod));
    expect(JSON.parse((await must(cli(home, ['drills', '--json']))).stdout)[0].id).toBe(rep.id);
  });
});

describe('restore drill', () => {
  it('refuses a protected target, and fails at verification when the stored backup was tampered with', async () => {
    const home = await homeWithHosts(['lab1', 'lab2']);
    await addInstance(home, 'lab1', 'dt-prod', 'prod');
    const scratch = await addInstance(home, 'lab2', 'dt-scratch', 'dev');
    await must(cli(home, ['backup', 'dt-prod']));
    const p = await cli(home, ['drill', 'dt-scratch', '--target', 'dt-prod', '--yes']);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/protected environment: a drill never restores onto one/);

    // Damage the store: flip bytes in the middle of every data pack.
    for (const f of files(join(home, 'store', 'data'))) {
      const buf = readFileSync(f);
      const mid = Math.floor(buf.length / 2);
      for (let i = 0; i < 16 && mid + i < buf.length; i++) buf[mid + i] ^= 0xff;
      writeFileSync(f, buf);
      expect(statSync(f).size).toBe(buf.length);
    }
    const before = treeState(scratch.path);
    const r = await cli(home, ['drill', 'dt-prod', '--target', 'dt-scratch', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Verify the backup against its manifest failed/);
    expect(treeState(scratch.path)).toEqual(before);
    // The failed drill is kept and reported, with what failed and no recovery time.
    const [failed] = JSON.parse((await must(cli(home, ['drills', 'dt-prod', '--json']))).stdout);
    expect(failed).toMatchObject({ source: 'dt-prod', target: 'dt-scratch', ok: false, rtoSeconds: -1, error: expect.stringMatching(/^Verify the backup against its manifest failed/) });
    expect(r.stderr).toContain(failed.file);
    const md = readFileSync(failed.file, 'utf8');
    expect(md).toMatch(/Result: \*\*FAILED\*\*/);
    expect(md).toMatch(/\| Verify the backup against its manifest \| [\d.]+ s \| FAILED \|/);
    expect((await cli(home, ['drills'])).stdout).toMatch(/dt-prod\s+dt-scratch\s+FAILED\s+-/);
  });
});
