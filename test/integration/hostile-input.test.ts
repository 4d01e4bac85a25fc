import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLabInstance } from '../../fixtures/lab.js';
import { BIN, addInstance, asLabUser, cli, homeWithHosts, lab, must, newHome, repinHostKey, treeState, type CliResult } from '../helpers.js';

/** The inventory as a user would compare it: the export, without its time stamp. */
async function invState(home: string): Promise<unknown> {
  const doc = JSON.parse((await must(cli(home, ['inventory', 'export']))).stdout);
  delete doc.exportedAt;
  return doc;
}

/** A refusal: exit 2, the message, and a fix line. */
function refused(r: CliResult, message: RegExp, fix: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toMatch(/\n {2}fix: /);
  expect(r.stderr.slice(r.stderr.indexOf('fix: '))).toMatch(fix);
}

describe('careless or hostile input', () => {
  let home: string;
  let src: ReturnType<typeof makeLabInstance>;
  let doc: any;

  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    src = await addInstance(home, 'lab1', 'hi-src', 'dev');
    doc = JSON.parse((await must(cli(home, ['inventory', 'export']))).stdout);
  });

  describe('inventory import runs every field through the checks the CLI makes, all or nothing', () => {
    let other: string;
    let before: unknown;
    let victim: string;
    beforeAll(async () => {
      other = newHome();
      await must(cli(other, ['env', 'add', 'keep']));
      before = await invState(other);
      victim = join(dirname(dirname(src.path)), 'hi-victim', 'file');
      mkdirSync(dirname(victim), { recursive: true });
      writeFileSync(victim, "not the instance's\n");
    });

    const inst = (patch: Record<string, unknown>) => (d: any) => ({ ...d, instances: [{ ...d.instances[0], ...patch }] });
    const host = (patch: Record<string, unknown>) => (d: any) => ({ ...d, hosts: [{ ...d.hosts[0], ...patch }] });
    const env = (patch: Record<string, unknown>) => (d: any) => ({ ...d, envs: d.envs.map((e: any) => (e.name === 'dev' ? { ...e, ...patch } : e)) });
    const cases: [string, (d: any) => any, string, RegExp, RegExp][] = [
      [
        'a local path out of the instance',
        inst({ localPaths: ['config/local.env', '../../hi-victim/file'] }),
        'instances[0] (instance "hi-src"), field "localPaths"',
        /invalid local path "..\/..\/hi-victim\/file"/,
        /relative to the instance directory/,
      ],
      ['an address ssh reads as an option', host({ address: '-oProxyCommand=x' }), 'hosts[0] (host "lab1"), field "address"', /invalid address "-oProxyCommand=x"/, /host name or an IP address/],
      ['a branch git reads as an option', inst({ branch: '--upload-pack=x' }), 'field "branch"', /invalid git ref "--upload-pack=x"/, /branch or tag name/],
      ['a hook given as a string', inst({ hooks: { migrate: 'bin/migrate' } }), 'field "hooks"', /invalid migrate hook "bin\/migrate"/, /a hook is a command and its arguments/],
      ['a hook of an unknown kind', inst({ hooks: { 'post-install': ['x'] } }), 'field "hooks"', /invalid hook kind "post-install"/, /the kinds are install, migrate/],
      ['an sql: metric that acts', inst({ metrics: [{ name: 'n', kind: 'sql', source: 'SELECT 1; DELETE FROM users' }] }), 'field "metrics"', /metric n is refused/, /use a cmd: metric/],
      ['a metric of no kind', inst({ metrics: [{ name: 'n', kind: 'shell', source: 'ls' }] }), 'field "metrics"', /invalid metric/, /NAME=sql:QUERY or NAME=cmd:COMMAND/],
      ['negative retention', env({ retention: { daily: -1, weekly: 4, monthly: 6, yearly: 1 } }), 'envs[0] (environment "dev"), field "retention"', /invalid --keep-daily -1/, /whole number/],
      ['an age that is none', env({ maxBackupAge: 'soon' }), 'field "maxBackupAge"', /invalid age "soon"/, /30m, 12h, 7d/],
      ['a port out of range', host({ port: 70000 }), 'field "port"', /invalid port 70000/, /1 to 65535/],
      ['a login name with a shell in it', host({ user: 'root;id' }), 'field "user"', /invalid user "root;id"/, /login name/],
      ['a key file that is no key', host({ keyFile: '/etc/passwd' }), 'field "keyFile"', /\/etc\/passwd is not an SSH private key/, /give the private key/],
      ['a host key that is no fingerprint', host({ hostKey: 'trust-me' }), 'field "hostKey"', /invalid fingerprint "trust-me"/, /SHA256:/],
      ['a database URL with a password', inst({ dbUrl: 'postgres://u:hunter2@127.0.0.1/db' }), 'field "dbUrl"', /holds a password/, /OPSDECK_DB_PASSWORD/],
      ['a site URL that is no http', inst({ url: 'javascript:alert(1)' }), 'field "url"', /invalid URL/, /https:\/\/host\/path/],
      ['a health check of no status', inst({ health: { url: 'http://x.test/', status: 99 } }), 'field "health"', /invalid health status 99/, /HTTP status such as 200/],
      ['a watch pattern find reads as an option', inst({ watchExcludes: ['-delete'] }), 'field "watchExcludes"', /invalid --watch-exclude "-delete"/, /file name or glob/],
      ['a path at the root', inst({ path: '/srv' }), 'field "path"', /too close to the filesystem root/, /its own directory/],
      [
        'a tree inside another imported instance',
        (d: any) => ({ ...d, instances: [d.instances[0], { ...d.instances[0], name: 'hi-inner', dbUrl: null, metrics: [], path: `${src.path}/inner` }] }),
        'instances[1] (instance "hi-inner"), field "path"',
        /is inside the tree of instance hi-src/,
        /a directory of its own/,
      ],
    ];
    it.each(cases)('refuses %s, naming the entry and the field, and imports nothing', async (_what, mutate, where, message, fix) => {
      const file = join(other, 'import.json');
      writeFileSync(file, JSON.stringify(mutate(doc)));
      const r = await cli(other, ['inventory', 'import', file]);
      refused(r, message, fix);
      expect(r.stderr).toContain('opsdeck: inventory import: ');
      expect(r.stderr).toContain(where);
      expect(r.stderr).toContain('nothing was imported');
      expect(await invState(other)).toEqual(before);
      expect(readFileSync(victim, 'utf8')).toBe("not the instance's\n");
    });

    it('the same document, untouched, imports whole', async () => {
      const file = join(other, 'import.json');
      writeFileSync(file, JSON.stringify(doc));
      await must(cli(other, ['inventory', 'import', file]));
      const show = JSON.parse((await must(cli(other, ['instance', 'show', 'hi-src', '--json']))).stdout);
      expect(show).toMatchObject({ host: 'lab1', path: src.path, dbUrl: src.dbUrl });
    });
  });

  describe('nested instances', () => {
    it('refuses a tree inside another instance, or one holding another, on the same machine (even under another host name)', async () => {
      const l = lab();
      const h = l.hosts[0];
      await must(cli(home, ['host', 'add', 'lab1-again', '--address', h.address, '--port', String(h.port), '--user', l.user, '--key', l.keyFile, '--fingerprint', h.fingerprint]));
      const before = await invState(home);
      asLabUser('mkdir', ['-p', `${src.path}/vendor/inner`]);
      refused(
        await cli(home, ['instance', 'add', 'hi-inner', '--host', 'lab1', '--path', `${src.path}/vendor/inner`, '--env', 'dev']),
        /is inside the tree of instance hi-src/,
        /a directory of its own/,
      );
      refused(
        await cli(home, ['instance', 'add', 'hi-outer', '--host', 'lab1', '--path', dirname(src.path), '--env', 'dev']),
        new RegExp(`holds the tree of instance hi-src \\(lab1:${src.path}\\)`),
        /neither inside another instance's tree nor holding one/,
      );
      refused(
        await cli(home, ['instance', 'add', 'hi-inner', '--host', 'lab1-again', '--path', `${src.path}/vendor/inner`, '--env', 'dev']),
        /inside the tree of instance hi-src/,
        /a directory of its own/,
      );
      const made = `${src.path}/vendor/made`;
      refused(
        await cli(home, ['instance', 'make', 'hi-made', '--host', 'lab1', '--path', made, '--env', 'dev', '--repo', l.appRepo, '--ref', l.versions[0]]),
        /inside the tree of instance hi-src/,
        /a directory of its own/,
      );
      expect(existsSync(made)).toBe(false);
      expect(await invState(home)).toEqual(before);
      asLabUser('rm', ['-rf', `${src.path}/vendor`]);
      await must(cli(home, ['host', 'remove', 'lab1-again']));
    });
  });

  describe('instance add tries the database login; database URLs', () => {
    let two: ReturnType<typeof makeLabInstance>;
    let before: unknown;
    beforeAll(async () => {
      two = makeLabInstance(lab(), 'lab1', 'hi-two');
      before = await invState(home);
    });
    const add = (db: string, env: Record<string, string>, extra: string[] = []) =>
      cli(home, ['instance', 'add', 'hi-two', '--host', 'lab1', '--path', two.path, '--env', 'dev', '--db', db, ...extra], env);

    it('a wrong password is refused, naming the instance, the URL and the fix; nothing is added', async () => {
      const r = await add(two.dbUrl, { OPSDECK_DB_PASSWORD: 'not-the-password' });
      refused(
        r,
        new RegExp(`instance hi-two: cannot log in to its database ${two.dbUrl.replace(/[/.]/g, '\\$&')} from host lab1: .*password authentication failed`),
        /OPSDECK_DB_PASSWORD, with --db-password-file FILE, or at the prompt/,
      );
      expect(r.stderr).not.toContain('not-the-password');
      expect(await invState(home)).toEqual(before);
    });

    it('connection parameters are refused, not dropped', async () => {
      refused(await add(`${two.dbUrl}?options=-c%20search_path%3Devil`, { OPSDECK_DB_PASSWORD: two.password }), /holds connection parameters \(\?options=/, /ALTER ROLE ROLE SET search_path/);
      expect(await invState(home)).toEqual(before);
    });

    it('an IPv6 address is taken and reaches psql as such', async () => {
      const v6 = two.dbUrl.replace('127.0.0.1', '[::1]');
      // The lab's server listens on 127.0.0.1 only: psql on the host tries ::1 and says so.
      const r = await add(v6, { OPSDECK_DB_PASSWORD: two.password });
      refused(
        r,
        /instance hi-two: cannot log in to its database postgres:\/\/r_hi_two@\[::1\]:\d+\/d_hi_two from host lab1: .*(::1|Connection refused|connect)/,
        /reachable from host lab1 at ::1:\d+/,
      );
      expect(await invState(home)).toEqual(before);
      await must(add(v6, { OPSDECK_DB_PASSWORD: two.password }, ['--no-db-check']));
      expect(JSON.parse((await must(cli(home, ['instance', 'show', 'hi-two', '--json']))).stdout).dbUrl).toBe(v6);
      await must(cli(home, ['instance', 'remove', 'hi-two', '--yes']));
    });

    it('the right password is taken', async () => {
      await must(add(two.dbUrl, { OPSDECK_DB_PASSWORD: two.password }));
      await must(cli(home, ['instance', 'remove', 'hi-two', '--yes']));
    });
  });

  it('a key file that is no private key is a usage error with the fix', async () => {
    const l = lab();
    const h = l.hosts[1];
    const before = await invState(home);
    const args = (key: string) => ['host', 'add', 'hi-key', '--address', h.address, '--port', String(h.port), '--user', l.user, '--key', key, '--fingerprint', h.fingerprint];
    refused(await cli(home, args('/etc/passwd')), /\/etc\/passwd is not an SSH private key/, /give the private key \(not the \.pub\)/);
    refused(await cli(home, args(`${l.keyFile}.pub`)), /is a public key, not a private one/, new RegExp(`give the private key \\(${l.keyFile.replace(/[/.]/g, '\\$&')}\\)`));
    refused(await cli(home, args('/nonexistent/key')), /cannot read the key file \/nonexistent\/key: ENOENT/, /a private key you can read/);
    expect(await invState(home)).toEqual(before);
  });

  describe('a failed verification is recorded, and restores pass that backup over', () => {
    let good: string;
    let bad: string;
    let goodTree: Record<string, string>;
    beforeAll(async () => {
      good = JSON.parse((await must(cli(home, ['backup', 'hi-src', '--json']))).stdout).id;
      goodTree = treeState(src.path);
      asLabUser('sh', ['-c', 'echo later > "$1/later.txt"', 'sh', src.path]);
      const b = JSON.parse((await must(cli(home, ['backup', 'hi-src', '--json']))).stdout);
      bad = b.id;
      // The store loses the newer backup's database stream (a damaged or pruned repository).
      await execa('restic', ['forget', b.manifest.db.snapshot], { env: { RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass') } });
    });

    it('verify fails, and backups shows it', async () => {
      const v = await cli(home, ['backups', 'verify', bad]);
      expect(v.code).toBe(1);
      expect(v.stderr).toMatch(new RegExp(`backup ${bad} does NOT match its manifest: db: cannot be read back from the store`));
      const list = JSON.parse((await must(cli(home, ['backups', 'hi-src', '--json']))).stdout);
      expect(list.find((b: any) => b.id === bad)).toMatchObject({ verifyFailed: true, verified: false });
      expect(list.find((b: any) => b.id === good)).toMatchObject({ verifyFailed: false });
      expect((await must(cli(home, ['backups', 'hi-src']))).stdout).toMatch(new RegExp(`${bad}.*FAILED`));
    });

    it('restore --backup of it is refused with the way out; nothing changes', async () => {
      const tree = treeState(src.path);
      refused(await cli(home, ['restore', 'hi-src', '--backup', bad, '--yes']), new RegExp(`backup ${bad} of hi-src failed its last verification`), /--allow-failed-backup/);
      expect(treeState(src.path)).toEqual(tree);
    });

    it('the default restore takes the newest backup that did not fail, and says so', async () => {
      const r = await must(cli(home, ['restore', 'hi-src', '--yes']));
      expect(r.stdout).toContain(`restored backup ${good} onto hi-src`);
      expect(r.stderr).toContain(`backup ${good}`);
      expect(r.stderr).toMatch(new RegExp(`the newer ${bad} \\(.*\\) failed verification`));
      expect(treeState(src.path)).toEqual(goodTree);
    });
  });

  describe('host trust', () => {
    const l = lab();
    const real = l.hosts[0].fingerprint;
    const other = l.hosts[1].fingerprint;

    it('--yes does not replace a pinned key; --fingerprint of what the host presents does', async () => {
      // As if lab1 had been pinned with another key: what it presents now is a change.
      repinHostKey(home, 'lab1', other);
      const r = await cli(home, ['host', 'trust', 'lab1', '--yes']);
      refused(
        r,
        new RegExp(`now offers the ssh-ed25519 key ${real.replace(/[+/]/g, '\\$&')}, but the key pinned for it is ${other.replace(/[+/]/g, '\\$&')}: refused; --yes accepts only a host's first key`),
        new RegExp(`opsdeck host trust lab1 --fingerprint ${real.replace(/[+/]/g, '\\$&')}`),
      );
      const pinned = async () => JSON.parse((await must(cli(home, ['host', 'show', 'lab1', '--json']))).stdout).hostKey;
      expect(await pinned()).toBe(other);
      const wrong = await cli(home, ['host', 'trust', 'lab1', '--fingerprint', other]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/not the expected .*: refused/);
      expect(await pinned()).toBe(other);
      const ok = await must(cli(home, ['host', 'trust', 'lab1', '--fingerprint', real]));
      expect(ok.stdout).toContain(`(was ${other})`);
      expect(await pinned()).toBe(real);
    });

    it('at a terminal, the prompt shows the old and the new key; no keeps the old one, yes replaces it', async () => {
      const pinned = async () => JSON.parse((await must(cli(home, ['host', 'show', 'lab1', '--json']))).stdout).hostKey;
      const session = `opsdeck-hostile-${process.pid}`;
      const tmux = (...a: string[]) => execFileSync('tmux', a).toString();
      const until = async (re: RegExp) => {
        for (let i = 0; ; i++) {
          const s = tmux('capture-pane', '-p', '-J', '-t', session);
          if (re.test(s)) return s;
          if (i > 400) throw new Error(`the terminal never showed ${re}:\n${s}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      for (const [answer, exit, after] of [
        ['n', 2, other],
        ['y', 0, real],
      ] as const) {
        repinHostKey(home, 'lab1', other);
        tmux('new-session', '-d', '-s', session, '-x', '250', '-y', '20', `OPSDECK_KNOWN_HOSTS= ${BIN} --home ${home} host trust lab1 --yes; echo "exited with $?"; sleep 30`);
        try {
          const s = await until(/Replace the pinned key\? \[y\/N\]/);
          expect(s).toContain(`old (pinned): ${other}`);
          expect(s).toContain(`new (offered): ${real}`);
          tmux('send-keys', '-t', session, answer, 'Enter');
          await until(new RegExp(`exited with ${exit}`));
        } finally {
          tmux('kill-session', '-t', session);
        }
        expect(await pinned()).toBe(after);
      }
    });
  });

  describe('alert secrets', () => {
    const auths: { user: string; pass: string }[] = [];
    let mails = 0;
    let smtp: SMTPServer;
    let port = 0;
    beforeAll(async () => {
      // What a STARTTLS-stripping machine in the middle looks like: no STARTTLS, and it takes AUTH in the clear.
      smtp = new SMTPServer({
        disabledCommands: ['STARTTLS'],
        allowInsecureAuth: true,
        onAuth: (auth, _s, cb) => {
          auths.push({ user: String(auth.username), pass: String(auth.password) });
          cb(null, { user: auth.username });
        },
        onData(stream, _s, cb) {
          stream.resume();
          stream.on('end', () => {
            mails++;
            cb();
          });
        },
      });
      await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
      port = (smtp.server.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((r) => smtp.close(() => r())));

    it('a password or secret in argv is refused with the fix; nothing is stored', async () => {
      const list = async () => (await must(cli(home, ['notify', 'list', '--json']))).stdout;
      const before = await list();
      const e = await cli(home, ['notify', 'email', '--smtp', `smtp://alerts:smtp-pw@127.0.0.1:${port}`, '--to', 'oncall@example.test']);
      refused(
        e,
        /the SMTP URL holds a password, which would be visible in the process list/,
        new RegExp(`smtp://alerts@127.0.0.1:${port}\\) and give it in OPSDECK_SMTP_PASSWORD, with --smtp-password-file FILE, or at the prompt`),
      );
      const w = await cli(home, ['notify', 'webhook', '--url', 'http://127.0.0.1:9/hook', '--secret', 'hook-secret']);
      refused(w, /the webhook secret was given in the command line/, /OPSDECK_WEBHOOK_SECRET, with --secret-file FILE, or at the prompt/);
      expect(await list()).toBe(before);
      const file = join(newHome(), 'secret');
      writeFileSync(file, 'hook-secret\n', { mode: 0o600 });
      await must(cli(home, ['notify', 'webhook', '--url', 'http://127.0.0.1:9/hook', '--secret-file', file]));
      expect(await list()).toContain('[stored encrypted]');
      expect(await list()).not.toContain('hook-secret');
      await must(cli(home, ['notify', 'remove', 'webhook']));
    });

    it('over smtp:// the password goes only after STARTTLS: a server without it never sees the password', async () => {
      await must(cli(home, ['notify', 'email', '--smtp', `smtp://alerts@127.0.0.1:${port}`, '--to', 'oncall@example.test', '--from', 'opsdeck@example.test'], { OPSDECK_SMTP_PASSWORD: 'smtp-pw' }));
      expect((await must(cli(home, ['notify', 'list']))).stdout).not.toContain('smtp-pw');
      const t = await cli(home, ['notify', 'test']);
      expect(t.code).toBe(1);
      expect(t.stdout).toMatch(/email: FAILED: .*STARTTLS/i);
      expect(auths).toEqual([]);
      expect(mails).toBe(0);
    });
  });
});
