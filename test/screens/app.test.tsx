import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { openApp, type App as OpsApp } from '../../src/app/app.js';
import { App } from '../../screens/App.js';
import { UiModel } from '../../screens/model.js';
import { tick, until } from './frames.js';
import { addInstance, homeWithHosts, newHome } from '../helpers.js';

function inventoryOnly(): OpsApp {
  const app = openApp(newHome());
  app.inv.addEnv('prod', true);
  app.inv.addEnv('uat', false);
  app.inv.addHost({ name: 'web1', address: '127.0.0.1', port: 22, user: 'u', keyFile: null, jump: null, hostKey: null });
  for (const [name, env] of [
    ['alpha-prod', 'prod'],
    ['beta-uat', 'uat'],
    ['gamma-uat', 'uat'],
  ]) {
    app.inv.addInstance({ name, host: 'web1', path: `/srv/${name}`, env, url: null, dbUrl: null, branch: null });
  }
  return app;
}

/** The console over an inventory-only app where `instance` has one recorded backup, after its first frame. */
async function consoleWithBackupOf(instance: string) {
  const app = inventoryOnly();
  app.inv.addBackup({ id: '20260101T000000-abcd', instance, kind: 'manual', createdAt: new Date().toISOString(), manifest: {}, verifiedAt: null, runId: null });
  const ui = render(<App model={new UiModel(app)} home="instances" />);
  await until(ui.lastFrame, 'INSTANCE');
  return { app, ui };
}

