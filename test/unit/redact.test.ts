import { describe, expect, it } from 'vitest';
import type { Instance } from '../../inventory/index.js';
import { checkRedactionScope, parseRedaction } from '../../src/actions/redact.js';
import { UsageError } from '../../src/core/errors.js';

const refusal = (text: string) => {
  try {
    parseRedaction(text, 'redact.sql');
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return `${(err as UsageError).message} | ${(err as UsageError).hint}`;
  }
  throw new Error('not refused');
};

describe('redaction rules', () => {
  it('turns table.column = expression rules into UPDATEs and keeps SQL statements whole', () => {
    const r = parseRedaction(
      [
        '# personal data',
        "customer.email = CONCAT('user', customer_id, '@example.invalid')",
        "public.customer.first_name = 'Anon'; -- a trailing comment",
        '',
        'UPDATE staff',
        "   SET password = NULL, username = 'staff;' || staff_id;  -- ; inside quotes",
        "customer.note = 'a -- b'  -- a comment after a rule; the -- in quotes is text",
        'DELETE FROM payment WHERE amount = 0; UPDATE x SET y = 1;',
      ].join('\n'),
      'redact.sql',
    );
    expect(r.statements).toEqual([
      "UPDATE customer SET email = CONCAT('user', customer_id, '@example.invalid');",
      "UPDATE public.customer SET first_name = 'Anon';",
      "UPDATE staff\n   SET password = NULL, username = 'staff;' || staff_id;",
      "UPDATE customer SET note = 'a -- b';",
      'DELETE FROM payment WHERE amount = 0;',
      'UPDATE x SET y = 1;',
    ]);
  });

  it.each([
    ['UPDATE customer SET email = NULL', /line 1: the statement starting here does not end with ;/],
    ['customer.email =', /line 1: the rule for customer.email has no expression/],
    ["customer.email = 'x", /line 1: the expression for customer.email leaves a quote or comment open/],
    ['\n\nCOMMIT;\nUPDATE a SET b = 1;', /line 3: COMMIT is not allowed in redaction rules/],
    ['begin;', /line 1: BEGIN is not allowed/],
    ['USE other;', /line 1: USE is not allowed/],
    ['\\! rm -rf /', /line 1: a backslash .* is not allowed/],
    // Spellings psql or mariadb would read differently from these rules, hiding a second statement
    // (a shell command through \\!) from the checks: the review's cases.
    ['UPDATE staff SET a = 1 # 2;\n\\! id\n;', /line 1: # inside a statement/],
    ["UPDATE staff SET email = 'x\\'; \\! id > /tmp/pwn; --';", /line 1: a backslash/],
    ['UPDATE staff SET "a\\" = 1; \\! id; -- ";', /line 1: a backslash/],
    ['UPDATE staff SET a = 1 --1; \\! id\n;', /line 1: -- without a space after it/],
    ['customer.email = NULL # no', /line 1: # inside a statement/],
    ['UPDATE a SET b = $$x; GRANT ALL ON a TO b; $$;', /line 1: a \$\$ quote/],
    ['UPDATE a SET b = 1\n# 2;\nGRANT ALL ON a TO public;', /line 2: # inside a statement/],
    ['system rm -rf /;', /line 1: SYSTEM is not allowed/],
    ["UPDATE a SET b = 'x';\nUPDATE c SET d = 'y", /line 2: a quote, comment or \$\$ body opened in the statement starting here is never closed/],
    ['customer.email = NULL; DROP TABLE customer', /line 1: a rule is one expression/],
    ['# only a comment\n', /holds no redaction rules/],
  ])('refuses %j, naming the line and the fix', (text, why) => {
    expect(refusal(text)).toMatch(why);
  });
});

// What a rule may reach, checked before a run starts (and before instance set stores rules).
const uat = { name: 'shop-uat', dbUrl: 'mysql://shop@127.0.0.1:3306/shop_uat' } as Instance;
const prod = { name: 'shop-prod', dbUrl: 'mysql://shop@127.0.0.1:3306/shop' } as Instance;
const pgUat = { name: 'pg-uat', dbUrl: 'postgres://shop@127.0.0.1:5432/shop_uat' } as Instance;
const scopeRefusal = (text: string, target = uat) => {
  try {
    checkRedactionScope(parseRedaction(text, 'redact.sql'), target, [uat, prod, pgUat]);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return `${(err as UsageError).message} | ${(err as UsageError).hint}`;
  }
  return 'allowed';
};

describe('what redaction rules may reach on MariaDB', () => {
  it.each([
    // The review's case: the qualifier otherapp is also an alias, and still database otherapp's table.
    ["UPDATE otherapp.users u, staff otherapp SET u.email = 'x';", /line 1 .* names table otherapp\.users: a table's name qualified by a database reaches database otherapp/],
    ["UPDATE `otherapp`.`users` u, staff `otherapp` SET u.email = 'x';", /names table otherapp\.users/],
    ["UPDATE staff otherapp, `otherapp` . /* x */ `users` SET otherapp.email = 'x';", /names table otherapp\.users/],
    ['UPDATE staff s, otherapp.users u SET u.email = s.email;', /names table otherapp\.users/],
    ["UPDATE (staff s JOIN otherapp.users u ON u.id = s.staff_id) SET u.email = 'x';", /names table otherapp\.users/],
    ["UPDATE staff s JOIN customer c ON c.customer_id = s.staff_id, otherapp.users u SET u.email = 'x';", /names table otherapp\.users/],
    ['DELETE otherapp.users FROM staff otherapp, otherapp.users;', /names table otherapp\.users/],
    ['DELETE u FROM staff otherapp JOIN otherapp.users u ON u.id = otherapp.staff_id;', /names table otherapp\.users/],
    ['DELETE FROM u USING staff otherapp, otherapp.users u;', /names table otherapp\.users/],
    ['DELETE FROM otherapp.users;', /names table otherapp\.users/],
    ['INSERT INTO customer (email) SELECT email FROM otherapp.users;', /names table otherapp\.users/],
    ["INSERT INTO otherapp.users (email) VALUES ('x');", /names table otherapp\.users/],
    ["INSERT IGNORE otherapp.users SET email = 'x';", /names table otherapp\.users/],
    ['REPLACE otherapp.users SELECT * FROM customer;', /names table otherapp\.users/],
    ['TRUNCATE TABLE otherapp.users;', /names table otherapp\.users/],
    ['TRUNCATE otherapp.users;', /names table otherapp\.users/],
    ['WITH x AS (SELECT id FROM otherapp.users) DELETE FROM staff WHERE staff_id IN (SELECT id FROM x);', /names table otherapp\.users/],
    ['UPDATE staff SET email = (SELECT email FROM customer c, otherapp.users u LIMIT 1);', /names table otherapp\.users/],
    ['UPDATE staff SET email = (SELECT email FROM (otherapp.users));', /names table otherapp\.users/],
    ['DELETE FROM staff WHERE EXISTS (TABLE otherapp.users);', /names table otherapp\.users/],
    ['UPDATE staff SET staff_id = NEXTVAL(otherapp.seq);', /names table otherapp\.seq/],
    ['UPDATE staff SET staff_id = SETVAL(otherapp.seq, 1);', /names table otherapp\.seq/],
    ['UPDATE staff SET staff_id = NEXT VALUE FOR otherapp.seq;', /names table otherapp\.seq/],
    ['UPDATE staff SET email = otherapp.mask(email);', /calls otherapp\.mask: that is function mask of database otherapp/],
    ['UPDATE staff SET email = 1, x = (SELECT 1 FROM staff value, otherapp.users);', /names table otherapp\.users/],
    ["UPDATE ötherapp.users SET email = 'x';", /names table ötherapp\.users/],
    ["UPDATE 1otherapp.users SET email = 'x';", /names table 1otherapp\.users/],
    ["UPDATE otherapp.123 SET email = 'x';", /names table otherapp\.123/],
    ["UPDATE 123.users SET email = 'x';", /names table 123\.users/],
    // A server with sql_mode ANSI_QUOTES reads "x" as a name.
    ['UPDATE "otherapp"."users" SET email = 1;', /names table otherapp\.users/],
    // Names the server or the inventory has, as before.
    ["mysql.user.password = 'x'", /names mysql\.user: mysql is a database on this server/],
    ['UPDATE customer SET email = (SELECT email FROM shop.customer LIMIT 1);', /names shop\.customer: shop is a database on this server/],
    ['UPDATE customer c SET c.email = x.y.z;', /names x\.y\.z: x is a database/],
    ['UPDATE customer SET email = other.email;', /other is no table or alias the statement names/],
  ])('refuses %j, naming the line and the fix', (text, why) => {
    const said = scopeRefusal(text);
    expect(said).toMatch(why);
    expect(said).toMatch(/^redact\.sql line 1 /);
    expect(said).toMatch(/\| ./);
  });

  it.each([
    "customer.email = CONCAT('user', customer_id, '@example.invalid')",
    "UPDATE customer c SET c.email = CONCAT('user', c.customer_id), c.first_name = 'Anon';",
    "UPDATE customer c JOIN address a USING (address_id) SET a.phone = '', c.email = NULL WHERE a.city_id > 0;",
    'UPDATE customer c, address a SET a.phone = c.customer_id WHERE a.address_id = c.address_id;',
    'DELETE c FROM customer c LEFT JOIN rental r ON r.customer_id = c.customer_id WHERE r.rental_id IS NULL;',
    "UPDATE customer SET email = TRIM(BOTH ' ' FROM customer.email), last_name = SUBSTRING(customer.last_name FROM 2);",
    'UPDATE customer SET email = CONVERT(customer.email USING utf8mb4);',
    'INSERT INTO payment_note (customer_id, note) SELECT c.customer_id, c.email FROM customer c ON DUPLICATE KEY UPDATE note = VALUES(note);',
    'WITH old AS (SELECT customer_id FROM customer c WHERE c.active = 0) DELETE FROM customer WHERE customer_id IN (SELECT o.customer_id FROM old o);',
    'TRUNCATE TABLE payment;',
    'UPDATE payment SET amount = 1.5 * amount + .5 WHERE amount > 0.25;',
  ])('lets %j be', (text) => {
    expect(scopeRefusal(text)).toBe('allowed');
  });

  it('rules stored before this check are checked again when they run, named by their place', () => {
    const stored = { source: 'the rules of shop-uat', statements: ["UPDATE customer SET email = 'x';", "UPDATE otherapp.users u, staff otherapp SET u.email = 'x';"] };
    expect(() => checkRedactionScope(stored, uat, [uat, prod])).toThrow(/^the rules of shop-uat, rule 2 \(UPDATE otherapp\.users u, staff otherapp SET u\.email = 'x';\) names table otherapp\.users/);
  });

  it('a comment between a function and its "(" is still a call; a SET is one allowed setting and nothing more', () => {
    expect(scopeRefusal("UPDATE staff SET email = LOAD_FILE/**/('/etc/passwd');")).toMatch(/calls LOAD_FILE, which reaches outside/);
    expect(scopeRefusal("UPDATE staff SET email = LOAD_FILE -- x\n('/etc/passwd');")).toMatch(/calls LOAD_FILE, which reaches outside/);
    expect(scopeRefusal("UPDATE customer SET email = dblink_exec/**/('dbname=prod', 'DELETE FROM users');", pgUat)).toMatch(/calls dblink_exec/);
    expect(scopeRefusal('SET foreign_key_checks = 0, GLOBAL general_log = 1;')).toMatch(/sets something other than one allowed setting/);
    expect(scopeRefusal('SET foreign_key_checks = 0, NAMES latin1;')).toMatch(/sets something other than one allowed setting/);
    expect(scopeRefusal('SET foreign_key_checks = 0;')).toBe('allowed');
    expect(scopeRefusal('SET SESSION unique_checks = 1;')).toBe('allowed');
    expect(scopeRefusal('SET search_path = app, public;', pgUat)).toBe('allowed');
    // A string that holds comment marks hides nothing and is let be.
    expect(scopeRefusal("UPDATE customer SET email = CONCAT('a/*', customer_id, '*/b');")).toBe('allowed');
  });

  it('on PostgreSQL, schema.table stays in the database: the same statement is let be', () => {
    expect(scopeRefusal("UPDATE otherapp.users u SET email = 'x';", pgUat)).toBe('allowed');
    expect(scopeRefusal('SET ROLE postgres;', pgUat)).toMatch(/acts outside the copied data/);
  });
});
