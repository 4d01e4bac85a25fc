import { createHash, createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The fingerprint of a public key blob as OpenSSH prints it: SHA256:<base64, no padding>. */
export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** The key type named at the start of an SSH public key blob (ssh-ed25519, ecdsa-sha2-nistp256, ...). */
export function keyType(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

export type KnownHostsVerdict = { state: 'match' } | { state: 'mismatch'; file: string; line: number } | { state: 'unknown' };

/**
 * Looks the host up in OpenSSH known_hosts files (plain and hashed entries). A listed key of the same
 * type that differs is a mismatch; OpenSSH would refuse it too.
 */
export function checkKnownHosts(address: string, port: number, keyBlob: Buffer, files = defaultKnownHosts()): KnownHostsVerdict {
  const name = port === 22 ? address : `[${address}]:${port}`;
  const type = keyType(keyBlob);
  let verdict: KnownHostsVerdict = { state: 'unknown' };
  for (const file of files) {
    if (!existsSync(file)) continue;
    const lines = readFileSync(file, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (!line || line.startsWith('#') || line.startsWith('@')) continue;
      const [hosts, ktype, b64] = line.split(/\s+/);
      if (!b64 || !hostMatches(hosts, name)) continue;
      if (ktype !== type) continue;
      if (Buffer.from(b64, 'base64').equals(keyBlob)) return { state: 'match' };
      verdict = { state: 'mismatch', file, line: i + 1 };
    }
  }
  return verdict;
}

function hostMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return field.split(',').some((p) => !p.startsWith('!') && p === name);
}

function defaultKnownHosts(): string[] {
  if (process.env.OPSDECK_KNOWN_HOSTS !== undefined) return process.env.OPSDECK_KNOWN_HOSTS.split(':').filter(Boolean);
  return [join(homedir(), '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
}
