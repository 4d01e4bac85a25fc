import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { SecretBox } from '../../inventory/secrets.js';
import { checkKnownHosts, fingerprint } from '../../src/remote/hostkeys.js';

describe('secrets', () => {
  it('keeps database passwords encrypted in the inventory, under a 0600 key file', () => {
    const home = mkdtempSync(join(tmpdir(), 'sec-'));
    const inv = new Inventory(home);
    inv.addEnv('dev', false);
    inv.addHost({ name: 'h', address: '127.0.0.1', port: 22, user: 'u', keyFile: null, jump: null, hostKey: null });
    inv.addInstance({ name: 'app', host: 'h', path: '/srv/app', env: 'dev', url: null, dbUrl: 'postgres://a@127.0.0.1:5432/b', branch: null, dbPassword: 'hunter2-secret' });
    expect(inv.dbPassword('app')).toBe('hunter2-secret');
    inv.close();
    expect(statSync(join(home, 'secret.key')).mode & 0o777).toBe(0o600);
    const raw = readFileSync(join(home, 'inventory.sqlite'));
    expect(raw.includes(Buffer.from('hunter2-secret'))).toBe(false);
  });

  it('will not open a secret with another key', () => {
    const a = new SecretBox(mkdtempSync(join(tmpdir(), 'sec-')));
    const b = new SecretBox(mkdtempSync(join(tmpdir(), 'sec-')));
    expect(() => b.open(a.seal('x'))).toThrow(/does not match/);
  });
});

describe('known_hosts', () => {
  const blob = (type: string, body: string) => {
    const t = Buffer.from(type);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(t.length);
    return Buffer.concat([len, t, Buffer.from(body)]);
  };
  it('matches plain and hashed entries, and reports a different key of the same type', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kh-'));
    const key = blob('ssh-ed25519', 'key-one');
    const other = blob('ssh-ed25519', 'key-two');
    const salt = Buffer.from('0123456789abcdef0123');
    const hashed = createHmac('sha1', salt).update('[10.0.0.5]:2222').digest('base64');
    const file = join(dir, 'known_hosts');
    writeFileSync(file, `db1,10.0.0.9 ssh-ed25519 ${key.toString('base64')}\n|1|${salt.toString('base64')}|${hashed} ssh-ed25519 ${key.toString('base64')}\n`);
    expect(checkKnownHosts('10.0.0.9', 22, key, [file]).state).toBe('match');
    expect(checkKnownHosts('10.0.0.5', 2222, key, [file]).state).toBe('match');
    expect(checkKnownHosts('10.0.0.9', 22, other, [file])).toMatchObject({ state: 'mismatch', line: 1 });
    expect(checkKnownHosts('10.0.0.7', 22, key, [file]).state).toBe('unknown');
    expect(fingerprint(key)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});
