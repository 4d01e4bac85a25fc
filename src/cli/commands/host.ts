import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Host } from '../../../inventory/index.js';
import { checkAddress, checkKeyFile, checkName, checkPort, checkUser } from '../../../inventory/validate.js';
import { UsageError } from '../../core/errors.js';
import { checkLogin, establishTrust, type TrustDecision } from '../../actions/host.js';
import type { GlobalOpts } from '../../app/app.js';
import type { Act } from '../action.js';
import { confirm, interactive } from '../prompt.js';
import { runChange } from '../run.js';
import { table } from '../render.js';
import { examples } from './help.js';

interface HostAddOpts {
  address: string;
  port: string;
  user: string;
  key?: string;
  jump?: string;
  fingerprint?: string;
  become?: string;
}

interface HostSetOpts {
  /** A user, or false for --no-become. */
  become?: string | false;
}

interface HostTrustOpts {
  fingerprint?: string;
}

function hostView(h: Host) {
  return { name: h.name, address: h.address, port: h.port, user: h.user, become: h.become ?? null, keyFile: h.keyFile, jump: h.jump, hostKey: h.hostKey, createdAt: h.createdAt };
}

/** Asks whether to trust the key a host offers; a changed key is never accepted by --yes. */
function trustPrompt(g: GlobalOpts, host: Host): TrustDecision {
  return async (offered) => {
    if (offered.replacing) {
      // A changed key is what a machine in the middle looks like: --yes never answers this.
      const what = `host ${host.name} (${host.address}:${host.port}) now offers the ${offered.type} key ${offered.fingerprint}, but the key pinned for it is ${offered.replacing}`;
      if (!interactive()) {
        throw new UsageError(
          `${what}: refused; --yes accepts only a host's first key, and a changed key can mean someone is intercepting the connection`,
          `check the key on the host itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run: opsdeck host trust ${host.name} --fingerprint ${offered.fingerprint}`,
        );
      }
      await confirm(
        `${what}.\n  old (pinned): ${offered.replacing}\n  new (offered): ${offered.fingerprint}\nA changed key can mean someone is intercepting the connection. Replace the pinned key?`,
        {},
      );
      return;
    }
    const q = `host ${host.name} (${host.address}:${host.port}) offers the ${offered.type} key ${offered.fingerprint}. Trust it?`;
    if (g.yes) {
      process.stderr.write(`trusting new host key of ${host.name}: ${offered.fingerprint} (--yes accepts new keys)\n`);
      return;
    }
    if (!interactive())
      throw new UsageError(
        `host ${host.name} offers ${offered.fingerprint}, which is not trusted yet, and there is no terminal to ask`,
        'pass --fingerprint SHA256:... (check it with ssh-keygen -lf on the host), or --yes to accept it',
      );
    await confirm(q, {});
  };
}

