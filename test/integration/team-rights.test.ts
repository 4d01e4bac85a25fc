import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { teamRoleNames } from '../../inventory/pg-team-roles.js';
import { addInstance, cli, homeWithHosts, must, newHome, pgAdmin, TEAM_ADMIN, type CliResult } from '../helpers.js';

// Issue 11, items 3 and 4: rights per environment, enforced by PostgreSQL (row-level security) and
// said by the client before it starts; instance passwords sealed per environment.

const tag = randomBytes(4).toString('hex');
/** Three operators: a viewer on prod, an operator on staging, an admin on prod. */
const people = {
  viewer: { role: `viewer_${tag}`, password: `v-pw-${tag}` },
  operator: { role: `oper_${tag}`, password: `o-pw-${tag}` },
  admin: { role: `adm_${tag}`, password: `a-pw-${tag}` },
};
type Who = keyof typeof people;
let adminHome: string;
let db: string;
let url: string;
const homes = {} as Record<Who, string>;
const prod = `rp-${tag}`;
const stg = `rs-${tag}`;
let prodPassword: string;

const as = (who: Who, args: string[]): Promise<CliResult> => cli(homes[who], args, { OPSDECK_INVENTORY_PASSWORD: people[who].password });
const inventoryAs = (who: Who) => new Inventory(homes[who], { password: people[who].password });
function withInventory<T>(who: Who, f: (inv: Inventory) => T): T {
  const inv = inventoryAs(who);
  try {
    return f(inv);
  } finally {
    inv.close();
  }
}

