import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pagilaAvailable } from '../../fixtures/lab.js';
import { addInstance, cli, dbSql, dbState, homeWithHosts, must, treeState, ENGINES, type Engine } from '../helpers.js';

// clone --redact (issue 13, item 4), on pagila's customers (PostgreSQL) and sakila's (MariaDB).

const RULES = [
  '# personal data never leaves production unredacted',
  "customer.email = CONCAT('user', customer_id, '@example.invalid')",
  "customer.first_name = 'Anon'",
  "UPDATE customer SET last_name = CONCAT('Person ', customer_id);",
].join('\n');

const TABLES = ['customer', 'rental', 'payment', 'actor', 'address'];
const q = (engine: Engine, t: string) => (engine === 'postgres' ? `public.${t}` : t);
const counts = (i: { db: string; engine: Engine }) => Object.fromEntries(TABLES.map((t) => [t, Number(dbSql(i, `SELECT count(*) FROM ${q(i.engine, t)};`).trim())]));
const emails = (i: { db: string; engine: Engine }) =>
  dbSql(i, `SELECT email FROM ${q(i.engine, 'customer')} ORDER BY customer_id;`)
    .trim()
    .split('\n');

describe.each(ENGINES)('clone --redact (%s)', (engine) => {
  let home: string;
  let prod: Awaited<ReturnType<typeof addInstance>>;
  let uat: Awaited<ReturnType<typeof addInstance>>;
  let rules: string;

  beforeAll(async () => {
    expect(pagilaAvailable()).toBe(true);
    home = await homeWithHosts(['lab1', 'lab2']);
    prod = await addInstance(home, 'lab1', `rd-prod-${engine}`, 'prod', { pagila: true, engine });
    uat = await addInstance(home, 'lab2', `rd-uat-${engine}`, 'dev', { engine, appSchema: true });
    rules = join(home, 'redact.sql');
    writeFileSync(rules, RULES);
  });

  it('a rules file with a mistake is refused before anything changes, naming its line', async () => {
    const before = dbState(uat);
    const bad = join(home, 'bad.sql');
    writeFileSync(bad, "customer.email = CONCAT('user', customer_id)\nUPDATE customer SET first_name = 'x'\n");
    const r = await cli(home, ['clone', prod.name, uat.name, '--data-only', '--redact', bad, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad} line 2: the statement starting here does not end with ;`);
    expect(dbState(uat)).toBe(before);
  });

  it('rules that could reach outside the copy are refused before anything changes, naming the rule and the fix', async () => {
    const before = dbState(uat);
    const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // MariaDB runs the rules in a scratch copy, where a database-qualified name reaches that database
    // instead; PostgreSQL's names stay in the target database, but roles, files and dblink do not.
    const cases: [string, RegExp][] =
      engine === 'mysql'
        ? [
            ["mysql.user.password = 'x'", /\(UPDATE mysql\.user SET password = 'x';\) names mysql\.user: mysql is a database/],
            [`UPDATE \`${prod.db}\`.customer SET email = 'x';`, new RegExp(`names ${esc(prod.db)}\\.customer: ${esc(prod.db)} is a database on this server`)],
            [`UPDATE customer SET email = (SELECT email FROM ${uat.db}.customer LIMIT 1);`, new RegExp(`names ${esc(uat.db)}\\.customer: ${esc(uat.db)} is a database on this server`)],
            ["/*!50000 UPDATE mysql.user SET plugin = '' */;", /MariaDB executable comment/],
            ['CREATE DEFINER=root EVENT wipe ON SCHEDULE EVERY 1 DAY DO DELETE FROM customer;', /starts with CREATE, and redaction rules may only change the copied rows/],
            ['UPDATE customer SET email = 1 --1;', /line 2: -- without a space after it .* is not allowed in redaction rules/],
          ]
        : [
            ['SET ROLE postgres;', /acts outside the copied data/],
            ["SELECT dblink_exec('dbname=postgres', 'DROP TABLE customer');", /calls dblink_exec, which reaches outside the copied data/],
            ["COPY customer TO PROGRAM 'cat > /tmp/leak';", /acts outside the copied data/],
            ["UPDATE customer SET email = set_config('role', 'postgres', true);", /calls set_config/],
            ['UPDATE customer SET email = "pg_read_file"(\'/etc/passwd\');', /calls pg_read_file/],
            ['CREATE TRIGGER t BEFORE UPDATE ON customer FOR EACH ROW EXECUTE FUNCTION f();', /starts with CREATE/],
            ["UPDATE customer SET email = 'x' # 1;", /line 2: # inside a statement .* is not allowed in redaction rules/],
            ["UPDATE customer SET email = 'x\\'; \\! touch /tmp/pwned; --';", /line 2: a backslash/],
          ];
    for (const [rule, said] of cases) {
      const file = join(home, 'outside.sql');
      writeFileSync(file, `# line 1 is a comment\n${rule}\n`);
      const r = await cli(home, ['clone', prod.name, uat.name, '--data-only', '--redact', file, '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${file} line 2`);
      expect(r.stderr).toMatch(said);
      expect(r.stderr).toMatch(/fix: /);
    }
    expect(dbState(uat)).toBe(before);
  });

  it('copies the data with every customer e-mail and name redacted; row counts equal; the source untouched', async () => {
    const sourceBefore = dbState(prod);
    const sourceEmails = emails(prod);
    expect(sourceEmails.length).toBeGreaterThan(500);
    const code = treeState(uat.path);

    const r = await cli(home, ['clone', prod.name, uat.name, '--data-only', '--redact', rules, '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);

    const after = emails(uat);
    expect(after.length).toBe(sourceEmails.length);
    // Not one of the source's e-mails is on the target.
    const source = new Set(sourceEmails);
    expect(after.filter((e) => source.has(e))).toEqual([]);
    expect(after.every((e) => /^user\d+@example\.invalid$/.test(e))).toBe(true);
    expect(dbSql(uat, `SELECT count(*) FROM ${q(engine, 'customer')} WHERE first_name <> 'Anon' OR last_name NOT LIKE 'Person %';`).trim()).toBe('0');
    expect(counts(uat)).toEqual(counts(prod));
    expect(dbState(prod)).toBe(sourceBefore);
    // --data-only: the target's code stays.
    expect(treeState(uat.path)).toEqual(code);

    // The audit trail names the rules and their digest; the run log lists what ran.
    const run = JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '1']))).stdout)[0];
    expect(run.params.redact).toBe(rules);
    expect(run.params.redactDigest).toMatch(/^[0-9a-f]{16}$/);
  });

  it('a rule the database refuses stops the load: the target keeps its data, none of it unredacted', async () => {
    const before = dbState(uat);
    const failing = join(home, 'failing.sql');
    writeFileSync(failing, "customer.email = 'x'\ncustomer.no_such_column = 'y'\n");
    const r = await cli(home, ['clone', prod.name, uat.name, '--data-only', '--redact', failing, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no_such_column');
    expect(dbState(uat)).toBe(before);
  });

  it('--dry-run shows the redaction and changes nothing', async () => {
    const before = dbState(uat);
    const r = await must(cli(home, ['--dry-run', 'clone', prod.name, uat.name, '--data-only', '--redact', rules]));
    expect(r.stdout).toContain(`redacted with 3 statement(s) from ${rules}`);
    expect(dbState(uat)).toBe(before);
  });
});
