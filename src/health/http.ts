import type { Instance } from '../../inventory/index.js';
import { requestFailureReason, statusReason } from '../core/http-reason.js';
import { httpCall } from '../core/http-request.js';

export interface HealthResult {
  ok: boolean;
  url: string;
  status?: number;
  ms: number;
  reason?: string;
}

/** Asks the instance's health URL (or its URL) and judges the answer: status, and text when set. */
export async function checkHealth(inst: Instance, timeoutMs = 10_000): Promise<HealthResult> {
  const hc = inst.health ?? (inst.url ? { url: inst.url, status: 200 } : null);
  if (!hc) return { ok: true, url: '', ms: 0, reason: 'no health check configured' };
  const t0 = Date.now();
  try {
    const res = await httpCall(hc.url, { timeoutMs, headers: { 'user-agent': 'opsdeck-health' } });
    const body = res.body;
    const ms = Date.now() - t0;
    if (res.status !== hc.status) return { ok: false, url: hc.url, status: res.status, ms, reason: statusReason(res.status, hc.status, body, inst.maintenanceSince ? inst.name : undefined) };
    if (hc.text && !body.includes(hc.text)) return { ok: false, url: hc.url, status: res.status, ms, reason: `the page does not contain ${JSON.stringify(hc.text)}` };
    return { ok: true, url: hc.url, status: res.status, ms };
  } catch (err) {
    return { ok: false, url: hc.url, ms: Date.now() - t0, reason: requestFailureReason(err, hc.url, timeoutMs) };
  }
}