describe('the console screens', () => {
  let app: OpsApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('lists instances, moves, drills in, goes back, filters and shows help', async () => {
    app = inventoryOnly();
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    let f = await until(ui.lastFrame, 'INSTANCE');
    expect(f).toMatch(/alpha-prod\s+prod\*\s+web1\s+never/);
    expect(f).toContain('3 instances · 1 hosts');

    ui.stdin.write('j');
    await tick();
    ui.stdin.write('\r');
    f = await until(ui.lastFrame, 'Backups');
    expect(f).toContain('beta-uat');
    expect(f).toContain('/srv/beta-uat');

    ui.stdin.write('\x1b');
    f = await until(ui.lastFrame, 'LAST BACKUP');
    ui.stdin.write('/');
    await tick();
    ui.stdin.write('gam');
    f = await until(ui.lastFrame, 'filter "gam"');
    expect(f).toContain('gamma-uat');
    expect(f).not.toContain('alpha-prod');
    ui.stdin.write('\r');
    await tick();
    ui.stdin.write('?');
    f = await until(ui.lastFrame, 'Keys on the instances screen');
    expect(f).toMatch(/b\s+backup/);
    ui.unmount();
  });

  it('the : command line opens screens and instances by name, and says what it does not know', async () => {
    app = inventoryOnly();
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    await until(ui.lastFrame, 'LAST BACKUP');
    ui.stdin.write(':');
    await tick();
    ui.stdin.write('open gamma-uat');
    await until(ui.lastFrame, ':open gamma-uat');
    ui.stdin.write('\r');
    let f = await until(ui.lastFrame, 'Backups');
    expect(f).toContain('/srv/gamma-uat');
    ui.stdin.write(':runs\r');
    f = await until(ui.lastFrame, 'The audit trail, newest first');
    expect(f).toContain('no runs yet');
    ui.stdin.write(':frobnicate\r');
    f = await until(ui.lastFrame, 'unknown command :frobnicate');
    expect(f).toContain(':backup NAME');
    ui.stdin.write(':open nobody\r');
    await until(ui.lastFrame, 'no instance named nobody');
    ui.stdin.write(':dashboard\r');
    await until(ui.lastFrame, 'live health is off in this console');
    ui.unmount();
  });

  it('asks before a restore with Cancel focused, and Enter there does nothing', async () => {
    const c = await consoleWithBackupOf('beta-uat');
    app = c.app;
    const ui = c.ui;
    ui.stdin.write('r');
    let f = await until(ui.lastFrame, 'has no backup yet');
    expect(f).toContain('alpha-prod has no backup yet');
    ui.stdin.write('j');
    await tick();
    ui.stdin.write('r');
    f = await until(ui.lastFrame, 'Restore backup 20260101T000000-abcd');
    expect(f).toContain('Cancel');
    ui.stdin.write('\r');
    f = await until(ui.lastFrame, 'LAST BACKUP');
    expect(app.inv.listRuns()).toEqual([]);
    ui.unmount();
  });

  it('on a protected instance, a wrong name typed does nothing', async () => {
    const c = await consoleWithBackupOf('alpha-prod');
    app = c.app;
    const ui = c.ui;
    ui.stdin.write('r');
    await until(ui.lastFrame, 'PROTECTED environment');
    ui.stdin.write('alpha-pro');
    await until(ui.lastFrame, 'Type its name to go on: alpha-pro');
    ui.stdin.write('\r');
    const f = await until(ui.lastFrame, 'does not match');
    expect(f).toContain('nothing was done');
    expect(app.inv.listRuns()).toEqual([]);
    ui.unmount();
  });

  it('backs up a lab instance from the keyboard and shows the steps live', async () => {
    const home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'tui-dev', 'dev');
    app = openApp(home);
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    await until(ui.lastFrame, 'tui-dev');
    ui.stdin.write('b');
    const f = await until(ui.lastFrame, 'DONE');
    expect(f).toMatch(/✓ Back up the code tree and the database/);
    expect(f).toMatch(/✓ Record the backup/);
    expect(app.inv.listBackups('tui-dev')).toHaveLength(1);
    ui.stdin.write('\x1b');
    await until(ui.lastFrame, /tui-dev\s+dev\s+lab1\s+\d+s ago/);
    ui.unmount();
  });

  it('m toggles maintenance after a confirmation, and U offers the tags to upgrade to', async () => {
    const home = await homeWithHosts(['lab1']);
    const i = await addInstance(home, 'lab1', 'keys-dev', 'dev');
    app = openApp(home);
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    await until(ui.lastFrame, 'keys-dev');
    ui.stdin.write('m');
    await until(ui.lastFrame, 'Put keys-dev in maintenance?');
    ui.stdin.write('\x1b[C'); // right arrow: from Cancel to the action
    await tick();
    ui.stdin.write('\r');
    await until(ui.lastFrame, 'DONE');
    expect((await fetch(i.url)).status).toBe(503);
    expect(app.inv.requireInstance('keys-dev').maintenanceSince).toBeTruthy();
    ui.stdin.write('\x1b');
    await until(ui.lastFrame, 'LAST BACKUP');
    ui.stdin.write('m');
    await until(ui.lastFrame, 'Take keys-dev out of maintenance?');
    ui.stdin.write('\x1b[C');
    await tick();
    ui.stdin.write('\r');
    await until(ui.lastFrame, 'DONE');
    expect((await fetch(i.url)).status).toBe(200);
    ui.stdin.write('\x1b');
    await until(ui.lastFrame, 'LAST BACKUP');
    ui.stdin.write('U');
    const f = await until(ui.lastFrame, 'Upgrade keys-dev to which tag?');
    expect(f.indexOf('v3.0.0')).toBeLessThan(f.indexOf('v2.0.0'));
    ui.stdin.write('\x1b');
    await until(ui.lastFrame, 'LAST BACKUP');
    ui.unmount();
  });

  it('d compares two instances and shows them side by side', async () => {
    const home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'side-a', 'dev');
    await addInstance(home, 'lab1', 'side-b', 'dev', { version: 'v2.0.0' });
    app = openApp(home);
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    await until(ui.lastFrame, 'side-a');
    ui.stdin.write('d');
    await until(ui.lastFrame, 'Compare side-a with which instance?');
    ui.stdin.write('\r');
    await until(ui.lastFrame, 'DONE');
    ui.stdin.write('\r');
    const f = await until(ui.lastFrame, 'side-a and side-b differ');
    expect(f).toMatch(/index\.html\s+differs\s+content/);
    expect(f).toMatch(/migrations\/002\.sql\s+MISSING\s+present/);
    expect(f).toMatch(/table public\.schema_version\s+1 rows\s+2 rows\s+DIFFERENT/);
    ui.unmount();
  });
});
