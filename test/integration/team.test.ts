import { PG_MIGRATIONS } from '../../inventory/pg-migrations.js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { teamRoleNames } from '../../inventory/pg-team-roles.js';
import { asLabUser, BACKENDS, cli, homeWithHosts, lab, must, newHome, pgAdmin, TEAM_ADMIN, teamDatabase, treeState, until, type CliResult } from '../helpers.js';

// Issue 11, items 1, 2 and 6: the inventory on PostgreSQL (team init), who ran what written by the
// server, an audit trail operators cannot change, and instance locks that hold across jump boxes.

const l = lab();
const tag = randomBytes(4).toString('hex');
/** Two operators, each logging in as a role of their own, each on a jump box (an opsdeck home) of their own. */
const ops = { alice: { role: `alice_${tag}`, password: `alice-pw-${tag}` }, bob: { role: `bob_${tag}`, password: `bob-pw-${tag}` } };
let team: { db: string; url: string };
const urlAs = (role: string) => team.url.replace(`//${TEAM_ADMIN.role}@`, `//${role}@`);

/** A jump box's home, pointed at the team inventory as `who`. */
function jumpBox(who: keyof typeof ops): string {
  const home = newHome('sqlite');
  writeFileSync(join(home, 'settings.json'), JSON.stringify({ inventory: urlAs(ops[who].role) }));
  return home;
}
const as = (who: keyof typeof ops, home: string, args: string[]): Promise<CliResult> => cli(home, args, { OPSDECK_INVENTORY_PASSWORD: ops[who].password });
const inventoryAs = (who: keyof typeof ops, home: string) => new Inventory(home, { password: ops[who].password });

beforeAll(() => {
  team = teamDatabase();
  for (const o of Object.values(ops)) pgAdmin(`CREATE ROLE ${o.role} LOGIN PASSWORD '${o.password}'; GRANT ${teamRoleNames(team.db).user} TO ${o.role};`);
  // alice is a team admin (admin on every environment; see team-rights.test.ts for the levels).
  pgAdmin(`GRANT ${teamRoleNames(team.db).admin} TO ${ops.alice.role};`);
});
afterAll(() => {
  pgAdmin(`DROP DATABASE IF EXISTS ${team.db} WITH (FORCE);`);
  pgAdmin(`DROP ROLE IF EXISTS ${teamRoleNames(team.db).user}, ${teamRoleNames(team.db).admin};`);
  for (const o of Object.values(ops)) pgAdmin(`DROP ROLE IF EXISTS ${o.role};`);
});

