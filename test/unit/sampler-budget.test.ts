import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openApp } from '../../src/app/app.js';
import { Sampler } from '../../src/health/sampler.js';
import { until } from '../helpers.js';

// Issue 14: the live panels of a large fleet must not turn the jump box into a load test. Hosts on
// loopback addresses where nothing listens (127.1.0.x:9): every probe fails at once, so only the
// budget holds them back.
it('never starts more probes than its budget, however many instances, and gets round to every host and instance', async () => {
  const home = mkdtempSync(join(tmpdir(), 'opsdeck-budget-'));
  const app = openApp(home);
  const HOSTS = 20;
  const INSTANCES = 1200;
  app.inv.transaction(() => {
    app.inv.addEnv('dev', false);
    for (let h = 0; h < HOSTS; h++) app.inv.addHost({ name: `h${h}`, address: `127.1.0.${h + 1}`, port: 9, user: 'ops', keyFile: null, jump: null, hostKey: null });
    // Plain INSERTs: addInstance checks each tree against every other one, a wait at this count.
    const insert = app.inv.db.prepare('INSERT INTO instances (name, host, path, env, url, created_at, hooks, local_paths) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < INSTANCES; i++) insert.run(`a${i}`, `h${i % HOSTS}`, `/srv/a${i}`, 'dev', `http://127.1.0.${(i % HOSTS) + 1}:9/`, new Date().toISOString(), '{}', '[]');
  });
  const budget = { maxPerSecond: 300, parallel: 8 };
  // One round only (a long interval): each target probed once, in turn.
  const sampler = new Sampler(app, { intervalMs: 3_600_000, timeoutMs: 5000, ...budget });
  const names = app.inv.listInstances().map((i) => i.name);
  let mostWaiting = 0;
  // (time, probes started so far), read every few milliseconds: any two readings less than a second
  // apart bound the probes started between them.
  const readings: [number, number][] = [];
  try {
    sampler.setScope(app.inv.listInstances());
    sampler.start();
    const snap = () => sampler.getSnapshot();
    await until('every host and instance probed once', () => {
      mostWaiting = Math.max(mostWaiting, sampler.waiting);
      readings.push([Date.now(), sampler.probesStarted]);
      return names.every((n) => snap().instances.get(n)?.sample) && [...Array(HOSTS).keys()].every((h) => snap().hosts.get(`h${h}`)?.sample);
    });
    // Each target once.
    expect(sampler.probesStarted).toBe(INSTANCES + HOSTS);
    // Never more than the budget in any second: the most started between two readings less than a
    // second apart (the readings span the whole run, which takes several seconds at this budget).
    let mostInASecond = 0;
    for (let i = 0, j = 0; j < readings.length; j++) {
      while (readings[j][0] - readings[i][0] >= 1000) i++;
      mostInASecond = Math.max(mostInASecond, readings[j][1] - readings[i][1]);
    }
    expect(readings.at(-1)![0] - readings[0][0]).toBeGreaterThan(1000);
    expect(mostInASecond).toBeGreaterThan(0);
    expect(mostInASecond).toBeLessThanOrEqual(budget.maxPerSecond);
    // The queue holds what the budget starts before the next tick, never the fleet.
    expect(mostWaiting).toBeLessThanOrEqual(budget.maxPerSecond + budget.parallel);
    expect(snap().instances.get('a0')?.sample).toMatchObject({ ok: false });
  } finally {
    sampler.stop();
    await app.close();
  }
});
