// Why a site did not answer as expected, in words an on-call person acts on, from the error of
// http-request.ts: Node's own (a system error's code, a TLS error's code, with address and port),
// sometimes an AggregateError of one per address tried, or its timeouts.

interface Cause {
  code?: string;
  message?: string;
  address?: string;
  port?: number;
  hostname?: string;
  errors?: Cause[];
}

const asCause = (x: unknown): Cause | undefined => (x && typeof x === 'object' ? (x as Cause) : undefined);

/** The innermost cause that carries a code, or the innermost one. */
function rootCause(err: unknown): Cause | undefined {
  let c = asCause(err);
  for (let i = 0; i < 5 && c; i++) {
    const next = asCause((c as { cause?: unknown }).cause) ?? c.errors?.[0];
    if (!next) break;
    c = next;
  }
  return c;
}

const TLS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ERR_SSL/;

/** Why a request to `url` failed (the error httpCall rejected with): connection refused, name not found, TLS certificate, timeout after N s, ... */
export function requestFailureReason(err: unknown, url: string, timeoutMs: number): string {
  const secs = Math.round(timeoutMs / 100) / 10;
  if ((err as { name?: string } | undefined)?.name === 'TimeoutError') return `timeout after ${secs} s: no answer from ${url}`;
  let where = url;
  try {
    const u = new URL(url);
    where = u.host;
  } catch {
    // a URL that does not parse: said as given
  }
  const c = rootCause(err);
  const code = c?.code ?? '';
  const at = c?.address ? `${c.address}${c.port ? `:${c.port}` : ''}` : where;
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused by ${at}: nothing listens there (is the web server running?)`;
    case 'ENOTFOUND':
      return `name not found: ${c?.hostname ?? where} does not resolve (DNS)`;
    case 'EAI_AGAIN':
      return `name lookup of ${c?.hostname ?? where} failed for now (DNS server not answering)`;
    case 'ETIMEDOUT':
      return `connection to ${at} timed out (a firewall dropping packets, or the host is down)`;
    case 'EHOSTUNREACH':
      return `host ${at} unreachable`;
    case 'ENETUNREACH':
      return `network unreachable on the way to ${at}`;
    case 'ECONNRESET':
      return `connection to ${at} closed before an answer`;
    case 'ANSWER_TIMEOUT':
      return `timeout after ${secs} s: ${where} accepted the connection but sent no answer`;
  }
  if (TLS.test(code)) return `TLS certificate problem at ${where}: ${c?.message ?? code}`;
  const message = c?.message ?? (err instanceof Error ? err.message : String(err));
  return code ? `${message} (${code})` : message;
}

/** An answer with another status than expected; a 503 that is the maintenance page says so (inMaintenance: the instance's name when it is in maintenance). */
export function statusReason(status: number, expected: number, body: string, inMaintenance?: string): string {
  const base = `answered ${status}, expected ${expected}`;
  if (status !== 503) return base;
  if (inMaintenance) return `${base}: the maintenance page (${inMaintenance} is in maintenance: opsdeck maintenance ${inMaintenance} off)`;
  if (/maintenance/i.test(body.slice(0, 4096))) return `${base}: a maintenance page, though opsdeck did not put the instance in maintenance`;
  return `${base} (service unavailable)`;
}