describe('team init', () => {
  it('creates the schema once; a second run says it is up to date; an empty database names the fix', async () => {
    const db = `opsdeck_t_init_${tag}`;
    pgAdmin(`CREATE DATABASE ${db} OWNER ${TEAM_ADMIN.role};`);
    const url = team.url.replace(team.db, db);
    const home = newHome('sqlite');
    const env = { OPSDECK_INVENTORY_PASSWORD: TEAM_ADMIN.password };

    const before = await cli(home, ['--inventory', url, 'env', 'list'], env);
    expect(before.code).toBe(1);
    expect(before.stderr).toContain(`holds no opsdeck inventory (no schema opsdeck)`);
    expect(before.stderr).toContain(`fix: create it once, as a role that may create schemas and roles: opsdeck team init --inventory ${url}`);

    const first = await must(cli(home, ['--inventory', url, 'team', 'init'], env));
    expect(first.stdout).toContain(`created the inventory at ${url} (schema opsdeck, version 0 -> ${PG_MIGRATIONS.length})`);
    const again = await must(cli(home, ['--inventory', url, 'team', 'init', '--json'], env));
    expect(JSON.parse(again.stdout)).toMatchObject({
      inventory: url,
      from: PG_MIGRATIONS.length,
      to: PG_MIGRATIONS.length,
      upToDate: true,
      role: `opsdeck_${db}_user`,
      adminRole: `opsdeck_${db}_admin`,
    });
    await must(cli(home, ['--inventory', url, 'env', 'add', 'prod', '--protected'], env));
    expect(JSON.parse((await must(cli(home, ['--inventory', url, 'env', 'list', '--json'], env))).stdout)).toMatchObject([{ name: 'prod', protected: true }]);
    // The SQLite inventory of that home was never touched.
    expect(JSON.parse((await must(cli(home, ['env', 'list', '--json']))).stdout)).toEqual([]);
    pgAdmin(`DROP DATABASE ${db} WITH (FORCE);`);
    pgAdmin(`DROP ROLE ${teamRoleNames(db).user}, ${teamRoleNames(db).admin};`);
  });

  it('refuses a password in the URL, a password file others can read, a wrong password; each naming the fix', async () => {
    const home = newHome('sqlite');
    const inUrl = await cli(home, ['--inventory', team.url.replace('@', ':secret@'), 'env', 'list']);
    expect(inUrl.code).toBe(2);
    expect(inUrl.stderr).toContain('a password in the inventory URL is refused');
    expect(inUrl.stderr + inUrl.stdout).not.toContain('secret@');

    const file = join(home, 'pw');
    writeFileSync(file, `${TEAM_ADMIN.password}\n`, { mode: 0o644 });
    const open = await cli(home, ['--inventory', team.url, '--inventory-password-file', file, 'env', 'list']);
    expect(open.code).toBe(2);
    expect(open.stderr).toContain(`fix: run: chmod 600 ${file}`);
    writeFileSync(join(home, 'pw600'), `${TEAM_ADMIN.password}\n`, { mode: 0o600 });
    await must(cli(home, ['--inventory', team.url, '--inventory-password-file', join(home, 'pw600'), 'env', 'list']));

    const wrong = await cli(home, ['--inventory', team.url, 'env', 'list'], { OPSDECK_INVENTORY_PASSWORD: 'not-it' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`wrong password for role ${TEAM_ADMIN.role}`);
    expect(wrong.stderr).toContain('fix: give the password in OPSDECK_INVENTORY_PASSWORD, --inventory-password-file FILE (mode 600), or at the prompt');

    const away = await cli(home, ['--inventory', 'postgres://nobody@127.0.0.1:1/none', 'env', 'list'], { OPSDECK_INVENTORY_PASSWORD: 'x' });
    expect(away.code).toBe(1);
    expect(away.stderr).toContain('cannot reach the inventory at postgres://nobody@127.0.0.1:1/none');
  });
});

describe('identity: the audit trail as the server wrote it', () => {
  let home: string;
  beforeAll(async () => {
    home = jumpBox('alice');
    await must(as('alice', home, ['env', 'add', `dev-${tag}`]));
  });

  it('records the role logged in, the Unix user and the jump box of each run', async () => {
    const runs = JSON.parse((await must(as('alice', home, ['runs', '--json']))).stdout);
    expect(runs[0]).toMatchObject({ command: 'env add', status: 'ok', dbRole: ops.alice.role, osUser: userInfo().username, host: hostname() });
    // In the table, written by the server: the role, the client's address, the start time.
    const row = pgAdmin(`SELECT db_role, client_addr FROM opsdeck.runs WHERE id = ${runs[0].id}`, team.db).trim();
    expect(row).toBe(`${ops.alice.role}|127.0.0.1`);
  });

  it('refuses a run that names another role, and steps into another role’s run', () => {
    // A run of alice's still going: bob may neither add steps to it nor end it.
    const alice = inventoryAs('alice', home);
    const alices = alice.startRun('probe', {}, null, false);
    alice.close();
    const inv = inventoryAs('bob', jumpBox('bob'));
    try {
      expect(() =>
        inv.db.prepare("INSERT INTO runs (started_at, os_user, origin, command, params, status, db_role) VALUES ('x', 'bob', 'local', 'forged', '{}', 'ok', ?)").run(ops.alice.role),
      ).toThrow(`the audit trail records the role logged in (${ops.bob.role}), not ${ops.alice.role}`);
      expect(() => inv.addStep({ runId: alices, seq: 9, name: 'x', title: 'x', status: 'done', startedAt: 'x', finishedAt: null, error: null })).toThrow(
        `run ${alices} is not a run of role ${ops.bob.role}`,
      );
      // finish_run() ends only a run of one's own role: alice's stays running.
      const before = pgAdmin(`SELECT status, finished_at FROM opsdeck.runs WHERE id = ${alices}`, team.db);
      expect(inv.db.prepare('SELECT finish_run(?, ?, ?, ?, ?) AS done').get(alices, 'failed', 'forged', null, 1)).toEqual({ done: false });
      expect(pgAdmin(`SELECT status, finished_at FROM opsdeck.runs WHERE id = ${alices}`, team.db)).toBe(before);
      expect(before.trim()).toBe('running|');
    } finally {
      inv.close();
    }
  });

  it('an operator role can append to the audit trail, never update or delete it', () => {
    const inv = inventoryAs('alice', home);
    try {
      const id = inv.startRun('probe', {}, null, false);
      inv.addStep({ runId: id, seq: 1, name: 'one', title: 'one', status: 'done', startedAt: 'x', finishedAt: 'y', error: null });
      for (const sql of [
        "UPDATE runs SET status = 'ok'",
        `UPDATE runs SET db_role = 'someone' WHERE id = ${id}`,
        'DELETE FROM runs',
        "UPDATE run_steps SET error = 'x'",
        'DELETE FROM run_steps',
        'TRUNCATE runs CASCADE',
      ]) {
        expect(() => inv.db.prepare(sql).run(), sql).toThrow(/permission denied for table (runs|run_steps)/);
      }
      inv.finishRun(id, 'ok', null, null, 5);
      expect(inv.getRun(id)).toMatchObject({ status: 'ok', dbRole: ops.alice.role });
      // Ended once: a second end changes nothing.
      inv.finishRun(id, 'failed', 'again', null, 5);
      expect(inv.getRun(id)).toMatchObject({ status: 'ok', error: null });
      expect(inv.runSteps(id).map((s) => s.name)).toEqual(['one']);
    } finally {
      inv.close();
    }
  });
});

describe('instance locks across jump boxes', () => {
  let a: string;
  let b: string;
  const name = `t-lock-${tag}`;
  beforeAll(async () => {
    a = jumpBox('alice');
    await must(as('alice', a, ['env', 'add', `lockenv-${tag}`]));
    const h = l.hosts[0];
    await must(as('alice', a, ['host', 'add', `lh-${tag}`, '--address', h.address, '--port', String(h.port), '--user', l.user, '--key', l.keyFile, '--fingerprint', h.fingerprint]));
    const path = join(h.root, name);
    asLabUser('sh', ['-c', 'rm -rf -- "$1" && mkdir -p -- "$1" && echo keep > "$1/keep.txt"', 'sh', path]);
    await must(as('alice', a, ['instance', 'add', name, '--host', `lh-${tag}`, '--path', path, '--env', `lockenv-${tag}`]));
    b = jumpBox('bob');
    await must(as('alice', a, ['team', 'grant', ops.bob.role, '--env', `lockenv-${tag}`, '--as', 'operator']));
  });

  it('a run from the second jump box exits 3 naming the holder on the first', async () => {
    const holder = inventoryAs('alice', a);
    try {
      holder.acquireLock(name, 'restore', null);
      const r = await as('bob', b, ['backup', name]);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(`instance ${name} is locked by another run: restore by user ${userInfo().username} on ${hostname()}, pid ${process.pid}`);
      // Its unlock cannot take a live session's lock away either.
      const u = await as('bob', b, ['unlock', name, '--yes']);
      expect(u.code).toBe(3);
    } finally {
      holder.releaseLock(name);
      holder.close();
    }
    const ok = await as('bob', b, ['backup', name]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('a holder killed outright (SIGKILL) leaves no lock: the server ends its session, and the next run goes ahead', async () => {
    const script = `
      const { Inventory } = await import(${JSON.stringify(resolve('dist/inventory/index.js'))});
      const inv = new Inventory(${JSON.stringify(a)}, { password: ${JSON.stringify(ops.alice.password)} });
      inv.acquireLock(${JSON.stringify(name)}, 'restore', null);
      process.stdout.write('locked\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until('the holder to take the lock', () => out.includes('locked'));
    const held = await as('bob', b, ['backup', name]);
    expect(held.code).toBe(3);
    expect(held.stderr).toContain(`pid ${child.pid}`);

    child.kill('SIGKILL');
    const watcher = inventoryAs('bob', b);
    try {
      // The server notices the dropped connection and ends the session, its advisory lock with it.
      await until('the server to drop the killed session', () => watcher.lockIsStale(watcher.getLock(name)!));
    } finally {
      watcher.close();
    }
    const r = await as('bob', b, ['backup', name]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse((await must(as('bob', b, ['runs', '--json', '--limit', '1']))).stdout)[0]).toMatchObject({ command: 'backup', status: 'ok', dbRole: ops.bob.role });
  });
});

describe('moving an operator’s inventory into the team one', () => {
  it('inventory export from SQLite, inventory import into PostgreSQL: the same environments, hosts and instances', async () => {
    const solo = await homeWithHosts(['lab1'], 'sqlite');
    const path = join(l.hosts[0].root, `t-move-${tag}`);
    asLabUser('sh', ['-c', 'mkdir -p -- "$1"', 'sh', path]);
    await must(cli(solo, ['instance', 'add', `move-${tag}`, '--host', 'lab1', '--path', path, '--env', 'dev', '--url', 'http://example.test/']));
    await must(cli(solo, ['instance', 'set', `move-${tag}`, '--hook', 'migrate=bin/migrate', '--local', 'config/local.php']));
    const file = join(solo, 'export.json');
    await must(cli(solo, ['inventory', 'export', file]));

    const teamBox = newHome('postgres');
    const imp = await must(cli(teamBox, ['inventory', 'import', file]));
    expect(imp.stdout).toMatch(/imported 2 environments, 1 hosts, 1 instances/);
    for (const what of [
      ['env', 'list', '--json'],
      ['host', 'list', '--json'],
      ['instance', 'show', `move-${tag}`, '--json'],
    ]) {
      const [x, y] = [await must(cli(solo, what)), await must(cli(teamBox, what))];
      const strip = (t: string) => t.replace(/"createdAt": "[^"]+"/g, '');
      expect(strip(y.stdout), what.join(' ')).toBe(strip(x.stdout));
    }
    const runs = JSON.parse((await must(cli(teamBox, ['runs', '--json']))).stdout);
    expect(runs[0]).toMatchObject({ command: 'inventory import', status: 'ok', dbRole: TEAM_ADMIN.role });
  });
});

describe.each(BACKENDS)('a backup and a restore on the %s inventory', (backend) => {
  it('restores the tree as it was backed up, and the audit trail has both runs', async () => {
    const home = await homeWithHosts(['lab1'], backend);
    const name = `t-rt-${backend}-${tag}`;
    const path = join(l.hosts[0].root, name);
    asLabUser('sh', ['-c', 'rm -rf -- "$1" && mkdir -p -- "$1/sub" && echo one > "$1/a.txt" && echo two > "$1/sub/b.txt"', 'sh', path]);
    await must(cli(home, ['instance', 'add', name, '--host', 'lab1', '--path', path, '--env', 'dev']));
    const before = treeState(path);
    const bk = JSON.parse((await must(cli(home, ['backup', name, '--json']))).stdout);
    asLabUser('sh', ['-c', 'echo changed > "$1/a.txt" && rm -- "$1/sub/b.txt" && echo new > "$1/c.txt"', 'sh', path]);
    await must(cli(home, ['restore', name, '--backup', bk.id, '--yes']));
    expect(treeState(path)).toEqual(before);
    const runs = JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '2']))).stdout);
    expect(runs.map((r: { command: string; status: string }) => `${r.command} ${r.status}`)).toEqual(['restore ok', 'backup ok']);
    const steps = JSON.parse((await must(cli(home, ['runs', String(runs[0].id), '--json']))).stdout).steps;
    expect(steps.length).toBeGreaterThan(2);
  });
});
