import { requestFailureReason } from '../core/http-reason.js';
import { httpCall } from '../core/http-request.js';

/** Healthchecks.io conventions: URL/start when a job starts, URL when it ended well, URL/fail when not. */
export type PingKind = 'start' | 'success' | 'fail';

export interface PingResult {
  kind: PingKind;
  ok: boolean;
  error?: string;
}

/** Healthchecks.io keeps the first 100 kB of a body; the summary is cut well before that. */
const MAX_BODY = 10_000;

export function pingUrl(base: string, kind: PingKind): string {
  const u = base.replace(/\/+$/, '');
  return kind === 'success' ? u : `${u}/${kind}`;
}

/**
 * Sends one monitoring ping (a POST, body = the run's summary). Never throws: a monitor that cannot
 * be reached is reported by the caller and changes nothing about the run.
 */
export async function sendPing(base: string, kind: PingKind, body: string, timeoutMs = 10_000): Promise<PingResult> {
  const url = pingUrl(base, kind);
  try {
    const res = await httpCall(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8', 'user-agent': 'opsdeck' },
      body: body.length > MAX_BODY ? body.slice(0, MAX_BODY) + '\n[cut]' : body,
      timeoutMs,
      maxBody: 0,
    }).catch((err: unknown) => {
      // The origin only: the path of a ping URL is its secret (Healthchecks' UUID).
      throw new Error(requestFailureReason(err, new URL(url).origin, timeoutMs));
    });
    if (res.status < 200 || res.status > 299) throw new Error(`the monitor at ${new URL(url).origin} answered ${res.status}`);
    return { kind, ok: true };
  } catch (err) {
    return { kind, ok: false, error: (err as Error).message };
  }
}
