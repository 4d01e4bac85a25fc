import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, stopHost } from '../../fixtures/lab.js';
import { addInstance, cli, homeWithHosts, lab, must } from '../helpers.js';

const SECRET = 'webhook-shared-secret';

describe('alerts', () => {
  const mails: { from: string; to: string[]; data: string }[] = [];
  const hooks: { headers: Record<string, string | string[] | undefined>; body: string; valid: boolean }[] = [];
  let smtp: SMTPServer;
  let smtpPort = 0;
  let http: Server;
  let httpPort = 0;
  let home: string;

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onAuth: (auth, _s, cb) => (auth.username === 'alerts' && auth.password === 'smtp-pw' ? cb(null, { user: 'alerts' }) : cb(new Error('bad login'))),
      onData(stream, session, cb) {
        let data = '';
        stream.on('data', (c) => (data += c));
        stream.on('end', () => {
          // Undo quoted-printable soft line breaks, as a mail reader would.
          mails.push({ from: String(session.envelope.mailFrom && session.envelope.mailFrom.address), to: session.envelope.rcptTo.map((r) => r.address), data: data.replace(/=\r?\n/g, '') });
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    smtpPort = (smtp.server.address() as { port: number }).port;
    http = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        // What a receiver does: recompute the HMAC over "timestamp.body" and compare in constant time.
        const ts = String(req.headers['x-opsdeck-timestamp']);
        const want = Buffer.from('sha256=' + createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex'));
        const got = Buffer.from(String(req.headers['x-opsdeck-signature']));
        const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
        hooks.push({ headers: req.headers, body, valid: fresh && got.length === want.length && timingSafeEqual(got, want) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpPort = (http.address() as { port: number }).port;

    home = await homeWithHosts(['lab3']);
    await addInstance(home, 'lab3', 'alert-prod', 'prod');
    // No login: this server offers no STARTTLS, and a password over smtp:// goes only after STARTTLS
    // (hostile-input.test.ts checks that it is then never sent).
    await must(cli(home, ['notify', 'email', '--smtp', `smtp://127.0.0.1:${smtpPort}`, '--to', 'oncall@example.test', '--from', 'opsdeck@example.test']));
    await must(cli(home, ['notify', 'webhook', '--url', `http://127.0.0.1:${httpPort}/hook`], { OPSDECK_WEBHOOK_SECRET: SECRET }));
  });
  afterAll(async () => {
    await startHost(lab().hosts[2]);
    await new Promise<void>((r) => smtp.close(() => r()));
    await new Promise((r) => http.close(r));
  });

  it('keeps the SMTP password and the webhook secret out of the listing', async () => {
    const list = (await must(cli(home, ['notify', 'list']))).stdout;
    expect(list).toContain('oncall@example.test');
    expect(list).not.toContain('smtp-pw');
    expect(list).not.toContain(SECRET);
  });

  it('an unattended backup that fails (host down) mails and posts a signed webhook, exit non-zero', async () => {
    await stopHost('lab3');
    const r = await cli(home, ['backup', 'alert-prod', '--yes']);
    expect(r.code).toBe(1);
    expect(mails).toHaveLength(1);
    expect(mails[0].to).toEqual(['oncall@example.test']);
    expect(mails[0].data).toMatch(/Subject: \[opsdeck\] backup of alert-prod FAILED/);
    expect(mails[0].data).toMatch(/cannot connect to host lab3/);
    expect(mails[0].data).toMatch(new RegExp(`opsdeck --home ${home} runs \\d+`));
    expect(hooks).toHaveLength(1);
    expect(hooks[0].valid).toBe(true);
    expect(JSON.parse(hooks[0].body)).toMatchObject({ event: 'run-failed', command: 'backup', instance: 'alert-prod' });
  });

  it('an alert that cannot be delivered is said and does not change the exit code', async () => {
    await must(cli(home, ['notify', 'webhook', '--url', 'http://127.0.0.1:1023/hooks/T0KEN-in-the-path'], { OPSDECK_WEBHOOK_SECRET: SECRET }));
    const r = await cli(home, ['backup', 'alert-prod', '--yes']);
    expect(r.code).toBe(1);
    // Why, named; the URL's path (a webhook's token, often) is not printed.
    expect(r.stderr).toMatch(/could not send the webhook alert: connection refused by 127\.0\.0\.1:1023/);
    expect(r.stderr).not.toContain('T0KEN');
    expect(mails).toHaveLength(2);
    await startHost(lab().hosts[2]);
    const t = await cli(home, ['notify', 'test']);
    expect(t.code).toBe(1); // the webhook channel is still unreachable
    expect(t.stdout).toMatch(/email: sent/);
    expect(mails).toHaveLength(3);
  });

  it('backups check alerts when an instance has no recent enough backup', async () => {
    await must(cli(home, ['notify', 'remove', 'webhook']));
    const before = mails.length;
    const r = await cli(home, ['backups', 'check', '--yes', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ instance: 'alert-prod', ok: false, newestBackup: null, limit: '26h' })]);
    expect(mails.length).toBe(before + 1);
    expect(mails.at(-1)!.data).toMatch(/alert-prod \(prod\): newest good backup never; the limit is 26h/);
    await must(cli(home, ['backup', 'alert-prod']));
    await must(cli(home, ['backups', 'check', '--yes']));
    await must(cli(home, ['env', 'set', 'prod', '--max-backup-age', '1m']));
    expect((await cli(home, ['env', 'set', 'prod', '--max-backup-age', 'soon'])).code).toBe(2);
  });
});
