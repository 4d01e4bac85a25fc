import { UsageError } from './errors.js';

// Names (environments, hosts, instances) reach hosts as file names, restic tags and
// SQL-free identifiers: keep them to a strict, boring alphabet.
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/i;

export function checkName(kind: string, name: string): string {
  if (typeof name !== 'string' || !NAME.test(name) || name.includes('..')) {
    throw new UsageError(
      `invalid ${kind} name ${JSON.stringify(name)}`,
      `use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 63 characters)`,
    );
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
  if (!/^[a-z_][a-z0-9_.-]{0,31}$/i.test(user)) throw new UsageError(`invalid user ${JSON.stringify(user)}`, 'a login name of letters, digits, _ . -');
  return user;
}

/** A git ref name (branch or tag), never something git could read as an option. */
export function checkRef(ref: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._\/-]{0,199}$/.test(ref) || ref.includes('..') || ref.endsWith('.lock') || ref.endsWith('/')) {
    throw new UsageError(`invalid git ref ${JSON.stringify(ref)}`, 'a branch or tag name such as main or v2.1');
  }
  return ref;
}

/** A path inside an instance: relative, no '..', nothing that escapes the instance directory. */
export function checkLocalPath(p: string): string {
  const parts = p.split('/').filter(Boolean);
  if (!p || p.startsWith('/') || /[\0\n\r]/.test(p) || parts.some((x) => x === '..' || x === '.') || parts.length === 0) {
    throw new UsageError(`invalid local path ${JSON.stringify(p)}`, 'give a path relative to the instance directory, e.g. config/local.php');
  }
  return parts.join('/');
}
