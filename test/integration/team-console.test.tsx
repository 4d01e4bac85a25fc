import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { render } from 'ink-testing-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { teamRoleNames } from '../../inventory/pg-team-roles.js';
import { setInventoryPassword } from '../../inventory/connect.js';
import { openApp, type App as OpsApp } from '../../src/app/app.js';
import { App } from '../../screens/App.js';
import { UiModel } from '../../screens/model.js';
import { until } from '../screens/frames.js';
import { asLabUser, cli, homeWithHosts, lab, must, newHome, pgAdmin, TEAM_ADMIN } from '../helpers.js';

// Issue 11, items 3, 5 and 8 in the console on a team inventory: keys greyed by the role's rights,
// change requests shown and approved, and another operator's run appearing while it goes on.

const tag = randomBytes(4).toString('hex');
const bob = { role: `bob_l_${tag}`, password: `b-${tag}` };
const vera = { role: `vera_l_${tag}`, password: `v-${tag}` };
const inst = `lv-${tag}`;
let adminHome: string;
let db: string;
let url: string;
const apps: OpsApp[] = [];

function homeAs(p: { role: string }): string {
  const home = newHome('sqlite');
  writeFileSync(join(home, 'settings.json'), JSON.stringify({ inventory: url.replace(`//${TEAM_ADMIN.role}@`, `//${p.role}@`) }));
  return home;
}
/** The console of `home`, logged in with `password`, re-reading the shared state every 200 ms. */
function consoleOf(home: string, password: string) {
  setInventoryPassword(password);
  try {
    const app = openApp(home);
    apps.push(app);
    const model = new UiModel(app, { liveMs: 200 });
    return { model, ui: render(<App model={model} home="instances" />) };
  } finally {
    setInventoryPassword(undefined);
  }
}

beforeAll(async () => {
  adminHome = await homeWithHosts(['lab1'], 'postgres');
  url = JSON.parse(readFileSync(join(adminHome, 'settings.json'), 'utf8')).inventory;
  db = url.slice(url.lastIndexOf('/') + 1);
  for (const p of [bob, vera]) pgAdmin(`CREATE ROLE ${p.role} LOGIN PASSWORD '${p.password}'; GRANT ${teamRoleNames(db).user} TO ${p.role};`);
  const path = join(lab().hosts[0].root, inst);
  asLabUser('sh', ['-c', 'mkdir -p -- "$1"', 'sh', path]);
  await must(cli(adminHome, ['instance', 'add', inst, '--host', 'lab1', '--path', path, '--env', 'prod']));
  await must(cli(adminHome, ['team', 'grant', bob.role, '--env', 'prod', '--as', 'admin']));
  await must(cli(adminHome, ['team', 'grant', vera.role, '--env', 'prod', '--as', 'viewer']));
});
afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE);`);
  pgAdmin(`DROP ROLE IF EXISTS ${teamRoleNames(db).user}, ${teamRoleNames(db).admin};`);
  for (const p of [bob, vera]) pgAdmin(`DROP ROLE IF EXISTS ${p.role};`);
});

describe('the console on a team inventory', () => {
  it('greys the keys a viewer may not use, saying why and who may', async () => {
    const { ui, model } = consoleOf(homeAs(vera), vera.password);
    try {
      await until(ui.lastFrame, inst);
      ui.stdin.write('\r');
      const f = await until(ui.lastFrame, 'Backups');
      expect(f).toContain('b backup (not allowed: needs operator)');
      ui.stdin.write('b');
      await until(ui.lastFrame, `not allowed: backup on prod (protected) needs operator; you are viewer; ask ${bob.role} (admin)`);
      expect(model.running).toBe(false);
    } finally {
      ui.unmount();
      model.stopLive();
    }
  });

  it('shows a run started on another jump box in :runs and on the instance panel while it goes on', async () => {
    const { ui, model } = consoleOf(adminHome, TEAM_ADMIN.password);
    await until(ui.lastFrame, inst);
    ui.stdin.write(':');
    ui.stdin.write('runs');
    ui.stdin.write('\r');
    await until(ui.lastFrame, 'The audit trail');
    // bob, from his own jump box, starts a restore: the run and the lock, as the engine takes them.
    const other = new Inventory(homeAs(bob), { password: bob.password });
    try {
      const id = other.startRun('restore', { instance: inst }, inst, false);
      other.acquireLock(inst, 'restore', id);
      let f = await until(ui.lastFrame, new RegExp(`${id}\\s.*restore\\s+${inst}.*running`));
      ui.stdin.write(':');
      ui.stdin.write(`open ${inst}`);
      ui.stdin.write('\r');
      f = await until(ui.lastFrame, `restore (run ${id}) by user`);
      expect(f).toMatch(/running\s+restore \(run \d+\) by user/);
      other.finishRun(id, 'ok', null, null, 10);
      other.releaseLock(inst);
      await until(() => (ui.lastFrame()?.includes(`restore (run ${id})`) ? 'still' : 'gone'), 'gone');
    } finally {
      other.close();
      ui.unmount();
      model.stopLive();
    }
  });

  it('shows a pending change on the instance and in :changes, where another admin approves it', async () => {
    const other = new Inventory(homeAs(bob), { password: bob.password });
    const c = other.changes.request({ command: 'update', instance: inst, env: 'prod', params: {}, argv: ['update', inst], plan: ['Back up', 'Update'], backout: 'undo', why: 'release 7' });
    other.close();
    const { ui, model } = consoleOf(adminHome, TEAM_ADMIN.password);
    try {
      await until(ui.lastFrame, inst);
      ui.stdin.write('\r');
      await until(ui.lastFrame, `#${c.id} update PENDING, asked by ${bob.role}: release 7 (:changes)`);
      ui.stdin.write(':');
      ui.stdin.write('changes');
      ui.stdin.write('\r');
      await until(ui.lastFrame, 'Change requests waiting or approved');
      ui.stdin.write('a');
      await until(ui.lastFrame, /change approve .*DONE/);
      expect(pgAdmin(`SELECT status, decided_by FROM opsdeck.change_requests WHERE id = ${c.id}`, db).trim()).toBe(`approved|${TEAM_ADMIN.role}`);
    } finally {
      ui.unmount();
      model.stopLive();
    }
  });
});
