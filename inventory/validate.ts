import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { HOOK_KINDS, type AppMetric, type HealthCheck, type Hooks } from './index.js';
import { UsageError } from '../src/core/errors.js';
import { METRIC_SQL_RULES, metricSqlProblem } from '../src/core/metricsql.js';

// Names (environments, hosts, instances) reach hosts as file names, restic tags and
// SQL-free identifiers: keep them to a strict, boring alphabet.
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/i;

export function checkName(kind: string, name: string): string {
  if (typeof name !== 'string' || !NAME.test(name) || name.includes('..')) {
    throw new UsageError(`invalid ${kind} name ${JSON.stringify(name)}`, `use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 63 characters)`);
  }
  return name;
}

/** An absolute path on a host: no NUL, newline, `..` segment or trailing slash games. */
export function checkRemotePath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new UsageError(`invalid path ${JSON.stringify(path)}: it must be absolute`, 'give the full path, e.g. /srv/www/shop');
  }
  if (/[\0\n\r]/.test(path)) throw new UsageError(`invalid path ${JSON.stringify(path)}: control characters are not allowed`);
  const parts = path.split('/').filter(Boolean);
  if (parts.some((p) => p === '..' || p === '.')) {
    throw new UsageError(`invalid path ${JSON.stringify(path)}: '.' and '..' segments are not allowed`, 'give the path without them');
  }
  if (parts.length < 2) {
    throw new UsageError(`refusing path ${JSON.stringify(path)}: too close to the filesystem root`, 'an instance lives in its own directory, e.g. /srv/www/shop');
  }
  return '/' + parts.join('/');
}

export function checkPort(value: string | number): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`invalid port ${JSON.stringify(value)}`, 'a port is a whole number from 1 to 65535');
  return n;
}

/** A host address: a DNS name or an IP literal, nothing a shell or ssh option parser could misread. */
export function checkAddress(addr: string): string {
  if (typeof addr !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/.test(addr)) {
    throw new UsageError(`invalid address ${JSON.stringify(addr)}`, 'give a host name or an IP address');
  }
  return addr;
}

/** A remote login name as POSIX useradd would accept it. */
export function checkUser(user: string): string {
  if (typeof user !== 'string' || !/^[a-z_][a-z0-9_.-]{0,31}$/i.test(user)) throw new UsageError(`invalid user ${JSON.stringify(user)}`, 'a login name of letters, digits, _ . -');
  return user;
}

/** A git ref name (branch or tag), never something git could read as an option. */
export function checkRef(ref: string): string {
  if (typeof ref !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._\/-]{0,199}$/.test(ref) || ref.includes('..') || ref.endsWith('.lock') || ref.endsWith('/')) {
    throw new UsageError(`invalid git ref ${JSON.stringify(ref)}`, 'a branch or tag name such as main or v2.1');
  }
  return ref;
}

/** A path inside an instance: relative, no '..', nothing that escapes the instance directory. */
export function checkLocalPath(p: string): string {
  if (typeof p !== 'string') throw new UsageError(`invalid local path ${JSON.stringify(p)}`, 'give a path relative to the instance directory, e.g. config/local.php');
  const parts = p.split('/').filter(Boolean);
  if (!p || p.startsWith('/') || /[\0\n\r]/.test(p) || parts.some((x) => x === '..' || x === '.') || parts.length === 0) {
    throw new UsageError(`invalid local path ${JSON.stringify(p)}`, 'give a path relative to the instance directory, e.g. config/local.php');
  }
  return parts.join('/');
}

/** An http(s) URL (the instance's site, its health check, a webhook). */
export function checkUrl(url: string): string {
  try {
    if (typeof url !== 'string' || /[\0\r\n]/.test(url)) throw new Error();
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new UsageError(`invalid URL ${JSON.stringify(url)}`, 'give it as https://host/path');
  }
  return url;
}

/** App hooks: known kinds only, each a non-empty argv of strings (run as-is, never through a shell). */
export function checkHooks(hooks: unknown): Hooks {
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) {
    throw new UsageError(`invalid hooks ${JSON.stringify(hooks)}`, `hooks are KIND=COMMAND with KIND one of ${HOOK_KINDS.join(', ')}`);
  }
  for (const [kind, argv] of Object.entries(hooks)) {
    if (!(HOOK_KINDS as readonly string[]).includes(kind)) throw new UsageError(`invalid hook kind ${JSON.stringify(kind)}`, `the kinds are ${HOOK_KINDS.join(', ')}`);
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string' || /\0/.test(a)) || !argv[0]) {
      throw new UsageError(`invalid ${kind} hook ${JSON.stringify(argv)}`, 'a hook is a command and its arguments, e.g. --hook migrate="bin/migrate --force"');
    }
  }
  return hooks as Hooks;
}

