import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addInstance, cli, homeWithHosts, must, treeState } from '../helpers.js';

/** Every file under dir, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('restore drill', () => {
  it('restores the newest backup onto a scratch instance, checks it, and reports RTO and RPO', async () => {
    const home = await homeWithHosts(['lab1', 'lab2']);
    await addInstance(home, 'lab1', 'dr-prod', 'prod', { version: 'v2.0.0' });
    const scratch = await addInstance(home, 'lab2', 'dr-scratch', 'dev');
    const b = JSON.parse((await must(cli(home, ['backup', 'dr-prod', '--json']))).stdout);

    const r = await cli(home, ['drill', 'dr-prod', '--target', 'dr-scratch', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep).toMatchObject({ source: 'dr-prod', target: 'dr-scratch', backup: b.id, ok: true });
    expect(rep.rtoSeconds).toBeGreaterThanOrEqual(0);
    expect(rep.rpoSeconds).toBeGreaterThanOrEqual(0);
    expect(rep.steps.map((s: any) => s.ok)).not.toContain(false);
    const md = readFileSync(rep.file, 'utf8');
    expect(md).toMatch(/RTO \(restore to a verified, answering target\): \d+ s/);
    expect(md).toMatch(/RPO \(age of the data restored\): \d+\.\d h/);
    expect((await fetch(scratch.url).then((x) => x.text()))).toContain('version v2.0.0');
    expect(JSON.parse((await must(cli(home, ['drills', '--json']))).stdout)[0].id).toBe(rep.id);
  });

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
