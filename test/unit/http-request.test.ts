import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requestFailureReason } from '../../src/core/http-reason.js';
import { httpCall } from '../../src/core/http-request.js';

// The client behind health checks, webhooks and pings, against a real server on loopback.
let server: Server;
let base: string;
const sockets = new Set<Socket>();
const received: { method?: string; headers: Record<string, unknown>; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ method: req.method, headers: req.headers, body });
      if (req.url === '/silent') return; // takes the request, never answers
      if (req.url === '/moved') {
        res.writeHead(301, { location: '/elsewhere' }).end('moved');
        return;
      }
      if (req.url === '/split') {
        // "é" is two bytes: sent in two writes, one byte each.
        const e = Buffer.from('é');
        res.writeHead(200);
        res.write(Buffer.concat([Buffer.from('caf'), e.subarray(0, 1)]));
        setTimeout(() => res.end(e.subarray(1)), 20);
        return;
      }
      if (req.url === '/big') {
        res.writeHead(200);
        res.end('x'.repeat(5000));
        return;
      }
      res.writeHead(503).end('<h1>Down for maintenance</h1>');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

it('returns any status with its body, does not follow redirects, and posts a body with its length', async () => {
  expect(await httpCall(`${base}/`, { timeoutMs: 5000 })).toEqual({ status: 503, body: '<h1>Down for maintenance</h1>' });
  expect(await httpCall(`${base}/moved`, { timeoutMs: 5000 })).toEqual({ status: 301, body: 'moved' });
  received.length = 0;
  await httpCall(`${base}/`, { method: 'POST', body: '{"subject":"é"}', headers: { 'content-type': 'application/json' }, timeoutMs: 5000 });
  expect(received[0]).toMatchObject({ method: 'POST', body: '{"subject":"é"}', headers: { 'content-length': '16', 'content-type': 'application/json' } });
});

it('keeps a character split across chunks whole, and keeps no more of the body than asked', async () => {
  expect((await httpCall(`${base}/split`, { timeoutMs: 5000 })).body).toBe('café');
  expect((await httpCall(`${base}/big`, { timeoutMs: 5000, maxBody: 100 })).body).toBe('x'.repeat(100));
});

it('says why a request failed: refused, no answer after connecting, not an http URL', async () => {
  const refused = await httpCall('http://127.0.0.1:1023/', { timeoutMs: 5000 }).catch((e: unknown) => e);
  expect(requestFailureReason(refused, 'http://127.0.0.1:1023/', 5000)).toBe('connection refused by 127.0.0.1:1023: nothing listens there (is the web server running?)');
  const silent = await httpCall(`${base}/silent`, { timeoutMs: 300 }).catch((e: unknown) => e);
  expect(requestFailureReason(silent, `${base}/silent`, 300)).toBe(`timeout after 0.3 s: ${new URL(base).host} accepted the connection but sent no answer`);
  await expect(httpCall('ftp://127.0.0.1/', { timeoutMs: 5000 })).rejects.toThrow('not an http or https URL: ftp:');
});
