import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Inventory } from '../../inventory/index.js';
import { storeRecords } from '../../inventory/store-records.js';
import { OpsError, UsageError } from '../core/errors.js';
import type { Policy } from '../core/retention.js';
import { fingerprint } from '../remote/hostkeys.js';
import { LocalShell } from '../remote/local.js';
import { Store, type StoreOptions } from './restic.js';

/** sftp:[USER@]HOST:PATH, restic's own form. */
const SFTP = /^sftp:(?:([^@/:]+)@)?([^:/@]+):(.+)$/;

/** A path restic's sftp.command splitting reads as one word: no blanks, no quotes, no backslashes. */
const PLAIN = /^[^\s'"\\]+$/;

/**
 * An sftp store on a host of the inventory (`sftp:HOST:/path`, HOST its name there): restic's sftp
 * runs the system ssh, given here the host's address, port, user and key, and a known_hosts file in
 * the home holding the one key whose fingerprint is the one pinned for that host: a host presenting
 * another key is refused by ssh itself (StrictHostKeyChecking).
 */
function sftpOptions(home: string, inv: Inventory, repository: string): Pick<StoreOptions, 'options' | 'prepare'> {
  const m = SFTP.exec(repository);
  if (!m) return {};
  const host = inv.getHost(m[2]);
  // Not a host of the inventory: restic's sftp with the operator's own ssh configuration, as before.
  if (!host) return {};
  if (host.jump) throw new UsageError(`the store's host ${host.name} is reached through ${host.jump}, which the store's sftp cannot do`, 'keep the store on a host reached directly');
  const user = m[1] ?? host.user;
  const knownHosts = join(home, `store_known_hosts.${host.name}`);
  for (const [what, v] of [
    ['key file', host.keyFile ?? ''],
    ['home', knownHosts],
    ['user', user],
  ] as const) {
    if (v && !PLAIN.test(v))
      throw new UsageError(`the ${what} ${JSON.stringify(v)} of the store's sftp has a blank or a quote, which restic's sftp.command cannot pass`, 'use paths without blanks or quotes');
  }
  const ssh = [
    'ssh',
    '-F',
    '/dev/null',
    ...(host.keyFile ? ['-i', host.keyFile, '-o', 'IdentitiesOnly=yes'] : []),
    '-p',
    String(host.port),
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    `${user}@${host.address}`,
    '-s',
    'sftp',
  ];
  return {
    options: [`sftp.command=${ssh.join(' ')}`],
    prepare: async () => {
      if (!host.hostKey) throw new OpsError(`host ${host.name} has no pinned host key, so the store's sftp cannot check it`, 1, `trust it first: opsdeck host trust ${host.name}`);
      // The keys the host offers; only the pinned one goes into known_hosts.
      const res = await new LocalShell({}, 'this machine').exec(['ssh-keyscan', '-T', '10', '-p', String(host.port), host.address]);
      const name = host.port === 22 ? host.address : `[${host.address}]:${host.port}`;
      const offered = res.stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length >= 3 && !f[0].startsWith('#'));
      const pinned = offered.find(([, , b64]) => fingerprint(Buffer.from(b64, 'base64')) === host.hostKey);
      if (!pinned)
        throw new OpsError(
          `the store's host ${host.name} (${name}) did not offer its pinned key ${host.hostKey}${offered.length ? `; it offered ${offered.map(([, t, b64]) => `${t} ${fingerprint(Buffer.from(b64, 'base64'))}`).join(', ')}` : `: ${res.stderr.trim() || 'no answer'}`}`,
          1,
          `check the host: opsdeck host check ${host.name}`,
        );
      writeFileSync(knownHosts, `${name} ${pinned[1]} ${pinned[2]}\n`, { mode: 0o600 });
    },
  };
}

const isInHome = (repository: string) => !/^[a-z0-9]+:/i.test(repository) || repository.startsWith('local:');

/**
 * The backup store of a home: the setting storeRepository (default store/ in the home), its copies
 * (storeCopies). On a team inventory a store elsewhere than this machine opens with the password the
 * team keeps for it (opsdeck store secret), sealed with an environment's key: only roles granted
 * there open it, and each opening is recorded. Otherwise the password is store.pass in the home.
 */
export function openStore(home: string, inv: Inventory, o: { repository?: string; copies?: string[]; lockWaitMs?: number; copyRetention?: Record<string, Partial<Policy>> }): Store {
  const team = !!inv.pg;
  const options = (repository: string, label: string): StoreOptions => ({
    ...sftpOptions(home, inv, repository),
    label,
    lockWaitMs: o.lockWaitMs,
    ...(team &&
      !isInHome(repository) && {
        password: () => {
          const s = storeRecords(inv).storePassword(repository);
          if (!s)
            throw new OpsError(
              `the team inventory keeps no password for the shared store ${repository}`,
              1,
              `a team admin sets it once: opsdeck store secret --env ENV (from the password file, or a new one)`,
            );
          return s.password;
        },
      }),
  });
  const copies = (o.copies ?? []).map((r) => new Store(home, r, { ...options(r, `the copy store ${r}`), retention: o.copyRetention?.[r] }));
  const repository = o.repository || join(home, 'store');
  return new Store(home, repository, { ...options(repository, 'the backup store'), copies });
}
