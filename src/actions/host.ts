import type { Host } from '../../inventory/index.js';
import { normalizeFingerprint } from '../../inventory/validate.js';
import { OpsError, UsageError } from '../core/errors.js';
import { hostShell, type Deps } from '../deps/deps.js';

/** `replacing`: the key pinned now, which the offered one would replace. */
export type TrustDecision = (offered: { fingerprint: string; type: string; replacing?: string }) => Promise<void>;

/**
 * Decides which host key to pin: the one in known_hosts, the --fingerprint given, or the one offered
 * once `decide` (a prompt, or --yes meaning accept-new) agrees. A mismatch is refused. A host whose
 * pinned key differs from the one it offers may be a machine in the middle: the new key is pinned
 * only when it matches --fingerprint, or when `decide` is told the old key too (a person says yes;
 * --yes alone accepts only a first key), never because known_hosts lists it.
 */
export async function establishTrust(deps: Deps, host: Host, fingerprint: string | undefined, decide: TrustDecision): Promise<string> {
  const expected = fingerprint === undefined ? undefined : normalizeFingerprint(fingerprint);
  if (fingerprint !== undefined && !expected) {
    throw new UsageError(`invalid fingerprint ${JSON.stringify(fingerprint)}`, 'give it as OpenSSH prints it: SHA256: followed by 43 characters (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)');
  }
  const offered = await deps.ssh.probeHostKey({ ...host, hostKey: null });
  if (expected) {
    if (offered.fingerprint !== expected) {
      throw new OpsError(
        `host ${host.name} offered key ${offered.fingerprint}, not the expected ${expected}: refused`,
        1,
        'check the fingerprint on the host itself; someone may be intercepting the connection',
      );
    }
    return expected;
  }
  if (host.hostKey && offered.fingerprint === host.hostKey) return host.hostKey;
  if (host.hostKey) {
    await decide({ fingerprint: offered.fingerprint, type: offered.type, replacing: host.hostKey });
    return offered.fingerprint;
  }
  if (offered.knownHosts.state === 'mismatch') {
    throw new OpsError(
      `host ${host.name} offered key ${offered.fingerprint}, which differs from ${offered.knownHosts.file} line ${offered.knownHosts.line}: refused`,
      1,
      'verify the key on the host, then fix known_hosts or pass --fingerprint',
    );
  }
  if (offered.knownHosts.state === 'match') return offered.fingerprint;
  await decide(offered);
  return offered.fingerprint;
}

/**
 * An argument the login shell must hand back exactly: both quotes, backslashes (one at the very end,
 * which fish's quotes once swallowed), $, `, !, a glob, a newline. A shell that reads opsdeck's
 * quoting otherwise (csh, tcsh, nushell...) would run other commands than the ones meant.
 */
const SHELL_PROBE = `opsdeck's "probe" $HOME \`id\` !! * ~ %self =ls a\\b\nline two \\`;

export interface LoginCheck {
  system: string;
  uptime: string;
  /** The login user's shell, as the host's passwd says. */
  shell: string;
  /** The become user commands on trees run as, checked through sudo -n. */
  become?: { user: string; uid: number };
}

/**
 * Logs in and runs harmless commands: proves the key, the login, that the login shell reads
 * opsdeck's quoting exactly, and with --become that sudo -n lets the login user act as that user.
 */
export async function checkLogin(deps: Deps, host: Host): Promise<LoginCheck> {
  const sh = deps.ssh.shell(host);
  const res = await sh.exec(['uname', '-srm']);
  if (res.code !== 0) throw new OpsError(`logged in to ${host.name} but uname failed: ${res.stderr.trim()}`);
  const up = await sh.exec(['uptime']);
  // Words any shell reads alike, to name the shell in the error below.
  const pw = await sh.exec(['getent', 'passwd', host.user]);
  const shell = pw.code === 0 ? pw.stdout.trim().split(':')[6] || 'unknown' : 'unknown';
  const echo = await sh.exec(['printf', '%s', SHELL_PROBE]);
  if (echo.code !== 0 || echo.stdout !== SHELL_PROBE) {
    throw new OpsError(
      `the login shell of ${host.user} on host ${host.name} (${shell}) does not read opsdeck's commands as a POSIX shell does: a test argument came back ${echo.code === 0 ? 'changed' : `as an error (${echo.stderr.trim().split('\n').pop()})`}, so commands would not run as written`,
      1,
      `give ${host.user} a POSIX login shell (sh, bash, dash, zsh; fish works too), e.g. on the host: chsh -s /bin/bash ${host.user}`,
    );
  }
  return { system: res.stdout.trim(), uptime: up.stdout.trim(), shell, ...(host.become && host.become !== host.user && { become: await checkBecome(deps, host) }) };
}

/** Runs `id` as the host's become user through sudo -n: a password prompt or a missing user is an error naming the fix. */
export async function checkBecome(deps: Deps, host: Host): Promise<{ user: string; uid: number }> {
  const res = await hostShell(deps, host, true).exec(['id', '-u']);
  if (res.code !== 0)
    throw new OpsError(
      `on host ${host.name}, running id as ${host.become} through sudo failed: ${res.stderr.trim()}`,
      1,
      `check the sudoers rule for ${host.user} on the host, then run: opsdeck host check ${host.name}`,
    );
  return { user: host.become!, uid: Number(res.stdout.trim()) };
}
