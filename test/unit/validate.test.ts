import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMetrics } from '../../src/cli/main.js';
import { loadSettings, saveSetting } from '../../src/app/settings.js';
import { parsePgUrl, quoteIdent, quoteQualified } from '../../src/databases/postgres.js';
import { UsageError } from '../../src/core/errors.js';
import { checkName, checkRef, checkRemotePath } from '../../inventory/validate.js';

describe('input checks', () => {
  it('accepts ordinary names and refuses the rest with a usage error', () => {
    for (const ok of ['web-prod', 'shop.uat', 'a1', 'A_b']) expect(checkName('instance', ok)).toBe(ok);
    for (const bad of ['', '-rf', 'a b', 'a;b', '$(x)', 'a/b', '..', 'a..b', '.hidden', 'x'.repeat(64)]) {
      expect(() => checkName('instance', bad)).toThrow(UsageError);
    }
  });

  it('wants absolute paths without dot segments, not at the root', () => {
    expect(checkRemotePath('/srv/www/shop/')).toBe('/srv/www/shop');
    expect(checkRemotePath("/srv/we'ird $(x)/a")).toBe("/srv/we'ird $(x)/a");
    for (const bad of ['srv/x', '/srv/../etc', '/srv/./x', '/', '/srv', '/a\nb/c', '/a/b\0']) {
      expect(() => checkRemotePath(bad)).toThrow(UsageError);
    }
  });

  it('checks git refs', () => {
    expect(checkRef('release/2.1')).toBe('release/2.1');
    for (const bad of ['-x', '--upload-pack=x', 'a..b', 'a b', 'x.lock']) expect(() => checkRef(bad)).toThrow(UsageError);
  });

  it('parses database URLs and refuses passwords in them', () => {
    expect(parsePgUrl('postgres://app@db.local:5433/shop')).toEqual({ kind: 'postgres', user: 'app', host: 'db.local', port: 5433, database: 'shop' });
    expect(() => parsePgUrl('postgres://app:pw@db/shop')).toThrow(/password/);
    expect(() => parsePgUrl('mysql://app@db/shop')).toThrow(/unsupported/);
    expect(() => parsePgUrl("postgres://app@db/sh'op")).toThrow(/database name/);
  });

  it('quotes SQL identifiers and the qualified names pg_dump writes', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteQualified('public.actor')).toBe('"public"."actor"');
    expect(quoteQualified('"weird schema"."Ta.ble"')).toBe('"weird schema"."Ta.ble"');
    expect(quoteQualified('public."Mixed"')).toBe('"public"."Mixed"');
  });
});

describe('metrics and settings', () => {
  it('reads --metric NAME=sql:QUERY and NAME=cmd:COMMAND, replaces by name, and NAME= removes one', () => {
    let m = parseMetrics(['users=sql:SELECT count(*) FROM users', 'queue=cmd:ls var/queue | wc -l']);
    expect(m).toEqual([
      { name: 'users', kind: 'sql', source: 'SELECT count(*) FROM users' },
      { name: 'queue', kind: 'cmd', source: 'ls var/queue | wc -l' },
    ]);
    m = parseMetrics(['users=sql:SELECT 1', 'queue='], m);
    expect(m).toEqual([{ name: 'users', kind: 'sql', source: 'SELECT 1' }]);
    for (const bad of ['Users=sql:x', 'users', 'users=psql:x', 'users=sql:   ', '9x=cmd:ls', 'a=cmd:ls\0']) expect(() => parseMetrics([bad], m)).toThrow(UsageError);
    expect(() => parseMetrics(['nope='], m)).toThrow(/there is no metric nope/);
  });

  it('changes a setting only to a sane value, and the store only before the first backup', () => {
    const home = mkdtempSync(join(tmpdir(), 'opsdeck-settings-'));
    expect(saveSetting(home, 'refreshMs', '5000', false).refreshMs).toBe(5000);
    expect(loadSettings(home).refreshMs).toBe(5000);
    for (const bad of ['0', '5', '2.5', 'fast', '9999999']) expect(() => saveSetting(home, 'refreshMs', bad, false)).toThrow(/invalid refreshMs/);
    expect(() => saveSetting(home, 'colour', 'red', false)).toThrow(/unknown setting "colour"/);
    expect(() => saveSetting(home, 'storeRepository', '/srv/restic', true)).toThrow(/would lose track of them/);
    expect(loadSettings(home)).toMatchObject({ refreshMs: 5000, storeRepository: '' });
  });
});
