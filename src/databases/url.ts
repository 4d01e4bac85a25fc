import { isIPv6 } from 'node:net';
import { UsageError } from '../core/errors.js';

/** A database URL taken apart, after the refusals every engine makes; names are checked by the engine. */
export interface UrlParts {
  user: string;
  database: string;
  host: string;
  /** The port written in the URL, if any. */
  port?: number;
  /** Whether the host was an IPv6 literal in brackets. */
  v6: boolean;
}

/**
 * The refusals every engine's URL makes: not a URL, another scheme, a password in it (it would sit
 * in argv and shell history: it goes in OPSDECK_DB_PASSWORD, --db-password-file or the prompt),
 * connection parameters (they would be dropped on the way to the client: refused, not ignored).
 */
export function splitDbUrl(url: string, o: { schemes: readonly string[]; form: string; schemeHint: string; paramsHint: string }): UrlParts {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`invalid database URL ${JSON.stringify(url)}`, `write it as ${o.form}`);
  }
  if (!o.schemes.includes(u.protocol.replace(/:$/, ''))) throw new UsageError(`unsupported database kind ${JSON.stringify(u.protocol.replace(/:$/, ''))}`, o.schemeHint);
  if (u.password) {
    throw new UsageError(
      'the database URL holds a password, which would be visible in the process list and shell history',
      'drop it from the URL and give it in OPSDECK_DB_PASSWORD, with --db-password-file FILE, or at the prompt',
    );
  }
  if (u.search || u.hash || /[?#]/.test(url)) {
    throw new UsageError(`the database URL ${JSON.stringify(url)} holds connection parameters (${u.search || u.hash || '?'}), which opsdeck does not pass on`, o.paramsHint);
  }
  // An IPv6 literal comes bracketed ([::1]); it reaches the client bare.
  const v6 = /^\[(.*)\]$/.exec(u.hostname);
  return {
    user: decodeURIComponent(u.username),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')),
    host: v6 ? v6[1] : u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : undefined,
    v6: !!v6,
  };
}

/** The host part is a name, an IPv4 address, or (given bracketed) an IPv6 address. */
export function validHost(p: UrlParts): boolean {
  return p.v6 ? isIPv6(p.host) : /^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(p.host);
}
