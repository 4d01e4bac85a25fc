import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { pgAdmin, startHost, stopHost } from '../../fixtures/lab.js';
import { openApp } from '../../src/app/app.js';
import { probeDatabase, probeHost } from '../../src/health/probes.js';
import { addInstance, cli, dbSql, homeWithHosts, lab, must } from '../helpers.js';

describe('health', () => {
  afterAll(async () => {
    await startHost(lab().hosts[2]);
  });

  it('reports real values for hosts and instances, and a stopped host as down with its reason, exit 1', async () => {
    const home = await homeWithHosts(['lab1', 'lab3']);
    await addInstance(home, 'lab1', 'h-one', 'dev');
    await addInstance(home, 'lab3', 'h-three', 'dev');
    await must(cli(home, ['backup', '--all']));

    const up = await cli(home, ['health', '--json']);
    expect(up.code, up.stdout).toBe(0);
    const r = JSON.parse(up.stdout);
    expect(r.hosts.map((h: any) => h.host).sort()).toEqual(['lab1', 'lab3']);
    for (const h of r.hosts) {
      expect(h.ok).toBe(true);
      expect(h.load).toHaveLength(3);
      // The lab's hosts are this machine: what it says of itself.
      expect(h.cpus).toBe(cpus().length);
      // Busy over the quarter second, from the host's /proc/stat read before and after it.
      expect(h.cpu).toBeGreaterThanOrEqual(0);
      expect(h.cpu).toBeLessThanOrEqual(1);
      expect(h.memTotal).toBe(totalmem());
      expect(h.memUsed).toBeGreaterThan(0);
      expect(h.memTotal).toBeGreaterThan(h.memUsed);
      expect(h.disks[0]).toMatchObject({ mount: expect.stringMatching(/^\//) });
      expect(h.disks[0].size).toBeGreaterThan(h.disks[0].used);
      expect(h.uptimeSeconds).toBeGreaterThan(0);
    }
    for (const i of r.instances) {
      expect(i).toMatchObject({ ok: true, maintenance: false, http: { status: 200, ok: true } });
      expect(i.backupAgeSeconds).toBeLessThan(600);
    }

    await stopHost('lab3');
    const down = await cli(home, ['health', '--json']);
    expect(down.code).toBe(1);
    const d = JSON.parse(down.stdout);
    expect(d.hosts.find((h: any) => h.host === 'lab3')).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot connect to host lab3/) });
    expect(d.hosts.find((h: any) => h.host === 'lab1').ok).toBe(true);
    expect(d.instances.find((i: any) => i.instance === 'h-three')).toMatchObject({ ok: false, reasons: [expect.stringMatching(/^host lab3 down/)] });
    expect(d.instances.find((i: any) => i.instance === 'h-one').ok).toBe(true);
    const prom = await cli(home, ['health', '--prometheus']);
    expect(prom.code).toBe(1);
    expect(prom.stdout).toMatch(/^opsdeck_host_up\{host="lab3"\} 0$/m);
    expect(prom.stdout).toMatch(/^opsdeck_instance_up\{instance="h-one",env="dev"\} 1$/m);
    expect((await cli(home, ['health', 'nope'])).code).toBe(2);

    await startHost(lab().hosts[2]);
    expect((await cli(home, ['health', 'lab3'])).code).toBe(0);
  });
});

