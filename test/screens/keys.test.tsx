import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { openApp, type App as OpsApp } from '../../src/app/app.js';
import { App } from '../../screens/App.js';
import { UiModel } from '../../screens/model.js';
import { tick, until } from './frames.js';
import { addInstance, asLabUser, dbState, homeWithHosts, sql, treeState } from '../helpers.js';

// The console's keys for the runs that change or check an instance (u, c, w) and the :backup
// command, against the lab: each starts its run, and the screen shows how it ended.

describe('console keys that start runs', () => {
  let app: OpsApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  /** Confirms the dialog on screen: its focus starts on Cancel, the right arrow moves it to the action. */
  const confirm = async (ui: ReturnType<typeof render>) => {
    ui.stdin.write('\x1b[C');
    await tick();
    ui.stdin.write('\r');
  };

  it('u updates the instance to the tip of its branch, after a confirmation', async () => {
    const home = await homeWithHosts(['lab1']);
    const i = await addInstance(home, 'lab1', 'keys-upd', 'dev');
    app = openApp(home);
    app.inv.updateInstance('keys-upd', { branch: 'main', hooks: { migrate: ['bin/migrate'] } });
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    await until(ui.lastFrame, 'keys-upd');
    ui.stdin.write('u');
    await until(ui.lastFrame, 'Update keys-upd to the tip of main?');
    await confirm(ui);
    const f = await until(ui.lastFrame, /DONE|FAILED/);
    expect(f).toMatch(/update keys-upd \d+ s {2}DONE/);
    expect(f).toMatch(/✓ Back up the instance/);
    expect(f).toMatch(/✓ Fetch and check out the new code/);
    expect(f).toMatch(/2 commits: \w+ release v3\.0\.0; \w+ release v2\.0\.0/);
    expect(f).toMatch(/✓ Run the migrations/);
    expect(f).toMatch(/✓ Check the site answers/);
    expect(readFileSync(join(i.path, 'VERSION'), 'utf8')).toBe('v3.0.0\n');
    expect(await fetch(i.url).then((r) => r.text())).toContain('version v3.0.0');
    expect(sql(i.db, "SELECT string_agg(name, ',' ORDER BY name) FROM schema_version").trim()).toBe('001.sql,002.sql,003.sql');
    ui.unmount();
  });

  it('c clones the instance onto the one picked, after a confirmation', async () => {
    const home = await homeWithHosts(['lab1', 'lab2']);
    const src = await addInstance(home, 'lab1', 'keys-a-src', 'dev', { version: 'v2.0.0' });
    const dst = await addInstance(home, 'lab2', 'keys-b-dst', 'dev');
    app = openApp(home);
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    await until(ui.lastFrame, 'keys-b-dst');
    ui.stdin.write('c');
    await until(ui.lastFrame, 'Clone keys-a-src onto which instance?');
    ui.stdin.write('\r');
    await until(ui.lastFrame, 'Make keys-b-dst a copy of keys-a-src');
    await confirm(ui);
    const f = await until(ui.lastFrame, /DONE|FAILED/);
    expect(f).toMatch(/clone keys-b-dst \d+ s {2}DONE/);
    expect(f).toMatch(/✓ Swap the restored code tree into place/);
    expect(f).toContain('database copied from keys-a-src in one transaction');
    expect(treeState(dst.path)).toEqual(treeState(src.path));
    expect(sql(dst.db, "SELECT string_agg(name, ',' ORDER BY name) FROM schema_version").trim()).toBe('001.sql,002.sql');
    expect(await fetch(dst.url).then((r) => r.text())).toContain('version v2.0.0');
    ui.unmount();
  });

  it('w watches the instance: the first run records the baseline, the next shows each file added or changed', async () => {
    const home = await homeWithHosts(['lab1']);
    const i = await addInstance(home, 'lab1', 'keys-watch', 'dev');
    app = openApp(home);
    const inv = app.inv;
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    await until(ui.lastFrame, 'keys-watch');
    ui.stdin.write('w');
    let f = await until(ui.lastFrame, /DONE|FAILED/);
    expect(f).toMatch(/watch keys-watch \d+ s {2}DONE/);
    expect(f).toMatch(/✓ Hash every file of keys-watch on lab1 and compare with the baseline/);
    expect(inv.watchState('keys-watch')).toMatchObject({ changes: 0 });
    // What the watch found is shown when it ends, as opsdeck watch prints it.
    await until(ui.lastFrame, /watch keys-watch: baseline recorded \(\d+ files\)/);
    ui.stdin.write('\x1b');
    await until(ui.lastFrame, 'LAST BACKUP');
    asLabUser('sh', ['-c', 'echo intruder > "$1/index.html" && echo x > "$1/planted.php"', 'sh', i.path]);
    ui.stdin.write('w');
    await until(() => String(inv.watchState('keys-watch')?.changes), '2');
    f = await until(ui.lastFrame, /DONE|FAILED/);
    expect(f).toMatch(/watch keys-watch \d+ s {2}DONE/);
    f = await until(ui.lastFrame, /watch keys-watch: 1 added, 1 changed, 0 removed since/);
    expect(f).toMatch(/\+ planted\.php/);
    expect(f).toMatch(/~ index\.html \(/);
    ui.unmount();
  });

  it('ctrl-c during a run cancels it: the done steps are undone, the instance as before', async () => {
    const home = await homeWithHosts(['lab1']);
    const i = await addInstance(home, 'lab1', 'keys-cancel', 'dev');
    // The migrate hook migrates, says so, then waits (a long migration): ctrl-c comes while it runs.
    const migrated = `${i.path}.migrated`;
    const go = `${i.path}.go`;
    asLabUser('rm', ['-f', migrated, go]);
    app = openApp(home);
    app.inv.updateInstance('keys-cancel', { branch: 'main', hooks: { migrate: ['sh', '-c', `bin/migrate && touch ${migrated} && while [ ! -e ${go} ]; do sleep 0.1; done`] } });
    const files = treeState(i.path);
    const db = dbState(i.db);
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    try {
      await until(ui.lastFrame, 'keys-cancel');
      ui.stdin.write('u');
      await until(ui.lastFrame, 'Update keys-cancel to the tip of main?');
      await confirm(ui);
      await until(() => String(existsSync(migrated)), 'true');
      ui.stdin.write('\x03');
      const f = await until(ui.lastFrame, /DONE|FAILED/);
      expect(f).toMatch(/update keys-cancel \d+ s {2}FAILED, ROLLED BACK/);
      expect(f).toMatch(/↩ Fetch and check out the new code/);
      expect(f).toMatch(/↩ Run the migrations/);
      expect(treeState(i.path)).toEqual(files);
      expect(dbState(i.db)).toEqual(db);
      expect(app.inv.listRuns(1)[0]).toMatchObject({ command: 'update', status: 'rolled-back', failedStep: 'migrate' });
      expect(app.inv.requireInstance('keys-cancel').maintenanceSince).toBeNull();
    } finally {
      // A hook the cancel did not stop must not wait forever.
      asLabUser('touch', [go]);
      ui.unmount();
    }
  });

  it(':backup NAME backs up the instance named', async () => {
    const home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'keys-cmd-a', 'dev');
    await addInstance(home, 'lab1', 'keys-cmd-b', 'dev');
    app = openApp(home);
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    await until(ui.lastFrame, 'keys-cmd-b');
    ui.stdin.write(':');
    await tick();
    ui.stdin.write('backup keys-cmd-b\r');
    const f = await until(ui.lastFrame, /DONE|FAILED/);
    expect(f).toMatch(/backup keys-cmd-b \d+ s {2}DONE/);
    expect(f).toMatch(/✓ Back up the code tree and the database/);
    expect(f).toMatch(/code: \d+ files, [\d.]+ [KMG]?B/);
    expect(app.inv.listBackups('keys-cmd-b')).toHaveLength(1);
    expect(app.inv.listBackups('keys-cmd-a')).toHaveLength(0);
    // l lists the commands the run ran, on which host, and how each ended; the password as ***.
    ui.stdin.write('l');
    const cmds = await until(ui.lastFrame, 'Commands of this run');
    expect(cmds).toMatch(/lab1\s+backup keys-cmd-b\s+exit 0 · [\d.]+ s · [\d.]+ [KM]?B out\s+PGPASSWORD=\*\*\* pg_dump --host/);
    expect(cmds).toMatch(/store\s+backup keys-cmd-b\s+exit 0 .*RESTIC_REPOSITORY=/);
    ui.stdin.write('\x1b');
    await until(ui.lastFrame, /backup keys-cmd-b \d+ s {2}DONE/);
    ui.stdin.write('\x1b');
    const list = await until(ui.lastFrame, /keys-cmd-b\s+dev\s+lab1\s+\d+s ago/);
    expect(list).toMatch(/keys-cmd-a\s+dev\s+lab1\s+never/);
    // :log keeps the session's commands after the run view is gone.
    ui.stdin.write(':');
    await tick();
    ui.stdin.write('log\r');
    expect(await until(ui.lastFrame, 'Commands run from this console')).toMatch(/lab1\s+backup keys-cmd-b\s+exit 0.*PGPASSWORD=\*\*\* pg_dump/);
    ui.unmount();
  });
});
