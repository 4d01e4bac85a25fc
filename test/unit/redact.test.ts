import { describe, expect, it } from 'vitest';
import { parseRedaction } from '../../src/actions/redact.js';
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
