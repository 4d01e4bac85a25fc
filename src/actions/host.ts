import type { Host } from '../../inventory/index.js';
import { normalizeFingerprint } from '../remote/hostkeys.js';
import { OpsError, UsageError } from '../util/errors.js';
import type { Deps } from './deps.js';

export type TrustDecision = (offered: { fingerprint: string; type: string }) => Promise<void>;

/**
 * Decides which host key to pin: the one in known_hosts, the --fingerprint given, or the one offered
 * once `decide` (a prompt, or --yes meaning accept-new) agrees. A mismatch is refused.
 */
export async function establishTrust(deps: Deps, host: Host, fingerprint: string | undefined, decide: TrustDecision): Promise<string> {
  const expected = fingerprint === undefined ? undefined : normalizeFingerprint(fingerprint);
  if (fingerprint !== undefined && !expected) {
    throw new UsageError(`invalid fingerprint ${JSON.stringify(fingerprint)}`, 'give it as OpenSSH prints it: SHA256: followed by 43 characters (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)');
  }
  const offered = await deps.ssh.probeHostKey({ ...host, hostKey: null });
  if (expected) {
    if (offered.fingerprint !== expected) {
      throw new OpsError(`host ${host.name} offered key ${offered.fingerprint}, not the expected ${expected}: refused`, 1, 'check the fingerprint on the host itself; someone may be intercepting the connection');
    }
    return expected;
  }
  if (offered.knownHosts.state === 'mismatch') {
    throw new OpsError(`host ${host.name} offered key ${offered.fingerprint}, which differs from ${offered.knownHosts.file} line ${offered.knownHosts.line}: refused`, 1, 'verify the key on the host, then fix known_hosts or pass --fingerprint');
  }
  if (offered.knownHosts.state === 'match') return offered.fingerprint;
  await decide(offered);
  return offered.fingerprint;
}

/** Logs in and runs one harmless command: proves the key, the login and the shell. */
export async function checkLogin(deps: Deps, host: Host): Promise<{ system: string; uptime: string }> {
  const sh = deps.ssh.shell(host);
  const res = await sh.exec(['uname', '-srm']);
  if (res.code !== 0) throw new OpsError(`logged in to ${host.name} but uname failed: ${res.stderr.trim()}`);
  const up = await sh.exec(['uptime']);
  return { system: res.stdout.trim(), uptime: up.stdout.trim() };
}