export function register(program: Command, act: Act): void {
  const host = program
    .command('host')
    .description('hosts reached over SSH')
    .addHelpText('after', examples('opsdeck host add web1 --address 10.0.0.5 --user deploy --key ~/.ssh/id_ed25519', 'opsdeck host check web1', 'opsdeck host list'));
  host
    .command('add <name>')
    .description('add a host: its key is checked and pinned, and the login tried, before it is saved')
    .addHelpText(
      'after',
      examples(
        'opsdeck host add web1 --address 10.0.0.5 --user deploy --key ~/.ssh/id_ed25519 --fingerprint SHA256:...',
        'opsdeck host add db1 --address 10.0.1.5 --jump web1   # through a jump host',
        'opsdeck host add web2 --address 10.0.0.6 --user deploy --become www-data',
      ),
    )
    .requiredOption('--address <addr>', 'DNS name or IP address')
    .option('--port <n>', 'SSH port', '22')
    .option('--user <user>', 'login user', process.env.USER || 'root')
    .option('--key <file>', 'private key file (else ssh-agent)')
    .option('--jump <host>', 'reach it through this host (already in the inventory)')
    .option('--fingerprint <SHA256:...>', 'the host key fingerprint to expect (else asked, or --yes accepts it)')
    .option('--become <user>', "run commands on instance trees as this user, through sudo -n (the trees' owner, e.g. www-data)")
    .action(
      act(async (app, g, name: string, o: HostAddOpts) => {
        const h: Host = {
          name: checkName('host', name),
          address: checkAddress(o.address),
          port: checkPort(o.port),
          user: checkUser(o.user),
          // Checked now (a private key, readable, no passphrase) and kept absolute: cron runs elsewhere.
          keyFile: o.key ? checkKeyFile(resolve(o.key)) : null,
          jump: o.jump ? app.inv.requireHost(checkName('host', o.jump)).name : null,
          hostKey: null,
          become: o.become !== undefined ? checkUser(o.become) : null,
          createdAt: '',
        };
        if (app.inv.getHost(h.name)) throw new UsageError(`host ${h.name} already exists`, `see it with: opsdeck host show ${h.name}`);
        const hostKey = await establishTrust(app, h, o.fingerprint, trustPrompt(g, h));
        h.hostKey = hostKey;
        const login = await checkLogin(app, h);
        const params = { host: h.name, address: h.address, port: h.port, user: h.user, keyFile: h.keyFile, jump: h.jump, become: h.become, fingerprint: hostKey };
        return runChange(
          app,
          g,
          'host add',
          params,
          () => {
            const saved = app.inv.addHost(h);
            return {
              json: { ...hostView(saved), system: login.system, shell: login.shell },
              text: `host ${h.name} added: ${login.system}\n  key ${hostKey}${login.become ? `\n  trees as ${login.become.user} (uid ${login.become.uid}), through sudo -n` : ''}`,
            };
          },
          { title: `Add host ${h.name}, its key ${hostKey} pinned` },
        );
      }),
    );
  host
    .command('list')
    .description('list hosts')
    .addHelpText('after', examples('opsdeck host list', 'opsdeck host list --json'))
    .action(
      act(async (app) => {
        const hs = app.inv.listHosts();
        return {
          json: hs.map(hostView),
          text: hs.length
            ? table(
                hs.map((h) => [h.name, `${h.user}@${h.address}:${h.port}`, h.become ?? '', h.jump ?? '', h.hostKey ?? 'NOT PINNED']),
                ['NAME', 'LOGIN', 'BECOME', 'JUMP', 'HOST KEY'],
              )
            : 'no hosts yet: opsdeck host add NAME --address ADDR',
        };
      }),
    );
  host
    .command('show <name>')
    .description('show one host')
    .addHelpText('after', examples('opsdeck host show web1', 'opsdeck host show web1 --json'))
    .action(
      act(async (app, _g, name: string) => {
        const h = app.inv.requireHost(name);
        const insts = app.inv.listInstances().filter((i) => i.host === h.name);
        return {
          json: { ...hostView(h), instances: insts.map((i) => i.name) },
          text: `host ${h.name}\n  login     ${h.user}@${h.address}:${h.port}\n  become    ${h.become ? `${h.become} (sudo -n -u ${h.become})` : '-'}\n  key file  ${h.keyFile ?? '(ssh-agent)'}\n  jump      ${h.jump ?? '-'}\n  host key  ${h.hostKey ?? 'not pinned'}\n  instances ${insts.map((i) => i.name).join(', ') || '-'}`,
        };
      }),
    );
  host
    .command('check <name>')
    .description('connect, check the host key, log in, run uname, test the login shell and sudo -n for --become')
    .addHelpText('after', examples("opsdeck host check web1   # login, host key, the login shell's quoting, sudo -n", 'opsdeck host check web1 --json'))
    .action(
      act(async (app, _g, name: string) => {
        const h = app.inv.requireHost(name);
        const r = await checkLogin(app, h);
        return {
          json: { name: h.name, ok: true, hostKey: h.hostKey, ...r },
          text: `host ${h.name}: ok\n  ${r.system}\n  ${r.uptime}\n  key ${h.hostKey}\n  login shell ${r.shell}: reads opsdeck's quoting exactly${r.become ? `\n  become ${r.become.user} (uid ${r.become.uid}): sudo -n works` : ''}`,
        };
      }),
    );
  host
    .command('set <name>')
    .description('change how opsdeck acts on a host: --become USER runs commands on its instance trees as USER through sudo -n')
    .addHelpText('after', examples('opsdeck host set web2 --become www-data   # tried before it is saved', 'opsdeck host set web2 --no-become'))
    .option('--become <user>', "run commands on instance trees as this user (the trees' owner, e.g. www-data); sudo -n must allow it")
    .option('--no-become', 'run them as the login user again')
    .action(
      act(async (app, g, name: string, o: HostSetOpts) => {
        const h = app.inv.requireHost(checkName('host', name));
        if (o.become === undefined) throw new UsageError('nothing to change', `give --become USER or --no-become (see: opsdeck host show ${h.name})`);
        const become = o.become === false ? null : checkUser(o.become);
        // Tried before it is saved, as host add tries the key: a rule that wants a password is refused now.
        const login = become ? await checkLogin(app, { ...h, become }) : undefined;
        return runChange(app, g, 'host set', { host: h.name, become, previousBecome: h.become ?? null }, () => {
          app.inv.setHostBecome(h.name, become);
          return {
            json: { ...hostView(app.inv.requireHost(h.name)), ...(login?.become && { uid: login.become.uid }) },
            text:
              become && login?.become
                ? `host ${h.name}: commands on instance trees run as ${become} (uid ${login.become.uid}), through sudo -n`
                : `host ${h.name}: commands on instance trees run as the login user ${h.user}`,
          };
        });
      }),
    );
  host
    .command('trust <name>')
    .description('pin the key the host offers now (after a legitimate key change): replacing a pinned key needs --fingerprint, or a yes at the prompt that shows both keys')
    .addHelpText('after', examples('opsdeck host trust web1   # shows the old and the new key, and asks', 'opsdeck host trust web1 --fingerprint SHA256:...'))
    .option('--fingerprint <SHA256:...>', 'the fingerprint to expect (check it on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)')
    .action(
      act(async (app, g, name: string, o: HostTrustOpts) => {
        const h = app.inv.requireHost(name);
        const fp = await establishTrust(app, h, o.fingerprint, trustPrompt(g, h));
        return runChange(
          app,
          g,
          'host trust',
          { host: h.name, oldFingerprint: h.hostKey, newFingerprint: fp, checkedBy: o.fingerprint !== undefined ? '--fingerprint' : 'prompt or known_hosts' },
          () => {
            app.inv.pinHostKey(h.name, fp);
            return { json: { name: h.name, hostKey: fp, previous: h.hostKey }, text: `host ${h.name}: key ${fp} pinned${h.hostKey && h.hostKey !== fp ? ` (was ${h.hostKey})` : ''}` };
          },
          { title: h.hostKey && h.hostKey !== fp ? `Replace the pinned key of ${h.name}: ${h.hostKey} -> ${fp}` : `Pin the key of ${h.name}: ${fp}` },
        );
      }),
    );
  host
    .command('remove <name>')
    .description('remove a host from the inventory (nothing on the host changes)')
    .addHelpText('after', examples('opsdeck host remove web1', 'opsdeck --dry-run host remove web1'))
    .action(
      act(async (app, g, name: string) => {
        app.inv.requireHost(name);
        return runChange(app, g, 'host remove', { host: name }, () => {
          app.inv.removeHost(name);
          return { json: { removed: name }, text: `host ${name} removed from the inventory` };
        });
      }),
    );
}
