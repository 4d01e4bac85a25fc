/** What the audit trail records of a run's parameters, and as whom. */
import { userInfo } from 'node:os';

/** Keys whose values never reach the audit trail. */
const SECRET_KEY = /pass|secret|token|key$|credential/i;

export function redact(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    if (SECRET_KEY.test(k) && k !== 'keyFile') out[k] = '[redacted]';
    else if (typeof v === 'string') out[k] = v.replace(/(\w+:\/\/[^:/@\s]+):[^@\s]+@/g, '$1:[redacted]@');
    else out[k] = v;
  }
  return out;
}

/** The Unix user running opsdeck, for the audit trail and locks (a uid when it has no name). */
export function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}
