import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatPgUrl, parsePgUrl } from '../../src/databases/postgres.js';
import { UsageError } from '../../src/core/errors.js';
import { checkFingerprint, checkHealth, checkHooks, checkKeyFile, checkLocalPath, checkMetric, checkUrl, checkWatchExclude } from '../../inventory/validate.js';

describe('the checks the CLI and inventory import share', () => {
  it('hooks: known kinds, each a non-empty argv of strings', () => {
    expect(checkHooks({ migrate: ['bin/migrate', '--force'] })).toEqual({ migrate: ['bin/migrate', '--force'] });
    for (const bad of [{ migrate: 'bin/migrate' }, { migrate: [] }, { migrate: [''] }, { migrate: [1] }, { deploy: ['x'] }, ['x'], 'x', null]) {
      expect(() => checkHooks(bad), JSON.stringify(bad)).toThrow(UsageError);
    }
  });

  it('health checks, URLs, watch patterns, local paths', () => {
    expect(checkHealth({ url: 'https://x.test/h', status: 200, text: 'OK' })).toEqual({ url: 'https://x.test/h', status: 200, text: 'OK' });
    for (const bad of [{ url: 'https://x.test', status: 99 }, { url: 'file:///etc/passwd', status: 200 }, { url: 'https://x.test', status: '200' }, null])
      expect(() => checkHealth(bad)).toThrow(UsageError);
    for (const bad of ['javascript:alert(1)', 'ftp://x', 'https://x.test/\nX-Injected: 1', 42 as unknown as string]) expect(() => checkUrl(bad)).toThrow(UsageError);
    for (const bad of ['-delete', '', 'a\nb', 7 as unknown as string]) expect(() => checkWatchExclude(bad)).toThrow(UsageError);
    for (const bad of ['../../victim/file', '/etc/passwd', 'a/../../b', ['x'] as unknown as string]) expect(() => checkLocalPath(bad)).toThrow(UsageError);
  });

  it('metrics: the probe-time rules at set time', () => {
    expect(checkMetric({ name: 'users', kind: 'sql', source: ' SELECT count(*) FROM users ' })).toEqual({ name: 'users', kind: 'sql', source: 'SELECT count(*) FROM users' });
    expect(() => checkMetric({ name: 'x', kind: 'sql', source: 'SELECT pg_terminate_backend(1)' })).toThrow(/metric x is refused/);
    for (const bad of [
      { name: 'X', kind: 'sql', source: 'SELECT 1' },
      { name: 'x', kind: 'sh', source: 'ls' },
      { name: 'x', kind: 'cmd', source: ' ' },
      { name: 'x', kind: 'cmd' },
    ])
      expect(() => checkMetric(bad)).toThrow(UsageError);
  });

  it('host keys and key files', () => {
    const fp = 'SHA256:' + 'A'.repeat(43);
    expect(checkFingerprint(fp)).toBe(fp);
    expect(() => checkFingerprint('MD5:aa:bb')).toThrow(UsageError);
    const dir = mkdtempSync(join(tmpdir(), 'opsdeck-keys-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', join(dir, 'locked')]);
    writeFileSync(join(dir, 'junk'), 'root:x:0:0:root:/root:/bin/bash\n');
    expect(checkKeyFile(join(dir, 'id'))).toBe(join(dir, 'id'));
    expect(() => checkKeyFile(join(dir, 'id.pub'))).toThrow(/is a public key, not a private one/);
    expect(() => checkKeyFile(join(dir, 'locked'))).toThrow(/protected by a passphrase/);
    expect(() => checkKeyFile(join(dir, 'junk'))).toThrow(/is not an SSH private key/);
    expect(() => checkKeyFile(join(dir, 'missing'))).toThrow(/cannot read the key file .*ENOENT/);
  });

  it('database URLs: IPv6 literals kept, connection parameters refused', () => {
    expect(parsePgUrl('postgres://app@[::1]:5433/shop')).toEqual({ kind: 'postgres', user: 'app', host: '::1', port: 5433, database: 'shop' });
    expect(formatPgUrl(parsePgUrl('postgres://app@[2001:db8::5]/shop'))).toBe('postgres://app@[2001:db8::5]:5432/shop');
    expect(formatPgUrl(parsePgUrl('postgresql://app@db.example:5432/shop'))).toBe('postgres://app@db.example:5432/shop');
    expect(() => parsePgUrl('postgres://app@db/shop?options=-c%20search_path%3Devil')).toThrow(/holds connection parameters/);
    expect(() => parsePgUrl('postgres://app@db/shop?sslmode=disable')).toThrow(/holds connection parameters/);
    expect(() => parsePgUrl('postgres://app@db/shop#x')).toThrow(/holds connection parameters/);
    expect(() => parsePgUrl('postgres://app@[not-v6]/shop')).toThrow(UsageError);
  });
});
