import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_GRANTS, PG_MIGRATIONS } from '../../inventory/pg-migrations.js';
import { PG_CHANGES_GRANTS, PG_RIGHTS_GRANTS } from '../../inventory/pg-rights.js';
import { LEGACY_ROLES, teamRoleNames, withRoles } from '../../inventory/pg-team-roles.js';
import { parseInventoryUrl } from '../../inventory/pg-target.js';
import { PgDriver } from '../../inventory/postgres.js';
import { cli, lab, must, newHome, pgAdmin, TEAM_ADMIN, teamDatabase, type CliResult } from '../helpers.js';

// Issue 11, item 3: the group roles are each inventory's own. Two inventories on one cluster (two
// teams, or prod and a test inventory) share no role: an admin of one is nobody on the other, by the
// command and by raw SQL. An inventory made when the roles were the cluster's keeps working after
// team init upgrades it, and the cluster's roles then give nothing there.

const tag = randomBytes(4).toString('hex');
const people = {
  ann: { role: `ann_${tag}`, password: `ann-pw-${tag}` },
  ben: { role: `ben_${tag}`, password: `ben-pw-${tag}` },
  cara: { role: `cara_${tag}`, password: `cara-pw-${tag}` },
  dave: { role: `dave_${tag}`, password: `dave-pw-${tag}` },
};
type Who = keyof typeof people;
const dbs: string[] = [];

/** A jump box of `who` pointed at the inventory at `url` (the team admin's URL, as `who`). */
function as(who: Who, url: string, args: string[]): Promise<CliResult> {
  return cli(newHome('sqlite'), ['--inventory', url.replace(`//${TEAM_ADMIN.role}@`, `//${people[who].role}@`), ...args], { OPSDECK_INVENTORY_PASSWORD: people[who].password });
}
const asAdmin = (url: string, args: string[]) => cli(newHome('sqlite'), ['--inventory', url, ...args], { OPSDECK_INVENTORY_PASSWORD: TEAM_ADMIN.password });

