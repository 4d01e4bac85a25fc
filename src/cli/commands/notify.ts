import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { checkUrl } from '../../../inventory/validate.js';
import { EXIT, UsageError } from '../../core/errors.js';
import type { Act } from '../action.js';
import { readSecret } from '../prompt.js';
import { alert, runChange } from '../run.js';
import { sendPing } from '../../notify/ping.js';
import { examples } from './help.js';

interface EmailOpts {
  smtp: string;
  to: string;
  from: string;
  smtpPasswordFile?: string;
}

interface WebhookOpts {
  url: string;
  /** Refused: only there to say why. */
  secret?: string;
  secretFile?: string;
}

/** notify: where alerts go. Secrets are kept encrypted and never reach the audit trail. */
export function register(program: Command, act: Act): void {
  const notify = program
    .command('notify')
    .description('where alerts go when an unattended run fails')
    .addHelpText(
      'after',
      examples(
        'opsdeck notify email --smtp smtp://alerts@mail.example:587 --to oncall@example.com',
        'opsdeck notify webhook --url https://hooks.example/opsdeck --secret-file ~/webhook.secret',
        'opsdeck notify ping --url https://hc-ping.com/UUID',
        'opsdeck notify test',
      ),
    );
  notify
    .command('email')
    .description('alerts by email over SMTP (the password: OPSDECK_SMTP_PASSWORD, --smtp-password-file or the prompt, never in the URL; kept encrypted; over smtp:// it goes only after STARTTLS)')
    .addHelpText(
      'after',
      examples(
        'OPSDECK_SMTP_PASSWORD=... opsdeck notify email --smtp smtp://alerts@mail.example:587 --to oncall@example.com',
        'opsdeck notify email --smtp smtp://alerts@mail.example:587 --to oncall@example.com --smtp-password-file ~/smtp.pw',
      ),
    )
    .requiredOption('--smtp <url>', 'smtp://[USER@]HOST:PORT (smtps:// for TLS)')
    .requiredOption('--to <addr>', 'recipient')
    .option('--from <addr>', 'sender', `opsdeck@${hostname()}`)
    .option('--smtp-password-file <file>', "read the SMTP user's password from this file")
    .action(
      act(async (app, g, o: EmailOpts) => {
        let url: URL;
        try {
          url = new URL(o.smtp);
          if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new Error();
        } catch {
          throw new UsageError(`invalid SMTP URL ${JSON.stringify(o.smtp)}`, 'write it as smtp://HOST:PORT or smtps://USER@HOST:465');
        }
        if (!/^[^\s@]+@[^\s@]+$/.test(o.to) || !/^[^\s@]+@[^\s@]+$/.test(o.from)) throw new UsageError('invalid e-mail address', 'give --to (and --from) as name@domain');
        // As with database URLs: a password in argv shows in ps and in shell history.
        if (url.password)
          throw new UsageError(
            'the SMTP URL holds a password, which would be visible in the process list and shell history',
            `drop it from the URL (smtp://${url.username || 'USER'}@${url.host}) and give it in OPSDECK_SMTP_PASSWORD, with --smtp-password-file FILE, or at the prompt`,
          );
        const user = decodeURIComponent(url.username);
        if (!user && o.smtpPasswordFile) throw new UsageError('an SMTP password needs a user to log in as', `name it in the URL: smtp://USER@${url.host}`);
        const password = user ? ((await readSecret(`SMTP password of ${user}`, { file: o.smtpPasswordFile, envVar: 'OPSDECK_SMTP_PASSWORD' })) ?? null) : null;
        if (user && !password) throw new UsageError(`no SMTP password given for ${user}`, 'put it in OPSDECK_SMTP_PASSWORD, give --smtp-password-file FILE, or run at a terminal to be asked');
        const smtp = url.toString();
        // The password as a fact, never its value.
        return runChange(app, g, 'notify email', { kind: 'email', smtp, to: o.to, from: o.from, login: password ? 'password set' : 'none' }, () => {
          app.inv.setNotify('email', { smtp, to: o.to, from: o.from }, password);
          const tls = url.protocol === 'smtps:' ? '' : password ? '; the password goes only over STARTTLS' : '';
          return { json: { kind: 'email', smtp, to: o.to }, text: `alerts will be mailed to ${o.to} through ${url.host}${password ? ` (password stored encrypted${tls})` : ''}` };
        });
      }),
    );
  notify
    .command('webhook')
    .description('alerts as a JSON POST, signed: X-Opsdeck-Signature = sha256=HMAC(secret, timestamp + "." + body)')
    .addHelpText(
      'after',
      examples('opsdeck notify webhook --url https://hooks.example/opsdeck --secret-file ~/webhook.secret', 'OPSDECK_WEBHOOK_SECRET=... opsdeck notify webhook --url https://hooks.example/opsdeck'),
    )
    .requiredOption('--url <url>', 'where to POST')
    .option('--secret-file <file>', 'read the shared secret from this file (else OPSDECK_WEBHOOK_SECRET, or the prompt)')
    .addOption(new Option('--secret <s>', 'refused: a secret in argv shows in ps and shell history').hideHelp())
    .action(
      act(async (app, g, o: WebhookOpts) => {
        if (o.secret !== undefined)
          throw new UsageError(
            'the webhook secret was given in the command line, where it is visible in the process list and shell history',
            'give it in OPSDECK_WEBHOOK_SECRET, with --secret-file FILE, or at the prompt',
          );
        const secret = await readSecret('webhook secret', { file: o.secretFile, envVar: 'OPSDECK_WEBHOOK_SECRET' });
        if (!secret) throw new UsageError('a webhook needs a secret to sign with', 'put it in OPSDECK_WEBHOOK_SECRET, give --secret-file FILE, or run at a terminal to be asked');
        const url = checkUrl(o.url);
        // Only the host: many webhook URLs carry a token in their path, as good as a password.
        return runChange(app, g, 'notify webhook', { kind: 'webhook', urlHost: new URL(url).host, signing: 'secret set' }, () => {
          app.inv.setNotify('webhook', { url }, secret);
          return { json: { kind: 'webhook', url: o.url }, text: `alerts will be POSTed to ${o.url}, signed` };
        });
      }),
    );
  notify
    .command('ping')
    .description('monitoring pings (Healthchecks.io conventions): every unattended run POSTs URL/start, then URL when it ended well or URL/fail, with its summary as the body')
    .addHelpText('after', examples('opsdeck notify ping --url https://hc-ping.com/0f3c...-uuid', 'opsdeck notify remove ping', 'opsdeck notify test   # sends a start and a success ping'))
    .requiredOption('--url <url>', "the check's ping URL (http or https)")
    .action(
      act(async (app, g, o: { url: string }) => {
        const url = checkUrl(o.url).replace(/\/+$/, '');
        // Only the host in the audit trail: the path of a ping URL is what lets anyone ping it.
        return runChange(app, g, 'notify ping', { kind: 'ping', urlHost: new URL(url).host }, () => {
          app.inv.setNotify('ping', { url }, null);
          return { json: { kind: 'ping', url }, text: `every unattended run will ping ${new URL(url).host}: start, then success or fail` };
        });
      }),
    );
  notify
    .command('list')
    .description('the alert channels (no secrets)')
    .addHelpText('after', examples('opsdeck notify list', 'opsdeck notify list --json'))
    .action(
      act(async (app) => {
        const list = app.inv
          .notifyChannels()
          .map((c) => ({ kind: c.kind, ...c.config, ...(c.kind === 'ping' && { url: `${new URL(c.config.url).origin}/...` }), secret: c.secret ? '[stored encrypted]' : null }));
        return { json: list, text: list.length ? list.map((c) => `${c.kind}: ${JSON.stringify({ ...c, kind: undefined })}`).join('\n') : 'no alert channels: opsdeck notify email|webhook ...' };
      }),
    );
  notify
    .command('remove <kind>')
    .description('stop sending alerts that way (email, webhook or ping)')
    .addHelpText('after', examples('opsdeck notify remove email', 'opsdeck notify remove webhook', 'opsdeck notify remove ping'))
    .action(
      act(async (app, g, kind: string) => {
        if (!app.inv.notifyChannels().some((c) => c.kind === kind)) throw new UsageError(`no ${kind} alert channel`, 'see them with: opsdeck notify list');
        return runChange(app, g, 'notify remove', { kind }, () => {
          if (!app.inv.removeNotify(kind)) throw new UsageError(`no ${kind} alert channel`, 'see them with: opsdeck notify list');
          return { json: { removed: kind }, text: `${kind} alerts removed` };
        });
      }),
    );
  notify
    .command('test')
    .description('send a test alert on every channel')
    .addHelpText('after', examples('opsdeck notify test', 'opsdeck notify test --json'))
    .action(
      act(async (app) => {
        if (!app.inv.notifyChannels().length) throw new UsageError('no alert channels to test', 'add one with: opsdeck notify email ... or notify webhook ... or notify ping ...');
        const sent = await alert(app, { subject: 'test alert', body: `This is a test alert from opsdeck on ${hostname()} (${app.home}).`, fields: { event: 'test' } });
        const monitor = app.inv.notifyChannels().find((c) => c.kind === 'ping');
        if (monitor) {
          // A start and a success: the monitor shows the check up, with its duration.
          for (const kind of ['start', 'success'] as const) {
            const r = await sendPing(monitor.config.url, kind, `test ping from opsdeck on ${hostname()} (${app.home})`);
            sent.push({ channel: `ping ${kind}`, ok: r.ok, ...(r.error && { error: r.error }) });
          }
        }
        const bad = sent.filter((d) => !d.ok);
        return { json: sent, text: sent.map((d) => `${d.channel}: ${d.ok ? 'sent' : `FAILED: ${d.error}`}`).join('\n'), exitCode: bad.length ? EXIT.FAILED : EXIT.OK };
      }),
    );
}
