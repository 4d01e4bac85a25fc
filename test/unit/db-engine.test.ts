import { describe, expect, it } from 'vitest';
import { dbAt, engineFor, engineOf, normalizeDbUrl, parseDbUrl } from '../../src/databases/index.js';
import { UsageError } from '../../src/core/errors.js';

describe('database engines, chosen by the URL', () => {
  it('takes postgres:// and postgresql:// to the PostgreSQL engine, which parses and writes them back', () => {
    for (const url of ['postgres://app@db.local:5433/shop', 'postgresql://app@db.local:5433/shop']) {
      expect(engineFor(url).name).toBe('PostgreSQL');
      expect(parseDbUrl(url)).toMatchObject({ user: 'app', host: 'db.local', port: 5433, database: 'shop' });
      expect(normalizeDbUrl(url)).toBe('postgres://app@db.local:5433/shop');
    }
    const db = dbAt('postgres://app@db.local/shop', 'secret');
    expect(db.engine).toBe(engineOf(db.target));
    expect(db.engine.format(db.target)).toBe('postgres://app@db.local:5432/shop');
  });

  it('refuses an unknown scheme with a usage error naming the schemes it supports', () => {
    let err: unknown;
    try {
      engineFor('oracle://app@db/shop');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect(String((err as Error).message)).toMatch(/unsupported database kind "oracle"/);
    expect((err as UsageError).hint).toMatch(/postgres:\/\/, postgresql:\/\//);
    expect(() => engineFor('not a url')).toThrow(/invalid database URL/);
  });

  it('keeps refusing a password or parameters in the URL, whatever the engine', () => {
    expect(() => parseDbUrl('postgres://app:pw@db/shop')).toThrow(/password/);
    expect(() => parseDbUrl('postgres://app@db/shop?sslmode=disable')).toThrow(/connection parameters/);
  });
});
