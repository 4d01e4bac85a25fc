import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { addLayouts } from '../../fixtures/lab.js';
import { addInstance, cli, dbState, homeWithHosts, lab, must, pgAdmin, sql } from '../helpers.js';

type Inst = Awaited<ReturnType<typeof addInstance>>;

/** SQL as the instance's own role, as its app (or its migrations) would run it. */
function asApp(i: Inst, text: string): string {
  return execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(lab().pg.port), '-U', i.role, '-d', i.db], {
    input: text,
    env: { ...process.env, PGPASSWORD: i.password },
  }).toString();
}

/** Everything a role may do in a database, as one sorted list a person can read. */
function privilegesOf(db: string, role: string): string[] {
  return sql(
    db,
    `SELECT 'schema ' || nspname || ' ' || p FROM pg_namespace, unnest(ARRAY['USAGE', 'CREATE']) p WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' AND has_schema_privilege('${role}', oid, p)
     UNION ALL SELECT 'table ' || table_schema || '.' || table_name || ' ' || privilege_type FROM information_schema.role_table_grants WHERE grantee = '${role}'
     ORDER BY 1`,
  )
    .split('\n')
    .filter(Boolean);
}

async function lastRun(home: string, instance: string) {
  return JSON.parse((await must(cli(home, ['runs', '--instance', instance, '--limit', '1', '--json']))).stdout)[0];
}