/** A health check: an http(s) URL, an HTTP status, and optionally text the page must contain. */
export function checkHealth(h: unknown): HealthCheck {
  const c = h as HealthCheck;
  if (typeof h !== 'object' || h === null) throw new UsageError(`invalid health check ${JSON.stringify(h)}`, 'give --health-url (and --health-status, --health-text)');
  checkUrl(c.url);
  if (!Number.isInteger(c.status) || c.status < 100 || c.status > 599) throw new UsageError(`invalid health status ${JSON.stringify(c.status)}`, 'an HTTP status such as 200');
  if (c.text !== undefined && (typeof c.text !== 'string' || !c.text)) throw new UsageError(`invalid health text ${JSON.stringify(c.text)}`, 'the text the page must contain');
  return { url: c.url, status: c.status, ...(c.text ? { text: c.text } : {}) };
}

/** One app metric: a name, and a read-only sql: query (checked as the probe checks it) or a cmd: command. */
export function checkMetric(m: unknown): AppMetric {
  const x = m as AppMetric;
  if (
    typeof m !== 'object' ||
    m === null ||
    typeof x.name !== 'string' ||
    !/^[a-z][a-z0-9_]{0,39}$/.test(x.name) ||
    (x.kind !== 'sql' && x.kind !== 'cmd') ||
    typeof x.source !== 'string' ||
    /\0/.test(x.source)
  ) {
    throw new UsageError(`invalid metric ${JSON.stringify(m)}`, 'write it as NAME=sql:QUERY or NAME=cmd:COMMAND (NAME in lower case, letters, digits, _); NAME= removes it');
  }
  if (!x.source.trim()) throw new UsageError(`metric ${x.name} has an empty ${x.kind === 'sql' ? 'query' : 'command'}`);
  // Refused now rather than at every probe: the same check the probe makes.
  const problem = x.kind === 'sql' ? metricSqlProblem(x.source) : null;
  if (problem) throw new UsageError(`metric ${x.name} is refused: ${problem}`, `an sql: metric is ${METRIC_SQL_RULES}; use a cmd: metric for anything else`);
  return { name: x.name, kind: x.kind, source: x.source.trim() };
}

/** A pattern watch leaves out: a name or glob, or a relative path; nothing an option parser could misread. */
export function checkWatchExclude(p: string): string {
  if (typeof p !== 'string' || !p || p.startsWith('-') || /[\0\n]/.test(p))
    throw new UsageError(`invalid --watch-exclude ${JSON.stringify(p)}`, 'a file name or glob (cache, *.log) or a path (var/cache)');
  return p;
}

/** A pinned host key, as OpenSSH prints it. */
export function checkFingerprint(fp: string): string {
  const n = typeof fp === 'string' ? normalizeFingerprint(fp) : null;
  if (!n) throw new UsageError(`invalid fingerprint ${JSON.stringify(fp)}`, 'give it as OpenSSH prints it: SHA256: followed by 43 characters (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)');
  return n;
}

/**
 * A private key file opsdeck can log in with: readable, an SSH private key (OpenSSH, PEM or PuTTY)
 * and not protected by a passphrase (opsdeck asks for none: use ssh-agent for those).
 */
export function checkKeyFile(file: string): string {
  if (typeof file !== 'string' || !file || /[\0\n\r]/.test(file)) throw new UsageError(`invalid key file ${JSON.stringify(file)}`, 'give the path of a private key, e.g. --key ~/.ssh/id_ed25519');
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    throw new UsageError(
      `cannot read the key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'give the path of a private key you can read, e.g. --key ~/.ssh/id_ed25519',
    );
  }
  // ssh2 is loaded here, not at start-up: only host add and import need it before a connection.
  const { utils } = createRequire(import.meta.url)('ssh2') as typeof import('ssh2');
  const parsed = utils.parseKey(data);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || !key) {
    const encrypted = /encrypted|passphrase/i.test(key instanceof Error ? key.message : '');
    throw new UsageError(
      encrypted ? `the key file ${file} is protected by a passphrase, which opsdeck does not ask for` : `${file} is not an SSH private key`,
      encrypted
        ? 'load the key into ssh-agent (ssh-add) and leave out --key, or give a key without a passphrase'
        : 'give the private key (not the .pub), e.g. --key ~/.ssh/id_ed25519; make one with ssh-keygen -t ed25519',
    );
  }
  if (!key.isPrivateKey())
    throw new UsageError(`${file} is a public key, not a private one`, `give the private key${file.endsWith('.pub') ? ` (${file.slice(0, -4)})` : ''}, e.g. --key ~/.ssh/id_ed25519`);
  return file;
}

/** A SHA256 fingerprint as OpenSSH prints it, or null when it is not one. */
export function normalizeFingerprint(fp: string): string | null {
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(fp.trim());
  return m ? `SHA256:${m[1]}` : null;
}