describe('database and app metrics', () => {
  afterAll(async () => {
    await startHost(lab().hosts[1]);
  });

  it('reads size, connections and the longest transaction with pg through a tunnel on the host connection, and app metrics', async () => {
    const home = await homeWithHosts(['lab2']);
    const i = await addInstance(home, 'lab2', 'db-probe', 'dev', { pagila: true });
    await must(
      cli(home, [
        'instance',
        'set',
        'db-probe',
        '--metric',
        'customers=sql:SELECT count(*) FROM customer',
        '--metric',
        'files=cmd:ls | wc -l',
        '--metric',
        'writes=sql:WITH d AS (DELETE FROM customer RETURNING 1) SELECT count(*) FROM d',
      ]),
    );
    // Two statements are refused when set, not left to fail at every probe.
    const sneaky = await cli(home, ['instance', 'set', 'db-probe', '--metric', 'sneaky=sql:SELECT 1; DELETE FROM customer']);
    expect(sneaky.code).toBe(2);
    expect(sneaky.stderr).toMatch(/more than one statement/);
    const bad = await cli(home, ['instance', 'set', 'db-probe', '--metric', 'Bad Name=sql:SELECT 1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid --metric "Bad Name=sql:SELECT 1"/);

    // A transaction held open elsewhere, as a stuck app worker would.
    const other = new pg.Client({ host: '127.0.0.1', port: lab().pg.port, user: i.role, database: i.db, password: i.password });
    await other.connect();
    await other.query('BEGIN; SELECT 1');
    await new Promise((r) => setTimeout(r, 1500));
    try {
      const r = await cli(home, ['health', 'db-probe', '--json']);
      const s = JSON.parse(r.stdout).instances[0];
      // Down only for want of a backup: a metric that cannot be read is shown, it is not an outage.
      expect(s.reasons).toEqual(['no backup']);
      expect(r.code).toBe(1);
      expect(s.db.ok).toBe(true);
      expect(s.db.sizeBytes).toBeGreaterThan(5_000_000);
      expect(s.db.connections).toBeGreaterThanOrEqual(2);
      expect(s.db.maxConnections).toBeGreaterThanOrEqual(s.db.connections);
      expect(s.db.longestTransactionSeconds).toBeGreaterThanOrEqual(1);
      expect(s.metrics.customers).toBe(599);
      expect(s.metrics.files).toBe(readdirSync(i.path).filter((n) => !n.startsWith('.')).length);
      expect(s.metrics.writes.error).toMatch(/read-only transaction/);
    } finally {
      await other.end();
    }
    // Nothing the probe ran changed anything.
    expect(pgAdmin('SELECT count(*) FROM customer', i.db).trim()).toBe('599');

    // Through the host's SSH connection, one for every probe of that host; not straight to the database.
    const app = openApp(home);
    try {
      const inst = app.inv.requireInstance('db-probe');
      const [h, d] = await Promise.all([probeHost(app, app.inv.requireHost('lab2'), [i.path]), probeDatabase(app, inst)]);
      expect(h.ok && d!.ok).toBe(true);
      expect(app.ssh.opened).toBe(1);
      await stopHost('lab2');
      const down = await probeDatabase(app, inst);
      expect(down).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot connect to host lab2/) });
    } finally {
      await app.close();
      await startHost(lab().hosts[1]);
    }
  });
});

describe('the host probe', () => {
  it('samples CPU busy over a quarter second: the host with every core spinning reads as busy', async () => {
    const home = await homeWithHosts(['lab1']);
    const app = openApp(home);
    // The lab's hosts are this machine: one spinning process per core makes it busy.
    const spinners = cpus().map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
    try {
      const busy = await probeHost(app, app.inv.requireHost('lab1'), []);
      expect(busy.ok, busy.reason).toBe(true);
      expect(busy.cpu).toBeGreaterThan(0.5);
      // The window is opsdeck's quarter second: the probe cannot answer before it ends.
      expect(busy.ms).toBeGreaterThanOrEqual(250);
    } finally {
      for (const s of spinners) s.kill('SIGKILL');
      await app.close();
    }
  });
});

describe('database probe on MariaDB', () => {
  it('reads size, connections against max_connections through the host connection, and read-only sql: metrics', async () => {
    const home = await homeWithHosts(['lab1']);
    const i = await addInstance(home, 'lab1', 'db-probe-m', 'dev', { pagila: true, engine: 'mysql' });
    // A named lock outlives a rolled-back transaction: MariaDB's rules refuse it when it is set.
    const lock = await cli(home, ['instance', 'set', 'db-probe-m', '--metric', "locks=sql:SELECT GET_LOCK('opsdeck', 0)"]);
    expect(lock.code).toBe(2);
    expect(lock.stderr).toMatch(/get_lock/i);
    await must(cli(home, ['instance', 'set', 'db-probe-m', '--metric', 'customers=sql:SELECT count(*) FROM customer', '--metric', 'nothing=sql:SELECT NULL']));
    const r = await cli(home, ['health', 'db-probe-m', '--json']);
    const s = JSON.parse(r.stdout).instances[0];
    expect(s.reasons).toEqual(['no backup']);
    expect(s.db).toMatchObject({ ok: true });
    expect(s.db.sizeBytes).toBeGreaterThan(1_000_000);
    expect(s.db.connections).toBeGreaterThanOrEqual(1);
    expect(s.db.maxConnections).toBeGreaterThanOrEqual(s.db.connections);
    expect(s.metrics.customers).toBe(599);
    expect(s.metrics.locks).toBeUndefined();
    expect(s.metrics.nothing.error).toMatch(/did not return one number/);
    expect(dbSql(i, 'SELECT COUNT(*) FROM customer').trim()).toBe('599');
  });
});
