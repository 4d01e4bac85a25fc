import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { render } from 'ink-testing-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventoryPassword, setInventoryPassword } from '../../inventory/connect.js';
import { firstPageReads, LIST_SQL } from '../../inventory/list-sql.js';
import { teamRoleNames } from '../../inventory/pg-team-roles.js';
import { inventoryAhead, loginAhead, startInventoryAhead } from '../../inventory/pg-first.js';
import { openApp, type App as OpsApp } from '../../src/app/app.js';
import { App } from '../../screens/App.js';
import { UiModel } from '../../screens/model.js';
import { until } from '../screens/frames.js';
import { asLabUser, cli, homeWithHosts, lab, must, newHome, pgAdmin, TEAM_ADMIN } from '../helpers.js';

// Issue 11: the console on a team inventory reads its first frame over a connection of its main
// thread (no worker thread before that frame), as screens/tui.tsx opens it. What the role reads is
// still what the database's row-level security returns, and the session has one connection at a time.

const tag = randomBytes(4).toString('hex');
const dora = { role: `dora_f_${tag}`, password: `d-${tag}` };
const devInst = `ff-dev-${tag}`;
const prodInst = `ff-prod-${tag}`;
let adminHome: string;
let db: string;
let url: string;
const apps: OpsApp[] = [];

function homeAs(role: string): string {
  const home = newHome('sqlite');
  writeFileSync(join(home, 'settings.json'), JSON.stringify({ inventory: url.replace(`//${TEAM_ADMIN.role}@`, `//${role}@`) }));
  return home;
}

/** The inventory opened as the console opens it: pg's client on this thread logs in and reads the first frame, then openApp adopts it. */
async function openAsConsole(home: string, password: string, rows = 20): Promise<OpsApp> {
  const settings = JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8')) as { inventory: string };
  // The password as the console's prompt leaves it: in memory, for every connection of the session.
  setInventoryPassword(password);
  let app: OpsApp;
  try {
    startInventoryAhead(settings.inventory);
    loginAhead(inventoryPassword(), firstPageReads(rows));
    await inventoryAhead();
    app = openApp(home);
  } finally {
    setInventoryPassword(undefined);
  }
  apps.push(app);
  await app.inv.pg?.readAhead(LIST_SQL.storeFullCycle, [app.store.repository]);
  return app;
}

/** The role's sessions on the inventory's database (their server processes), as a DBA sees them. */
const sessions = (role: string) => pgAdmin(`SELECT pid FROM pg_stat_activity WHERE usename = '${role}' AND datname = '${db}' ORDER BY pid`).trim().split('\n').filter(Boolean);

beforeAll(async () => {
  adminHome = await homeWithHosts(['lab1'], 'postgres');
  url = JSON.parse(readFileSync(join(adminHome, 'settings.json'), 'utf8')).inventory;
  db = url.slice(url.lastIndexOf('/') + 1);
  pgAdmin(`CREATE ROLE ${dora.role} LOGIN PASSWORD '${dora.password}'; GRANT ${teamRoleNames(db).user} TO ${dora.role};`);
  for (const [inst, env] of [
    [devInst, 'dev'],
    [prodInst, 'prod'],
  ]) {
    const path = join(lab().hosts[0].root, inst);
    asLabUser('sh', ['-c', 'mkdir -p -- "$1"', 'sh', path]);
    await must(cli(adminHome, ['instance', 'add', inst, '--host', 'lab1', '--path', path, '--env', env]));
  }
  await must(cli(adminHome, ['team', 'grant', dora.role, '--env', 'dev', '--as', 'operator']));
});
afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE);`);
  pgAdmin(`DROP ROLE IF EXISTS ${teamRoleNames(db).user}, ${teamRoleNames(db).admin};`);
  pgAdmin(`DROP ROLE IF EXISTS ${dora.role};`);
});

describe("the team console's first frame", () => {
  it("shows only the environments the role is granted, read over one connection; the whole inventory after it, over the worker's", async () => {
    const app = await openAsConsole(homeAs(dora.role), dora.password);
    const model = new UiModel(app, { firstPage: 20 });
    // The first frame's rows came from the first connection alone: no worker thread, no second session.
    const first = sessions(dora.role);
    expect(first).toHaveLength(1);
    const page = model.getState();
    expect(page.instances.map((i) => i.name)).toEqual([devInst]);
    expect(page.page?.instances).toBe(1);
    expect(page.envs).toEqual(['dev']);
    const ui = render(<App model={model} home="instances" />);
    try {
      expect(await until(ui.lastFrame, devInst)).not.toContain(prodInst);
      // Then the rest, as the console does right after its first frame: the worker's connection
      // replaces the first one (closed without being waited for).
      model.reload();
      expect(model.getState().instances.map((i) => i.name)).toEqual([devInst]);
      await until(() => `${sessions(dora.role).length} session(s)`, '1 session(s)');
      // Another server process: the worker's connection, not the first one kept.
      expect(sessions(dora.role)).not.toEqual(first);
      // Rights still the database's, now over the worker: a raw write to a prod row changes nothing.
      expect(app.inv.db.prepare("UPDATE instances SET branch = 'x' WHERE name = ?").run(prodInst).changes).toBe(0);
      expect(pgAdmin(`SELECT coalesce(branch, '-') FROM opsdeck.instances WHERE name = '${prodInst}'`, db).trim()).toBe('-');
      ui.stdin.write('/');
      ui.stdin.write('ff-');
      await until(ui.lastFrame, 'filter "ff-"');
    } finally {
      ui.unmount();
      model.stopLive();
    }
  });

  it('a wrong password is refused in words by the first connection, as the worker refused it', async () => {
    const err = await openAsConsole(homeAs(dora.role), 'not-the-password').then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toContain(`wrong password for role ${dora.role}`);
    expect(err?.message).not.toContain('not-the-password');
  });

  it('opens the team admin the same way: every environment, then writes over the worker', async () => {
    const app = await openAsConsole(adminHome, TEAM_ADMIN.password);
    const model = new UiModel(app, { firstPage: 20 });
    try {
      expect(model.getState().instances.map((i) => i.name)).toEqual([devInst, prodInst]);
      model.reload();
      await must(cli(adminHome, ['env', 'add', `ff${tag}`]));
      app.inv.rights.refresh();
      expect(app.inv.listEnvs().map((e) => e.name)).toContain(`ff${tag}`);
    } finally {
      model.stopLive();
    }
  });
});