describe('PostgreSQL layouts in the wild: restore, clone and drill are exact', () => {
  let home: string;
  let prod: Inst;
  let uat: Inst;
  let roles: { owner2: string; report: string };

  beforeAll(async () => {
    home = await homeWithHosts(['lab1', 'lab2']);
    prod = await addInstance(home, 'lab1', 'lay-prod', 'prod');
    roles = addLayouts(prod);
    uat = await addInstance(home, 'lab2', 'lay-uat', 'dev');
  });

  it('backup, change everything, restore: schema, owners, grants, rows, sequences and large objects are as backed up', async () => {
    const before = dbState(prod.db);
    // The layout is what the fixture promises (a test of the test).
    expect(before).toContain(`ALTER SCHEMA public OWNER TO ${prod.role};`);
    expect(before).toContain(`ALTER TABLE audit.events OWNER TO ${roles.owner2};`);
    expect(before).toContain(`GRANT SELECT ON TABLE billing.invoices TO ${roles.report};`);
    expect(before).toMatch(/CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA billing;/);
    expect(before).toMatch(/SELECT pg_catalog\.lo_create\('\d+'\);/);
    expect(before).toContain(`SELECT pg_catalog.setval('billing.invoice_number', 4711, true);`);
    const b = JSON.parse((await must(cli(home, ['backup', 'lay-prod', '--json']))).stdout);

    // After the backup: rows, sequences, grants, owners, objects and large objects all change.
    asApp(
      prod,
      `INSERT INTO customers (email) VALUES ('late@example.com');
       SELECT nextval('billing.invoice_number');
       UPDATE billing.invoices SET amount = 0;
       SELECT lo_from_bytea(0, 'a newer large object');
       CREATE TABLE public.newer (x int);
       CREATE SCHEMA scratch;
       DROP VIEW billing.summary;
       GRANT INSERT ON billing.invoices TO ${roles.report};
       REVOKE SELECT ON customers FROM ${roles.report};
       REVOKE CREATE ON SCHEMA public FROM ${roles.owner2};
       GRANT CREATE ON SCHEMA public TO ${roles.report};
       ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO ${roles.report};
       ALTER TABLE public.settings OWNER TO ${prod.role};`,
    );
    expect(dbState(prod.db)).not.toEqual(before);

    const r = await cli(home, ['restore', 'lay-prod', '--backup', b.id, '--yes', '--allow-protected']);
    expect(r.code, r.stderr).toBe(0);
    expect(dbState(prod.db)).toEqual(before);
    expect(r.stderr).not.toMatch(/not as in the source/);
    expect(await lastRun(home, 'lay-prod')).toMatchObject({ command: 'restore', status: 'ok' });
    // What a user checks by hand: the report role reads again, the app goes on numbering from the backup.
    expect(sql(prod.db, `SET ROLE ${roles.report}; SELECT count(*) FROM customers; SELECT sum(amount) FROM billing.invoices;`).trim()).toBe('3\n22.75');
    expect(asApp(prod, `SELECT nextval('billing.invoice_number'); SELECT convert_from(lo_get(doc), 'UTF8') FROM billing.invoices WHERE doc IS NOT NULL;`).trim()).toBe(
      '4712\ninvoice one, as a large object',
    );
  });

  it('restoring the instance onto itself gives the reporting role back exactly its grants', async () => {
    const grants = privilegesOf(prod.db, roles.report);
    expect(grants).toEqual(expect.arrayContaining(['schema billing USAGE', 'schema audit USAGE', 'table billing.invoices SELECT', 'table public.customers SELECT', 'table audit.events SELECT']));
    const b = JSON.parse((await must(cli(home, ['backup', 'lay-prod', '--json']))).stdout);
    asApp(prod, `REVOKE ALL ON ALL TABLES IN SCHEMA billing FROM ${roles.report}; REVOKE USAGE ON SCHEMA audit FROM ${roles.report}; GRANT DELETE ON customers TO ${roles.report};`);
    expect(privilegesOf(prod.db, roles.report)).not.toEqual(grants);
    await must(cli(home, ['restore', 'lay-prod', '--backup', b.id, '--yes', '--allow-protected']));
    expect(privilegesOf(prod.db, roles.report)).toEqual(grants);
  });

  it('what the app role could not put back is refused before anything changes: exit 1, rolled back, the fix named', async () => {
    const b = JSON.parse((await must(cli(home, ['backup', 'lay-prod', '--json']))).stdout);
    // The reporting role's own view on the app's table, in the app's schema: a restore would drop it
    // along with the table, and could not create it again as that role.
    sql(prod.db, `CREATE VIEW billing.report_view AS SELECT count(*) AS n FROM billing.invoices; ALTER VIEW billing.report_view OWNER TO ${roles.report};`);
    const before = dbState(prod.db);
    const r = await cli(home, ['restore', 'lay-prod', '--backup', b.id, '--yes', '--allow-protected']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`replacing what role ${prod.role} owns in database ${prod.db} would drop what roles it is not a member of own: view billing.report_view (owned by ${roles.report})`);
    expect(r.stderr).toMatch(/grant the role their owners \(GRANT owner TO role\), or move them; nothing was changed/);
    expect(dbState(prod.db)).toEqual(before);
    expect(await lastRun(home, 'lay-prod')).toMatchObject({ command: 'restore', status: 'rolled-back', failedStep: 'data' });
    sql(prod.db, 'DROP VIEW billing.report_view;');
  });

  it('a clone onto another instance: the owner is mapped to the target role, what cannot be mapped is said in the run log', async () => {
    // A grant to a role the target's server will not have: the role is dropped after the backup.
    const gone = `${prod.role}_gone`;
    pgAdmin(`DROP ROLE IF EXISTS ${gone}; CREATE ROLE ${gone} NOLOGIN;`);
    asApp(prod, `GRANT SELECT ON customers TO ${gone};`);
    await must(cli(home, ['backup', 'lay-prod']));
    asApp(prod, `REVOKE SELECT ON customers FROM ${gone};`);
    pgAdmin(`DROP ROLE ${gone};`);
    const source = dbState(prod.db);

    const r = await cli(home, ['clone', 'lay-prod', 'lay-uat', '--from-backup', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`1 grant to role ${gone} not restored: no such role here`);
    expect(r.stderr).toContain(`objects owned by ${roles.owner2} in the backup, by ${uat.role} here: ${uat.role} is not a member of ${roles.owner2}`);
    expect(await lastRun(home, 'lay-uat')).toMatchObject({ command: 'clone', status: 'ok' });
    // The target is the source with its own role in place of the source's two: nothing else differs.
    // (Its CREATE on public, granted to owner2, is the owner's own here: no grant of its own.)
    const mapped = source
      .replace(new RegExp(`\\b(${prod.role}|${roles.owner2})\\b`, 'g'), uat.role)
      .replace(`--\n-- Name: SCHEMA public; Type: ACL; Schema: -; Owner: ${uat.role}\n--\n\nGRANT CREATE ON SCHEMA public TO ${uat.role};\n\n\n`, '');
    expect(dbState(uat.db)).toEqual(mapped);
    expect(
      sql(
        uat.db,
        `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'billing', 'audit') AND c.relowner <> '${uat.role}'::regrole AND c.relkind <> 'i'`,
      ).trim(),
    ).toBe('0');
  });

  it('a drill of such a database restores it, checks it and succeeds', async () => {
    await must(cli(home, ['backup', 'lay-prod']));
    const r = await cli(home, ['drill', 'lay-prod', '--target', 'lay-uat', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ source: 'lay-prod', target: 'lay-uat', ok: true });
    expect(sql(uat.db, 'SELECT count(*) FROM customers; SELECT last_value FROM billing.invoice_number;').trim()).toBe('3\n4712');
  });
});