beforeAll(async () => {
  adminHome = await homeWithHosts(['lab1'], 'postgres');
  url = JSON.parse(readFileSync(join(adminHome, 'settings.json'), 'utf8')).inventory;
  db = url.slice(url.lastIndexOf('/') + 1);
  await must(cli(adminHome, ['env', 'add', 'staging']));
  for (const [who, p] of Object.entries(people) as [Who, { role: string; password: string }][]) {
    pgAdmin(`CREATE ROLE ${p.role} LOGIN PASSWORD '${p.password}'; GRANT ${teamRoleNames(db).user} TO ${p.role};`);
    homes[who] = newHome('sqlite');
    writeFileSync(join(homes[who], 'settings.json'), JSON.stringify({ inventory: url.replace(`//${TEAM_ADMIN.role}@`, `//${p.role}@`) }));
  }
  await must(cli(adminHome, ['team', 'grant', people.viewer.role, '--env', 'prod', '--as', 'viewer']));
  await must(cli(adminHome, ['team', 'grant', people.operator.role, '--env', 'staging', '--as', 'operator']));
  await must(cli(adminHome, ['team', 'grant', people.admin.role, '--env', 'prod', '--as', 'admin']));
  prodPassword = (await addInstance(adminHome, 'lab1', prod, 'prod')).password;
  await addInstance(adminHome, 'lab1', stg, 'staging');
});
afterAll(() => {
  pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE);`);
  pgAdmin(`DROP ROLE IF EXISTS ${teamRoleNames(db).user}, ${teamRoleNames(db).admin};`);
  for (const p of Object.values(people)) pgAdmin(`DROP ROLE IF EXISTS ${p.role};`);
});

describe('grants', () => {
  it('team who lists who may do what where; only a team admin grants (exit 2 for anyone else)', async () => {
    const who = JSON.parse((await must(as('viewer', ['team', 'who', '--json']))).stdout);
    expect(who.grants.map((g: { role: string; env: string; level: string }) => `${g.role} ${g.env} ${g.level}`).sort()).toEqual(
      [`${people.admin.role} prod admin`, `${people.operator.role} staging operator`, `${people.viewer.role} prod viewer`].sort(),
    );
    expect(who.grants[0].grantedBy).toBe(TEAM_ADMIN.role);
    expect(who.teamAdmins).toContain(TEAM_ADMIN.role); // and any made by other test files: roles are the cluster's
    const text = (await must(as('admin', ['team', 'who', '--env', 'prod']))).stdout;
    expect(text).toContain(`team admins (admin everywhere, may grant): ${TEAM_ADMIN.role}`);
    expect(text).not.toContain('staging');

    // An admin of prod is no team admin: it may not hand out rights, by the command or by raw SQL.
    const r = await as('admin', ['team', 'grant', people.operator.role, '--env', 'prod', '--as', 'admin']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`role ${people.admin.role} is not a team admin`);
    withInventory('admin', (inv) => {
      expect(() => inv.db.prepare("INSERT INTO grants (role, env, level, granted_at) VALUES (?, 'prod', 'admin', 'x')").run(people.operator.role)).toThrow(/permission denied for table grants/);
    });
    // The grant and its refusal are runs in the audit trail.
    const runs = JSON.parse((await must(cli(adminHome, ['runs', '--json', '--limit', '50']))).stdout) as { command: string; status: string; dbRole: string }[];
    expect(runs.filter((x) => x.command === 'team grant').map((x) => `${x.dbRole} ${x.status}`)).toContain(`${TEAM_ADMIN.role} ok`);
  });
});

describe('each role sees and does only what it was granted', () => {
  it('sees only the instances of its environments', async () => {
    const names = async (who: Who) => (JSON.parse((await must(as(who, ['instance', 'list', '--json']))).stdout) as { name: string }[]).map((i) => i.name);
    expect(await names('viewer')).toEqual([prod]);
    expect(await names('operator')).toEqual([stg]);
    expect(await names('admin')).toEqual([prod]);
    expect((JSON.parse((await must(as('operator', ['env', 'list', '--json']))).stdout) as { name: string }[]).map((e) => e.name)).toEqual(['staging']);
  });

  it('the client refuses before starting (exit 2) and names who may; what is granted runs', async () => {
    const v = await as('viewer', ['backup', prod]);
    expect(v.code, v.stderr).toBe(2);
    expect(v.stderr).toContain(`not allowed: backup on prod (protected) needs operator; you are viewer (instance ${prod})`);
    // Only this inventory's team admins: those other test files' inventories make are not named.
    expect(v.stderr.trimEnd().split('\n').pop()).toBe(`  fix: ask one who may: ${people.admin.role} (admin), ${TEAM_ADMIN.role} (team admin)`);

    const u = await as('operator', ['upgrade', stg, '--to', 'v2.0.0', '--yes']);
    expect(u.code, u.stderr).toBe(2);
    expect(u.stderr).toContain(`not allowed: upgrade on staging needs admin; you are operator`);
    // Prod's instance does not exist for the operator of staging.
    const p = await as('operator', ['backup', prod]);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain(`no instance named ${prod}`);

    const ok = await as('operator', ['backup', stg, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    // The password was opened for that run, and the use recorded with the role and the run.
    const run = JSON.parse((await must(as('operator', ['runs', '--json', '--limit', '1']))).stdout)[0];
    expect(run).toMatchObject({ command: 'backup', status: 'ok', dbRole: people.operator.role });
    expect(pgAdmin(`SELECT db_role, env, instance, run_id, purpose FROM opsdeck.secret_uses WHERE instance = '${stg}' AND purpose = 'open' ORDER BY id DESC LIMIT 1`, db).trim()).toBe(
      `${people.operator.role}|staging|${stg}|${run.id}|open`,
    );
    // The levels the console's keys consult, per action.
    withInventory('operator', (inv) => {
      expect(inv.rights.mayOn('restore', 'staging', false)).toEqual({ ok: true });
      expect(inv.rights.mayOn('clone', 'staging', false)).toMatchObject({ ok: false, need: 'admin' });
    });
    withInventory('admin', (inv) => expect(inv.rights.mayOn('restore', 'prod', true)).toEqual({ ok: true }));
  });

  it('the database refuses the same writes made with raw SQL as that role', () => {
    const before = pgAdmin(`SELECT url, hooks FROM opsdeck.instances WHERE name = '${prod}'`, db);
    withInventory('viewer', (inv) => {
      // A row it may only read: an UPDATE finds nothing to change; an INSERT is refused.
      expect(inv.db.prepare("UPDATE instances SET url = 'http://evil.example/' WHERE name = ?").run(prod).changes).toBe(0);
      expect(inv.db.prepare('DELETE FROM instances WHERE name = ?').run(prod).changes).toBe(0);
      expect(() => inv.db.prepare("INSERT INTO backups (id, instance, kind, created_at, manifest) VALUES ('forged', ?, 'manual', 'x', '{}')").run(prod)).toThrow(
        /row-level security policy for table "backups"/,
      );
      expect(() => inv.db.prepare("INSERT INTO locks (instance, pid, host, \"user\", command, started_at) VALUES (?, 1, 'x', 'x', 'x', 'x')").run(prod)).toThrow(
        /row-level security policy for table "locks"/,
      );
    });
    expect(pgAdmin(`SELECT url, hooks FROM opsdeck.instances WHERE name = '${prod}'`, db)).toBe(before);

    withInventory('operator', (inv) => {
      // Prod's rows are not there at all for the operator of staging.
      expect(inv.db.prepare('SELECT name FROM instances').all()).toEqual([{ name: stg }]);
      expect(inv.db.prepare('SELECT count(*)::int AS n FROM envs WHERE name = ?').get('prod')).toEqual({ n: 0 });
      expect(inv.db.prepare('UPDATE instances SET url = NULL WHERE name = ?').run(prod).changes).toBe(0);
      // On its own environment an operator runs operations, but does not change an instance's settings.
      expect(() => inv.db.prepare(`UPDATE instances SET hooks = '{"migrate":["x"]}' WHERE name = ?`).run(stg)).toThrow(
        `role ${people.operator.role} may not change the settings of instance ${stg} (needs admin on environment staging)`,
      );
      expect(inv.db.prepare("UPDATE instances SET revision = 'abc' WHERE name = ?").run(stg).changes).toBe(1);
      expect(() => inv.db.prepare("INSERT INTO envs (name, protected, created_at) VALUES ('mine', 0, 'x')").run()).toThrow(/row-level security policy for table "envs"/);
      expect(() => inv.db.prepare('SELECT grant_env(?, ?, ?)').get(people.operator.role, 'prod', 'admin')).toThrow(`role ${people.operator.role} is not a team admin`);
    });
  });
});

describe('secrets per environment', () => {
  it('a password is sealed with its environment’s key; a granted role opens it (recorded); a revoked one cannot', async () => {
    expect(pgAdmin(`SELECT left(db_secret, 3) FROM opsdeck.instances WHERE name = '${prod}'`, db).trim()).toBe('e1:');
    // No operator may read the keys as a table.
    withInventory('admin', (inv) => expect(() => inv.db.prepare('SELECT key FROM env_keys').all()).toThrow(/permission denied for table env_keys/));

    // From another jump box (its own home, its own key file), the viewer of prod opens it.
    expect(withInventory('viewer', (inv) => inv.dbPassword(prod))).toBe(prodPassword);
    // Outside a run (the health panels open it at every probe) a use is recorded once an hour per role and instance.
    expect(withInventory('viewer', (inv) => inv.dbPassword(prod))).toBe(prodPassword);
    expect(pgAdmin(`SELECT db_role, env, instance, purpose FROM opsdeck.secret_uses WHERE db_role = '${people.viewer.role}'`, db).trim()).toBe(`${people.viewer.role}|prod|${prod}|open`);
    // The operator of staging has no right on prod's key, even asking the function directly.
    withInventory('operator', (inv) =>
      expect(() => inv.db.prepare("SELECT env_key('prod', NULL, 'open', NULL)").get()).toThrow(`role ${people.operator.role} has no right to open the secrets of environment prod`),
    );
    // A viewer may open (health needs the password) but not seal.
    withInventory('viewer', (inv) => expect(() => inv.setDbPassword(prod, 'x')).toThrow(`has no right to seal the secrets of environment prod`));

    await must(cli(adminHome, ['team', 'revoke', people.viewer.role, '--env', 'prod']));
    withInventory('viewer', (inv) => {
      expect(inv.getInstance(prod)).toBeUndefined();
      expect(() => inv.db.prepare("SELECT env_key('prod', ?, 'open', NULL)").get(prod)).toThrow(`role ${people.viewer.role} has no right to open the secrets of environment prod`);
    });
    // The audit of secret uses is append-only for everyone but its owner.
    withInventory('admin', (inv) => expect(() => inv.db.prepare('DELETE FROM secret_uses').run()).toThrow(/permission denied for table secret_uses/));
  });
});

describe('shell completion on the team inventory', () => {
  it('offers each operator the instances their role may see, never a password', async () => {
    // The admin is granted prod only, the operator staging only (the viewer was revoked above).
    const admin = (await must(as('admin', ['__complete', 'instances']))).stdout.split('\n').filter(Boolean);
    expect(admin).toEqual([prod]);
    const operator = (await must(as('operator', ['__complete', 'instances']))).stdout.split('\n').filter(Boolean);
    expect(operator).toEqual([stg]);
    // The names are kept a moment in the operator's home for the next tab; the password is not.
    const cached = readFileSync(join(homes.admin, 'cache', 'names-instances'), 'utf8');
    expect(cached.trim()).toBe(prod);
    expect(cached).not.toContain(people.admin.password);
    // Without a password to connect with, a tab offers nothing rather than an error or a prompt.
    const none = await cli(homes.viewer, ['__complete', 'instances'], { OPSDECK_INVENTORY_PASSWORD: 'wrong' });
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
  });
});
