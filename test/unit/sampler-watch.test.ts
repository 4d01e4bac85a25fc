import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openApp } from '../../src/app/app.js';
import { Sampler } from '../../src/health/sampler.js';
import { until } from '../helpers.js';

// The sampler reads what its instance probes ask of the inventory once per tick (issue 11: on a team
// inventory each read is a round trip): the health panel still says what each instance's last watch
// found, and nothing for an instance that is not watched or whose tree matched.
it("shows each instance's last watch check in its health, read once for the tick", async () => {
  const home = mkdtempSync(join(tmpdir(), 'opsdeck-sampler-watch-'));
  const app = openApp(home);
  app.inv.transaction(() => {
    app.inv.addEnv('dev', false);
    app.inv.addHost({ name: 'h0', address: '127.1.0.1', port: 9, user: 'ops', keyFile: null, jump: null, hostKey: null });
    const insert = app.inv.db.prepare('INSERT INTO instances (name, host, path, env, url, created_at, hooks, local_paths) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    for (const name of ['changed', 'same', 'unwatched']) insert.run(name, 'h0', `/srv/${name}`, 'dev', null, new Date().toISOString(), '{}', '[]');
  });
  app.inv.setWatchBaseline('changed', Buffer.from('listing'));
  app.inv.recordWatchCheck('changed', 3);
  app.inv.setWatchBaseline('same', Buffer.from('listing'));
  const sampler = new Sampler(app, { intervalMs: 3_600_000, timeoutMs: 5000 });
  try {
    sampler.setScope(app.inv.listInstances());
    sampler.start();
    const reasons = (name: string) => sampler.getSnapshot().instances.get(name)?.sample?.reasons;
    await until('every instance probed', () => ['changed', 'same', 'unwatched'].every((n) => reasons(n)));
    expect(reasons('changed')).toContain('watch: 3 files differ from the baseline');
    for (const n of ['same', 'unwatched']) expect(reasons(n)!.filter((r) => r.startsWith('watch:'))).toEqual([]);
  } finally {
    sampler.stop();
    await app.close();
  }
});
