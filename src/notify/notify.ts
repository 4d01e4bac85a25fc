import { requestFailureReason } from '../core/http-reason.js';
import { httpCall } from '../core/http-request.js';
import { createHmac } from 'node:crypto';
import { hostname } from 'node:os';
import type { Inventory } from '../../inventory/index.js';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';

export interface Alert {
  /** One line: what failed, on what. */
  subject: string;
  /** What failed, where, when, and the command to look at it. */
  body: string;
  /** Structured fields for webhooks. */
  fields: Record<string, unknown>;
}

export interface Delivery {
  channel: string;
  ok: boolean;
  error?: string;
}

/** The signature a webhook receiver checks: HMAC-SHA256 over "timestamp.body" with the shared secret. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/**
 * Sends an alert on every configured channel. A channel that cannot be reached is reported in the
 * result (and by the caller on stderr); it never throws, so it never changes a run's exit code.
 */
export async function sendAlert(inv: Inventory, alert: Alert, timeoutMs = 10_000): Promise<Delivery[]> {
  const out: Delivery[] = [];
  for (const ch of inv.notifyChannels()) {
    // A monitoring ping is no alert channel: it hears of every unattended run (cli/run.ts).
    if (ch.kind === 'ping') continue;
    try {
      if (ch.kind === 'email') {
        const url = new URL(ch.config.smtp);
        if (ch.secret) url.password = encodeURIComponent(ch.secret);
        // A password over smtp:// goes only after STARTTLS: without requireTLS, a server (or a machine
        // in the middle) that does not offer STARTTLS gets it in the clear. Nothing in the URL undoes that.
        const requireTLS = url.protocol === 'smtp:' && !!ch.secret;
        if (requireTLS) for (const k of ['requireTLS', 'ignoreTLS', 'secure']) url.searchParams.delete(k);
        // Loaded only when mail goes out: it is heavy, and most runs never send any.
        const { default: nodemailer } = await import('nodemailer');
        const options: SMTPTransport.Options = { url: url.toString(), requireTLS, connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs };
        const transport = nodemailer.createTransport(options);
        await transport.sendMail({ from: ch.config.from, to: ch.config.to, subject: `[opsdeck] ${alert.subject}`, text: alert.body });
        transport.close();
      } else {
        const body = JSON.stringify({ subject: alert.subject, text: alert.body, ...alert.fields });
        const ts = String(Math.floor(Date.now() / 1000));
        // The cause is named (refused, no such name, TLS, timeout), never only "failed".
        const res = await httpCall(ch.config.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-opsdeck-timestamp': ts, 'x-opsdeck-signature': signWebhook(ch.secret ?? '', ts, body) },
          body,
          timeoutMs,
          maxBody: 0,
        }).catch((err: unknown) => {
          // The origin only: a webhook's path often holds its secret token.
          throw new Error(requestFailureReason(err, new URL(ch.config.url).origin, timeoutMs));
        });
        if (res.status < 200 || res.status > 299) throw new Error(`the receiver answered ${res.status}`);
      }
      out.push({ channel: ch.kind, ok: true });
    } catch (err) {
      out.push({ channel: ch.kind, ok: false, error: (err as Error).message });
    }
  }
  return out;
}

/** The alert for a run that failed: what, where, when, why, and how to look at it. */
export function runFailedAlert(o: { command: string; instance: string | null; error: string; runId: number | null; home: string }): Alert {
  const when = new Date().toISOString();
  const where = hostname();
  const look = o.runId !== null ? `opsdeck --home ${o.home} runs ${o.runId}` : `opsdeck --home ${o.home} runs`;
  return {
    subject: `${o.command}${o.instance ? ` of ${o.instance}` : ''} FAILED`,
    body: [`${o.command}${o.instance ? ` of ${o.instance}` : ''} failed on ${where} at ${when}.`, '', o.error, '', `See the run: ${look}`].join('\n'),
    fields: { event: 'run-failed', command: o.command, instance: o.instance, error: o.error, runId: o.runId, at: when, jumpHost: where },
  };
}
