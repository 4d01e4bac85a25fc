import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLabInstance } from '../../fixtures/lab.js';
import { cli, homeWithHosts, lab, must } from '../helpers.js';
import { CuttingProxy } from '../../fixtures/proxy.js';

// The connection to the host cut mid-backup, through the test's proxy; cut mid-restore in
// failures-restore-cut.test.ts. The other failures are in failures-load.test.ts and
// failures-refusals.test.ts: split so that three workers run them side by side.

async function storeSnapshots(home: string): Promise<unknown[]> {
  if (!existsSync(join(home, 'store', 'config'))) return [];
  const r = await execa('restic', ['snapshots', '--json'], { env: { RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass') } });
  return JSON.parse(r.stdout);
}

describe('the SSH connection cut mid-backup', () => {
  const proxy = new CuttingProxy({ host: lab().hosts[0].address, port: lab().hosts[0].port });
  let home: string;

  beforeAll(async () => {
    await proxy.start();
    home = await homeWithHosts([]);
    const l = lab();
    await must(cli(home, ['host', 'add', 'flaky', '--address', '127.0.0.1', '--port', String(proxy.port), '--user', l.user, '--key', l.keyFile, '--fingerprint', l.hosts[0].fingerprint]));
    const i = makeLabInstance(l, 'lab1', 'cut-prod', { pagila: true });
    await must(cli(home, ['instance', 'add', 'cut-prod', '--host', 'flaky', '--path', i.path, '--env', 'dev', '--db', i.dbUrl], { OPSDECK_DB_PASSWORD: i.password }));
  });
  afterAll(() => proxy.stop());

  it('fails with a clear message, records no backup, and the next backup succeeds', async () => {
    // The code tree is ~100 KB, the dump 3.4 MB: the cut lands inside the database stream.
    proxy.cutAfter = 1_000_000;
    const r = await cli(home, ['backup', 'cut-prod']);
    expect(proxy.cuts).toBeGreaterThan(0);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/connection to host flaky was lost/);
    expect(JSON.parse((await cli(home, ['backups', 'cut-prod', '--json'])).stdout)).toEqual([]);
    // Not even the code stream that had completed is left in the store.
    expect(await storeSnapshots(home)).toEqual([]);

    proxy.cutAfter = undefined;
    const ok = await cli(home, ['backup', 'cut-prod', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const list = JSON.parse((await cli(home, ['backups', 'cut-prod', '--json'])).stdout);
    expect(list.map((b: any) => b.id)).toEqual([JSON.parse(ok.stdout).id]);
    expect((await storeSnapshots(home)).length).toBe(2);
    const runs = JSON.parse((await cli(home, ['runs', '--json'])).stdout);
    expect(runs.map((x: any) => x.status).slice(0, 2)).toEqual(['ok', 'rolled-back']);
  });
});