/** Raw SQL as `who`, through its own connection: what a client skipping opsdeck's checks would send. */
async function rawSql(who: Who, db: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ host: '127.0.0.1', port: lab().pg.port, user: people[who].role, password: people[who].password, database: db });
  await c.connect();
  try {
    await c.query('SET search_path = opsdeck');
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

beforeAll(() => {
  for (const p of Object.values(people)) pgAdmin(`CREATE ROLE ${p.role} LOGIN PASSWORD '${p.password}';`);
});
afterAll(() => {
  for (const db of dbs) {
    pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE);`);
    pgAdmin(`DROP ROLE IF EXISTS ${teamRoleNames(db).user}, ${teamRoleNames(db).admin};`);
  }
  for (const p of Object.values(people)) pgAdmin(`DROP ROLE IF EXISTS ${p.role};`);
});

describe('two inventories on one cluster', () => {
  let a: { db: string; url: string };
  let b: { db: string; url: string };
  beforeAll(async () => {
    a = teamDatabase();
    b = teamDatabase();
    dbs.push(a.db, b.db);
    const ra = teamRoleNames(a.db);
    const rb = teamRoleNames(b.db);
    // ann: team admin of A, and an operator's login on B (so B's rights, not its schema, refuse her).
    pgAdmin(`GRANT ${ra.user}, ${ra.admin} TO ${people.ann.role}; GRANT ${rb.user} TO ${people.ann.role};`);
    // cara: on A only.
    pgAdmin(`GRANT ${ra.user} TO ${people.cara.role};`);
    for (const inv of [a, b]) await must(asAdmin(inv.url, ['env', 'add', 'prod', '--protected']));
    // On B ann may look at prod, no more.
    await must(asAdmin(b.url, ['team', 'grant', people.ann.role, '--env', 'prod', '--as', 'viewer']));
  });

  it('each has roles named after its database, made by team init', () => {
    expect(teamRoleNames(a.db)).toEqual({ user: `opsdeck_${a.db}_user`, admin: `opsdeck_${a.db}_admin` });
    const exists = (r: string) => pgAdmin(`SELECT count(*) FROM pg_roles WHERE rolname = '${r}'`).trim();
    for (const db of [a.db, b.db]) for (const r of Object.values(teamRoleNames(db))) expect(exists(r)).toBe('1');
  });

  it("an admin of one is a team admin there and nobody's admin on the other (the command refuses, exit 2)", async () => {
    await must(as('ann', a.url, ['env', 'add', 'qa']));
    await must(as('ann', a.url, ['team', 'grant', people.ben.role, '--env', 'qa', '--as', 'viewer']));
    const whoA = JSON.parse((await must(as('ann', a.url, ['team', 'who', '--json']))).stdout);
    expect(whoA.teamAdmins).toEqual([people.ann.role, TEAM_ADMIN.role].sort());
    expect(whoA.roles).toEqual(teamRoleNames(a.db));

    const grant = await as('ann', b.url, ['team', 'grant', people.ann.role, '--env', 'prod', '--as', 'admin']);
    expect(grant.code, grant.stderr).toBe(2);
    expect(grant.stderr).toContain(`role ${people.ann.role} is not a team admin of this inventory`);
    const add = await as('ann', b.url, ['env', 'add', 'qa']);
    expect(add.code, add.stderr).toBe(2);
    const revoke = await as('ann', b.url, ['team', 'revoke', people.ann.role, '--env', 'prod']);
    expect(revoke.code, revoke.stderr).toBe(2);
    // B names only its own team admin, and still has only its own environment.
    expect(JSON.parse((await must(as('ann', b.url, ['team', 'who', '--json']))).stdout).teamAdmins).toEqual([TEAM_ADMIN.role]);
    expect(JSON.parse((await must(as('ann', b.url, ['env', 'list', '--json']))).stdout).map((e: { name: string }) => e.name)).toEqual(['prod']);
    expect(JSON.parse((await must(asAdmin(b.url, ['env', 'list', '--json']))).stdout).map((e: { name: string }) => e.name)).toEqual(['prod']);
  });

  it('raw SQL as that role meets the same refusals on the other inventory', async () => {
    expect((await rawSql('ann', a.db, 'SELECT is_team_admin() AS ok')).rows[0].ok).toBe(true);
    expect((await rawSql('ann', b.db, 'SELECT is_team_admin() AS ok')).rows[0].ok).toBe(false);
    await expect(rawSql('ann', b.db, 'SELECT grant_env($1, $2, $3)', [people.ann.role, 'prod', 'admin'])).rejects.toThrow(`is not a team admin of this inventory`);
    await expect(rawSql('ann', b.db, "INSERT INTO envs (name, protected, created_at) VALUES ('raw', 0, 'now')")).rejects.toThrow('row-level security');
    await expect(rawSql('ann', b.db, "INSERT INTO grants (role, env, level, granted_at) VALUES ($1, 'prod', 'admin', 'now')", [people.ann.role])).rejects.toThrow('permission denied');
    await expect(rawSql('ann', b.db, "UPDATE envs SET protected = 0 WHERE name = 'prod' RETURNING name").then((r) => r.rowCount)).resolves.toBe(0);
    expect(pgAdmin("SELECT protected FROM opsdeck.envs WHERE name = 'prod'", b.db).trim()).toBe('1');
    // A role of A's only cannot even reach B's schema.
    await expect(rawSql('cara', b.db, 'SELECT count(*) FROM opsdeck.envs')).rejects.toThrow('permission denied for schema opsdeck');
    const c = await as('cara', b.url, ['env', 'list']);
    expect(c.code, c.stderr).toBe(2);
    expect(c.stderr).toContain(`GRANT ${teamRoleNames(b.db).user} TO ${people.cara.role};`);
    expect(pgAdmin(`SELECT level FROM opsdeck.grants WHERE role = '${people.ann.role}'`, b.db).trim()).toBe('viewer');
  });
});

describe('row-level security evaluated once per query', () => {
  let c: { db: string; url: string };
  beforeAll(async () => {
    c = teamDatabase();
    dbs.push(c.db);
    pgAdmin(`GRANT ${teamRoleNames(c.db).user} TO ${people.cara.role};`);
    // Two hosts, each with an instance of its own environment (rows written as the owner would).
    pgAdmin(
      `SET search_path = opsdeck;
       INSERT INTO envs (name, protected, created_at) VALUES ('e1', 0, 'now'), ('e2', 0, 'now');
       INSERT INTO hosts (name, address, "user", created_at) VALUES ('h1', '127.0.0.1', 'ops', 'now'), ('h2', '127.0.0.2', 'ops', 'now');
       INSERT INTO instances (name, host, path, env, created_at) VALUES ('i1', 'h1', '/srv/i1', 'e1', 'now'), ('i2', 'h2', '/srv/i2', 'e2', 'now');`,
      c.db,
    );
    await must(asAdmin(c.url, ['team', 'grant', people.cara.role, '--env', 'e1', '--as', 'viewer']));
  });

  it('a host is seen by who sees one of its instances, and only by them', async () => {
    expect((await rawSql('cara', c.db, 'SELECT name FROM hosts ORDER BY name')).rows.map((r) => r.name)).toEqual(['h1']);
    expect(JSON.parse((await must(as('cara', c.url, ['host', 'list', '--json']))).stdout).map((h: { name: string }) => h.name)).toEqual(['h1']);
    expect(JSON.parse((await must(as('cara', c.url, ['instance', 'list', '--json']))).stdout).map((h: { name: string }) => h.name)).toEqual(['i1']);
    // The owner (team admin) sees both.
    expect(JSON.parse((await must(asAdmin(c.url, ['host', 'list', '--json']))).stdout).map((h: { name: string }) => h.name)).toEqual(['h1', 'h2']);
    await must(asAdmin(c.url, ['team', 'grant', people.cara.role, '--env', 'e2', '--as', 'viewer']));
    expect((await rawSql('cara', c.db, 'SELECT name FROM hosts ORDER BY name')).rows.map((r) => r.name)).toEqual(['h1', 'h2']);
  });
});

describe('upgrade of an inventory made when the roles were the cluster-wide opsdeck_user and opsdeck_admin', () => {
  const db = `opsdeck_t_up_${tag}`;
  const url = () => `postgres://${TEAM_ADMIN.role}@127.0.0.1:${lab().pg.port}/${db}`;
  const roles = teamRoleNames(db);
  const before = PG_MIGRATIONS.indexOf(PG_MIGRATIONS.find((m) => m.includes('CREATE TABLE team_roles'))!);

  beforeAll(() => {
    pgAdmin(`DO $$ BEGIN CREATE ROLE ${TEAM_ADMIN.role} LOGIN CREATEROLE PASSWORD '${TEAM_ADMIN.password}'; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;`);
    pgAdmin(`CREATE DATABASE ${db} OWNER ${TEAM_ADMIN.role};`);
    dbs.push(db);
    for (const r of Object.values(LEGACY_ROLES)) pgAdmin(`DO $$ BEGIN CREATE ROLE ${r} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;`);
    // What team init did then: the migrations up to this one and the grants, naming the cluster's roles.
    const d = new PgDriver(parseInventoryUrl(url()), TEAM_ADMIN.password, { forInit: true });
    try {
      d.transaction(() => {
        d.exec('CREATE SCHEMA opsdeck');
        d.exec('CREATE TABLE opsdeck.schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_by TEXT NOT NULL DEFAULT session_user)');
        for (let v = 0; v < before; v++) {
          d.exec(withRoles(PG_MIGRATIONS[v], LEGACY_ROLES));
          d.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v + 1);
        }
        for (const g of [PG_GRANTS, PG_RIGHTS_GRANTS, PG_CHANGES_GRANTS]) d.exec(withRoles(g, LEGACY_ROLES));
        for (const e of ['prod', 'staging']) d.prepare("INSERT INTO envs (name, protected, created_at) VALUES (?, 0, 'then')").run(e);
        d.prepare('SELECT grant_env(?, ?, ?)').get(people.ben.role, 'staging', 'operator');
        // A grant to the group role itself: every operator views prod.
        d.prepare('SELECT grant_env(?, ?, ?)').get(LEGACY_ROLES.user, 'prod', 'viewer');
      })();
    } finally {
      d.close();
    }
    pgAdmin(`GRANT ${LEGACY_ROLES.user} TO ${people.ann.role}, ${people.ben.role}; GRANT ${LEGACY_ROLES.admin} TO ${people.ann.role};`);
    // A cluster where the admin role was made a member of the user role (a common shortcut): the
    // upgrade must not carry the cluster's roles over as members (dave, below, would come in by them).
    pgAdmin(`GRANT ${LEGACY_ROLES.user} TO ${LEGACY_ROLES.admin};`);
  });
  afterAll(() => pgAdmin(`REVOKE ${LEGACY_ROLES.user} FROM ${LEGACY_ROLES.admin};`));

  it('works as before under the old roles; this opsdeck asks for the upgrade', async () => {
    expect((await rawSql('ben', db, 'SELECT count(*)::int AS n FROM envs')).rows[0].n).toBe(2);
    const r = await as('ben', url(), ['env', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`is at schema version ${before}; this opsdeck needs ${PG_MIGRATIONS.length}`);
  });

  it('team init moves members, admins and grants to its own roles; grants hold; the cluster roles give nothing here', async () => {
    const up = await must(asAdmin(url(), ['team', 'init', '--json']));
    expect(JSON.parse(up.stdout)).toMatchObject({ from: before, to: PG_MIGRATIONS.length, role: roles.user, adminRole: roles.admin });
    const member = (m: Who, r: string) => pgAdmin(`SELECT pg_has_role('${people[m].role}', '${r}', 'MEMBER')`).trim();
    expect([member('ann', roles.user), member('ann', roles.admin), member('ben', roles.user), member('ben', roles.admin)]).toEqual(['t', 't', 't', 'f']);

    // ben: operator on staging, viewer on prod through the (renamed) grant to every operator.
    expect(JSON.parse((await must(as('ben', url(), ['env', 'list', '--json']))).stdout).map((e: { name: string }) => e.name)).toEqual(['prod', 'staging']);
    const who = JSON.parse((await must(as('ann', url(), ['team', 'who', '--json']))).stdout);
    expect(who.grants.map((g: { role: string; env: string; level: string }) => `${g.role} ${g.env} ${g.level}`).sort()).toEqual([`${people.ben.role} staging operator`, `${roles.user} prod viewer`]);
    expect(who.teamAdmins).toContain(people.ann.role);
    // ann is still a team admin; ben still no more than an operator.
    await must(as('ann', url(), ['team', 'grant', people.ben.role, '--env', 'prod', '--as', 'operator']));
    const refused = await as('ben', url(), ['team', 'grant', people.ben.role, '--env', 'prod', '--as', 'admin']);
    expect(refused.code).toBe(2);

    // dave joins the cluster's roles after the upgrade: they reach nothing here any more.
    pgAdmin(`GRANT ${LEGACY_ROLES.user}, ${LEGACY_ROLES.admin} TO ${people.dave.role};`);
    expect(pgAdmin(`SELECT has_schema_privilege('${LEGACY_ROLES.user}', 'opsdeck', 'USAGE')`, db).trim()).toBe('f');
    await expect(rawSql('dave', db, 'SELECT count(*) FROM opsdeck.envs')).rejects.toThrow('permission denied for schema opsdeck');
    const d = await as('dave', url(), ['env', 'list']);
    expect(d.code, d.stderr).toBe(2);
    expect(d.stderr).toContain(`role ${people.dave.role} may not use the inventory at ${url().replace(TEAM_ADMIN.role, people.dave.role)}: permission denied for schema opsdeck`);
    expect(d.stderr).toContain(`fix: ask its team admin to make it an operator there: GRANT ${roles.user} TO ${people.dave.role};`);

    // Again: nothing to do.
    expect(JSON.parse((await must(asAdmin(url(), ['team', 'init', '--json']))).stdout)).toMatchObject({ upToDate: true, role: roles.user });
  });
});
