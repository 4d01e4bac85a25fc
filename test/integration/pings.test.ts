import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asLabUser } from '../../fixtures/lab.js';
import { addInstance, cli, homeWithHosts, must } from '../helpers.js';

// Issue 13 item 6: every unattended run pings a Healthchecks.io-style monitor, URL/start, then URL
// or URL/fail with the run's summary as the body, so a cron job that never ran or failed is noticed.

describe('monitoring pings', () => {
  const pings: { path: string; body: string }[] = [];
  let server: Server;
  let port = 0;
  let home: string;
  let inst: Awaited<ReturnType<typeof addInstance>>;
  const check = '/ping/5f2c9a';

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        pings.push({ path: req.url ?? '', body });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    home = await homeWithHosts(['lab2']);
    inst = await addInstance(home, 'lab2', 'ping-prod', 'dev');
    await must(cli(home, ['notify', 'ping', '--url', `http://127.0.0.1:${port}${check}`]));
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('keeps the ping URL, shows only its host, and records the change', async () => {
    const list = JSON.parse((await must(cli(home, ['notify', 'list', '--json']))).stdout);
    expect(list).toEqual([expect.objectContaining({ kind: 'ping', url: `http://127.0.0.1:${port}/...` })]);
    const runs = JSON.parse((await must(cli(home, ['runs', '--json']))).stdout) as { command: string; params: Record<string, unknown> }[];
    const change = runs.find((r) => r.command === 'notify ping')!;
    expect(change.params).toEqual({ kind: 'ping', urlHost: `127.0.0.1:${port}` });
    expect(pings).toEqual([]);
  });

  it('an unattended backup that succeeds pings start, then success with its summary', async () => {
    pings.length = 0;
    const r = await must(cli(home, ['backup', inst.name, '--yes']));
    expect(pings.map((p) => p.path)).toEqual([`${check}/start`, check]);
    expect(pings[0].body).toBe('backup started');
    // The summary the run printed.
    expect(pings[1].body).toBe(r.stdout.trim());
    expect(pings[1].body).toMatch(/ping-prod/);
  });

  it('an unattended backup that fails pings start, then fail with why', async () => {
    pings.length = 0;
    asLabUser('mv', [inst.path, `${inst.path}.away`]);
    try {
      const r = await cli(home, ['backup', inst.name, '--yes']);
      expect(r.code).toBe(1);
      expect(pings.map((p) => p.path)).toEqual([`${check}/start`, `${check}/fail`]);
      expect(pings[1].body).toMatch(/code tree .* cannot be read on host lab2/);
    } finally {
      asLabUser('mv', [`${inst.path}.away`, inst.path]);
    }
  });

  it('a dry run, and a command that only reads, ping nothing', async () => {
    pings.length = 0;
    await must(cli(home, ['backup', inst.name, '--yes', '--dry-run']));
    await must(cli(home, ['backups', inst.name]));
    expect(pings).toEqual([]);
  });

  it('a monitor that cannot be reached is said with its reason and changes nothing', async () => {
    const away = await homeWithHosts(['lab2']);
    await addInstance(away, 'lab2', 'ping-away', 'dev');
    // A port nothing listens on: the server above, closed.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    await must(cli(away, ['notify', 'ping', '--url', `http://127.0.0.1:${deadPort}/ping/x`]));
    const r = await cli(away, ['backup', 'ping-away', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`could not send the start ping to the monitor: connection refused by 127.0.0.1:${deadPort}`);
    expect(r.stderr).toContain(`could not send the success ping to the monitor: connection refused by 127.0.0.1:${deadPort}`);
  });

  it('notify test sends a start and a success ping', async () => {
    pings.length = 0;
    const r = JSON.parse((await must(cli(home, ['notify', 'test', '--json']))).stdout);
    expect(r).toEqual([
      { channel: 'ping start', ok: true },
      { channel: 'ping success', ok: true },
    ]);
    expect(pings.map((p) => p.path)).toEqual([`${check}/start`, check]);
  });
});
