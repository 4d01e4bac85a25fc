// One small HTTP client for health checks, webhooks and monitoring pings. Node's fetch would do,
// but loading it (undici) costs more CPU than the rest of a health sweep's start-up on this kind of
// machine, and every `opsdeck health` from cron pays it; node:http is already loaded.
import { request as plainRequest, type IncomingMessage } from 'node:http';
import { request as tlsRequest } from 'node:https';

export interface HttpAnswer {
  status: number;
  /** The body as text, cut at maxBody bytes. */
  body: string;
}

export interface HttpOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Bytes of the body kept; the rest is not read (a health page of gigabytes must not fill memory). */
  maxBody?: number;
}

/**
 * A request that resolves with the status and body whatever the status (redirects are answers, not
 * followed), and rejects with Node's own error (its `code`: ECONNREFUSED, ENOTFOUND, a TLS code) or,
 * after timeoutMs, with a TimeoutError when nothing connected, or code ANSWER_TIMEOUT when the server
 * took the connection and never answered: http-reason.ts turns each into words.
 */
export function httpCall(url: string, o: HttpOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new Error(`not a URL: ${url}`));
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      reject(new Error(`not an http or https URL: ${u.protocol}`));
      return;
    }
    const body = o.body === undefined ? undefined : Buffer.from(o.body);
    const headers: Record<string, string> = { connection: 'close', ...o.headers };
    if (body) headers['content-length'] = String(body.length);
    // No agent: one connection per request, closed after it, so nothing keeps the process alive and
    // each probe measures a real connection.
    const req = (u.protocol === 'https:' ? tlsRequest : plainRequest)(u, { method: o.method ?? 'GET', headers, agent: false });
    let connected = false;
    req.once('socket', (s) => s.once(u.protocol === 'https:' ? 'secureConnect' : 'connect', () => (connected = true)));
    const timer = setTimeout(() => {
      const err = connected ? Object.assign(new Error('no answer'), { code: 'ANSWER_TIMEOUT' }) : Object.assign(new Error('timeout'), { name: 'TimeoutError' });
      req.destroy(err);
    }, o.timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    req.on('error', fail);
    req.once('response', (res: IncomingMessage) => {
      const max = o.maxBody ?? 1 << 20;
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        clearTimeout(timer);
        // Decoded once, whole: a character split across chunks stays whole.
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, max).toString('utf8') });
        res.destroy();
      };
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= max) done();
      });
      res.once('end', done);
      res.on('error', fail);
    });
    req.end(body);
  });
}
