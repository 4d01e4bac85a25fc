import { describe, expect, it } from 'vitest';
import { DumpRewriter } from '../../src/databases/dump-rewriter.js';
import type { LoadTarget } from '../../src/databases/postgres.js';

/** Feeds the text in chunks of awkward sizes (a line, a quote, a COPY row cut anywhere). */
function rewrite(text: string, target: LoadTarget, from?: string, size = 3): { out: string; notes: string[] } {
  const rw = new DumpRewriter(target, from);
  const buf = Buffer.from(text);
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(rw.feed(buf.subarray(i, i + size)));
  parts.push(rw.flush());
  return { out: Buffer.concat(parts).toString(), notes: rw.notes() };
}

const here: LoadTarget = {
  role: 'app_b',
  roles: new Map([
    ['app_b', true],
    ['report', false],
    ['other_owner', false],
  ]),
  keptExtensions: new Set(['plpgsql_x']),
};

const DUMP = [
  'CREATE SCHEMA billing;',
  'ALTER SCHEMA billing OWNER TO app_a;',
  'CREATE FUNCTION billing.p() RETURNS void LANGUAGE plpgsql AS $_$',
  'BEGIN;',
  'COMMIT;',
  'ALTER TABLE x OWNER TO app_a;',
  '$_$;',
  'ALTER FUNCTION billing.p() OWNER TO app_a;',
  'ALTER TABLE billing.t OWNER TO owner2;',
  "COMMENT ON TABLE billing.t IS 'it''s",
  'COMMIT;',
  "GRANT ALL ON TABLE t TO gone;';",
  'COPY billing.t (a) FROM stdin;',
  'BEGIN;',
  'ALTER TABLE y OWNER TO app_a;',
  '\\.',
  'BEGIN;',
  "SELECT pg_catalog.lo_open('16400', 131072);",
  "SELECT pg_catalog.lowrite(0, '\\x6869');",
  'SELECT pg_catalog.lo_close(0);',
  'COMMIT;',
  "COMMENT ON EXTENSION plpgsql_x IS 'kept as it is';",
  'GRANT SELECT ON TABLE billing.t TO report;',
  'GRANT SELECT ON TABLE billing.t TO gone;',
  'GRANT ALL ON TABLE billing.t TO app_a;',
  'GRANT USAGE ON SCHEMA billing TO report;',
  'ALTER DEFAULT PRIVILEGES FOR ROLE app_a IN SCHEMA billing GRANT SELECT ON TABLES  TO report;',
  'ALTER DEFAULT PRIVILEGES FOR ROLE stranger GRANT SELECT ON TABLES  TO report;',
  '',
].join('\n');

describe('DumpRewriter', () => {
  it('maps owners and grants, leaves out what cannot be given, and never touches quoted text or COPY data', () => {
    const { out, notes } = rewrite(DUMP, here, 'app_a');
    const body = out.slice(0, out.indexOf('\nDO $opsdeck$'));
    expect(body).toBe(
      [
        'CREATE SCHEMA billing;',
        'ALTER SCHEMA billing OWNER TO "app_b";',
        'CREATE FUNCTION billing.p() RETURNS void LANGUAGE plpgsql AS $_$',
        'BEGIN;',
        'COMMIT;',
        'ALTER TABLE x OWNER TO app_a;',
        '$_$;',
        'ALTER FUNCTION billing.p() OWNER TO "app_b";',
        'ALTER TABLE billing.t OWNER TO "app_b";',
        "COMMENT ON TABLE billing.t IS 'it''s",
        'COMMIT;',
        "GRANT ALL ON TABLE t TO gone;';",
        'COPY billing.t (a) FROM stdin;',
        'BEGIN;',
        'ALTER TABLE y OWNER TO app_a;',
        '\\.',
        "SELECT pg_catalog.lo_open('16400', 131072);",
        "SELECT pg_catalog.lowrite(0, '\\x6869');",
        'SELECT pg_catalog.lo_close(0);',
        'GRANT SELECT ON TABLE billing.t TO report;',
        'GRANT ALL ON TABLE billing.t TO "app_b";',
        'GRANT USAGE ON SCHEMA billing TO report;',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "app_b" IN SCHEMA billing GRANT SELECT ON TABLES  TO report;',
        '',
      ].join('\n'),
    );
    expect(notes).toEqual([
      '1 object owned by owner2 in the backup, by app_b here: no such role here',
      '1 grant to role gone not restored: no such role here',
      '1 default privilege of role stranger not restored: no such role here',
    ]);
    // Schema privileges are set last, exactly the dump's: billing's GRANT is applied again there.
    expect(out.slice(body.length)).toContain(`EXECUTE 'GRANT USAGE ON SCHEMA billing TO report;';`);
  });

  it('gives the same bytes whatever the chunk sizes, and nothing to map on the same instance', () => {
    const same: LoadTarget = {
      role: 'app_a',
      roles: new Map([
        ['app_a', true],
        ['owner2', true],
        ['report', false],
        ['gone', false],
        ['stranger', true],
      ]),
      keptExtensions: new Set(),
    };
    const whole = rewrite(DUMP, same, 'app_a', 1 << 20);
    for (const size of [1, 2, 7, 64]) expect(rewrite(DUMP, same, 'app_a', size).out).toBe(whole.out);
    expect(whole.notes).toEqual([]);
    expect(whole.out).toContain('ALTER TABLE billing.t OWNER TO owner2;\n');
    expect(whole.out).not.toMatch(/^BEGIN;\nSELECT pg_catalog.lo_open/m);
  });
});
