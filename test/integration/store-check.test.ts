import { openSync, readdirSync, readSync, statSync, writeSync, closeSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addInstance, cli, homeWithHosts, must } from '../helpers.js';

// Issue 13 item 7: integrity checks of the store with a time limit. Each run reads one part of the
// store's data (restic check --read-data-subset n/t), the next run the next part, so a cycle of t runs
// reads the whole store once; a damaged pack is found within its cycle, recorded, and alerted.

/** Every pack file of a local restic store, largest first. */
function packs(store: string): string[] {
  const data = join(store, 'data');
  return readdirSync(data)
    .flatMap((d) => readdirSync(join(data, d)).map((f) => join(data, d, f)))
    .sort((a, b) => statSync(b).size - statSync(a).size);
}

/** Flips bytes in the middle of a file, as a failing disk would. */
function corrupt(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    const at = Math.floor(statSync(file).size / 2);
    const buf = Buffer.alloc(64);
    readSync(fd, buf, 0, buf.length, at);
    for (let i = 0; i < buf.length; i++) buf[i] ^= 0xff;
    writeSync(fd, buf, 0, buf.length, at);
  } finally {
    closeSync(fd);
  }
}

interface Status {
  lastFullCycle: string | null;
  lastCheck: { part: number; parts: number; ok: boolean; error: string | null } | null;
}
const status = async (home: string): Promise<Status> => JSON.parse((await must(cli(home, ['store', 'status', '--json']))).stdout);

describe('store integrity checks', () => {
  const hooks: { event: string; command: string; error: string }[] = [];
  let http: Server;
  let home: string;

  beforeAll(async () => {
    http = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hooks.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'chk-prod', 'dev', { pagila: true });
    await must(cli(home, ['backup', 'chk-prod']));
    await must(cli(home, ['notify', 'webhook', '--url', `http://127.0.0.1:${(http.address() as { port: number }).port}/hook`], { OPSDECK_WEBHOOK_SECRET: 'x' }));
  });
  afterAll(async () => {
    await new Promise((r) => http.close(r));
  });

  it('auto sizes the part to the time limit: a small store is read whole in one run', async () => {
    const r = JSON.parse((await must(cli(home, ['backups', 'check', '--read-data-subset', 'auto', '--max-duration', '10m', '--yes', '--json']))).stdout);
    expect(r).toMatchObject({ part: 1, parts: 1, ok: true, error: null });
    expect(r.lastFullCycle).toEqual(expect.any(String));
    expect((await status(home)).lastFullCycle).toBe(r.lastFullCycle);
  });

  it('a cycle of three runs reads one part each; the store counts as read whole only after the third', async () => {
    const before = (await status(home)).lastFullCycle;
    const parts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = JSON.parse((await must(cli(home, ['backups', 'check', '--read-data-subset', '3', '--yes', '--json']))).stdout);
      parts.push(r.part);
      expect(r.parts).toBe(3);
      if (i < 2) expect(r.lastFullCycle).toBe(before);
      else expect(r.lastFullCycle > before!).toBe(true);
    }
    expect(parts).toEqual([1, 2, 3]);
    const text = (await must(cli(home, ['store', 'status']))).stdout;
    expect(text).toMatch(/read whole\s+\d{4}-\d\d-\d\dT/);
    expect(text).toMatch(/last check\s+.*part 3\/3 sound/);
  });

  it('a damaged pack is found within its cycle: that run exits 1, is recorded and alerts; the cycle does not count as read whole', async () => {
    const readWhole = (await status(home)).lastFullCycle;
    corrupt(packs(join(home, 'store'))[0]);
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await cli(home, ['backups', 'check', '--read-data-subset', '3', '--yes']));
    const failed = runs.filter((r) => r.code !== 0);
    expect(failed, runs.map((r) => r.stderr).join('\n')).toHaveLength(1);
    expect(failed[0].code).toBe(1);
    expect(failed[0].stderr).toMatch(/the store .* is damaged \(part [123]\/3\)/);
    expect(hooks).toEqual([expect.objectContaining({ event: 'run-failed', command: 'backups check --read-data-subset' })]);
    expect(hooks[0].error).toMatch(/is damaged/);
    const s = await status(home);
    expect(s.lastFullCycle).toBe(readWhole);
    expect(s.lastCheck).toMatchObject({ part: 3, parts: 3 });
  });

  it('refuses what it cannot do, before anything runs', async () => {
    const bad = await cli(home, ['backups', 'check', '--read-data-subset', '1/3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid --read-data-subset "1/3"');
    const dur = await cli(home, ['backups', 'check', '--read-data-subset', 'auto', '--max-duration', 'soon']);
    expect(dur.code).toBe(2);
    expect(dur.stderr).toContain('invalid duration "soon"');
    const dry = await must(cli(home, ['backups', 'check', '--read-data-subset', 'auto', '--dry-run']));
    expect(dry.stdout).toContain('would check');
  });
});
