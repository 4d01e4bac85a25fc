import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pagilaAvailable } from '../../fixtures/lab.js';
import { addInstance, cli, dbSql, dbSqlAsApp, dbState, homeWithHosts, must, treeState, type Engine } from '../helpers.js';

// clone --redact (issue 13, item 4), on pagila's customers (PostgreSQL) and sakila's (MariaDB): run by
// redact.test.ts (PostgreSQL) and redact-mysql.test.ts (MariaDB).

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

/** The clone --redact tests on one engine (a file per engine, so two workers run them side by side). */
export function redactSuite(engine: Engine): void {
  describe(`clone --redact (${engine})`, () => {
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

    it.runIf(engine === 'mysql')("MariaDB: rules that reach another application's database on the server are refused whatever their spelling; that database stays byte-identical", async () => {
      // A database outside the inventory that the copy's account may write: what a qualified name
      // in a rule would reach, the copy being its default database.
      const other = 'rd_otherapp';
      dbSql(
        { db: '', engine },
        [
          `DROP DATABASE IF EXISTS ${other};`,
          `CREATE DATABASE ${other};`,
          `CREATE TABLE ${other}.users (id INT PRIMARY KEY, email VARCHAR(100), staff_id INT);`,
          `INSERT INTO ${other}.users VALUES (1, 'ann@example.org', 1), (2, 'bob@example.org', 2);`,
          `GRANT ALL ON ${other}.* TO '${uat.role}'@'127.0.0.1';`,
        ].join('\n'),
      );
      const otherState = () => dbState({ db: other, engine });
      const otherBefore = otherState();
      expect(otherBefore).toContain('checksum users');
      // The account does reach it: only the check stands between these rules and its rows.
      expect(dbSqlAsApp(uat, `SELECT COUNT(*) FROM ${other}.users;`).trim()).toBe('2');
      const before = dbState(uat);
      const tricks = [
        // The review's case: the qualifier is also an alias of the statement's.
        `UPDATE ${other}.users u, staff ${other} SET u.email = 'x';`,
        `UPDATE \`${other}\`.\`users\` SET email = 'x';`,
        `UPDATE staff s, ${other}.users u SET u.email = s.email;`,
        `DELETE u FROM staff ${other} JOIN ${other}.users u ON u.staff_id = ${other}.staff_id;`,
        `INSERT INTO ${other}.users (id, email) SELECT customer_id + 100, email FROM customer;`,
        `INSERT INTO customer (store_id, first_name, last_name, address_id) SELECT 1, email, email, 1 FROM ${other}.users;`,
      ];
      for (const trick of tricks) {
        const file = join(home, 'other.sql');
        writeFileSync(file, `${RULES}\n${trick}\n`);
        const r = await cli(home, ['clone', prod.name, uat.name, '--data-only', '--redact', file, '--yes']);
        expect(r.code, `${trick}\n${r.stderr}`).toBe(2);
        expect(r.stderr).toContain(`${file} line 5 (`);
        expect(r.stderr).toContain(`names table ${other}.users: a table's name qualified by a database reaches database ${other}`);
        expect(r.stderr).toContain('fix: write users alone: the rules run with the copy as the default database');
      }
      expect(otherState()).toBe(otherBefore);
      expect(dbState(uat)).toBe(before);
      dbSql({ db: '', engine }, `DROP DATABASE ${other};`);
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

    it('instance set --redact checks the rules as clone does: a file that could reach outside the copy is refused, the stored rules stay', async () => {
      await must(cli(home, ['instance', 'set', uat.name, '--redact', rules]));
      const stored = async () => JSON.parse((await must(cli(home, ['instance', 'show', uat.name, '--json']))).stdout).relation.redact;
      const before = await stored();
      expect(before.source).toBe(rules);
      expect(before.statements).toHaveLength(3);
      const bad = join(home, 'set-outside.sql');
      writeFileSync(bad, `${RULES}\n${engine === 'mysql' ? "UPDATE otherapp.users u, staff otherapp SET u.email = 'x';" : 'SET ROLE postgres;'}\n`);
      const r = await cli(home, ['instance', 'set', uat.name, '--redact', bad]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${bad} line 5 (`);
      expect(r.stderr).toMatch(engine === 'mysql' ? /names table otherapp\.users: .* fix: write users alone/s : /acts outside the copied data.* fix: keep to statements on the copied tables/s);
      expect(await stored()).toEqual(before);
    });
  });
}
