/**
 * Trees owned by another user than the SSH login (host --become USER, through sudo -n), and a login
 * shell that is not POSIX (fish). The lab's opslab may act as opsweb and root without a password,
 * as opsnopw only with one; opsfish logs in with fish as its shell.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lchownSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { hostAddArgs, makeLabInstance, type LabInstance } from '../../fixtures/lab.js';
import { cli, dbState, lab, must, newHome, sql, treeState } from '../helpers.js';

const l = lab();
const users = l.become;
const run = (cmd: string, args: string[]) => execFileSync(cmd, args).toString();
const as = (user: string, script: string, ...args: string[]) => run('runuser', ['-u', user, '--', 'sh', '-c', script, 'sh', ...args]);
const uid = (user: string) => run('id', ['-u', user]).trim();
/** `host add` of a lab host under another name, logging in as `user`, with more options. */
const addHost = (home: string, name: string, labHost: string, more: string[] = [], user = l.user) =>
  must(
    cli(home, [
      ...hostAddArgs(
        l,
        l.hosts.find((h) => h.name === labHost)!,
      ).map((a, i) => (i === 2 ? name : a === l.user ? user : a)),
      ...more,
    ]),
  );

let home = '';
const lastRun = async (instance: string) => JSON.parse((await cli(home, ['runs', '--instance', instance, '--limit', '1', '--json'])).stdout)[0];
const srv1 = l.hosts[0].root;
// opsweb owns this directory: the swap renames its trees there.
const www = join(srv1, 'b-www');

describe.skipIf(!users)('host --become: trees of another user, reached through sudo -n', () => {
  let web: LabInstance;
  let webPath = '';

  beforeAll(async () => {
    home = newHome();
    await must(cli(home, ['env', 'add', 'dev']));
    await addHost(home, 'lab1', 'lab1');
    await addHost(home, 'webhost', 'lab1', ['--become', users!.web]);
    await addHost(home, 'roothost', 'lab1', ['--become', 'root']);
    rmSync(www, { recursive: true, force: true });
    // Closed to the login user, as /var/www often is: even instance add looks in as opsweb.
    mkdirSync(www, { mode: 0o750 });
    run('chown', [`${users!.web}:`, www]);
    // The web user's tree, closed to the login user (0750, a 0600 secret): only sudo reads it.
    web = makeLabInstance(l, 'lab1', 'b-web');
    webPath = join(www, 'web');
    run('mv', [web.path, webPath]);
    writeFileSync(join(webPath, 'config', 'secret.env'), 'KEY=only-the-web-user\n', { mode: 0o600 });
    run('chown', ['-R', `${users!.web}:`, webPath]);
    chmodSync(webPath, 0o750);
    await must(cli(home, ['instance', 'add', 'b-web', '--host', 'webhost', '--path', webPath, '--env', 'dev', '--db', web.dbUrl], { OPSDECK_DB_PASSWORD: web.password }));
  });

  it('host add, show and check: the become user is tried through sudo -n and shown', async () => {
    const shown = JSON.parse((await must(cli(home, ['host', 'show', 'webhost', '--json']))).stdout);
    expect(shown).toMatchObject({ name: 'webhost', user: l.user, become: users!.web, instances: ['b-web'] });
    expect(JSON.parse((await must(cli(home, ['host', 'show', 'lab1', '--json']))).stdout).become).toBeNull();
    const check = await must(cli(home, ['host', 'check', 'webhost']));
    expect(check.stdout).toContain(`become ${users!.web} (uid ${uid(users!.web)}): sudo -n works`);
    const exported = JSON.parse((await must(cli(home, ['inventory', 'export']))).stdout);
    expect(exported.hosts.find((h: { name: string }) => h.name === 'webhost').become).toBe(users!.web);
  });

  it('backs up a tree only the web user can read, and restores it with every owner, group and mode', async () => {
    const files = treeState(webPath);
    expect(files['config/secret.env']).toMatch(new RegExp(`^file 600 ${uid(users!.web)}:\\d+ `));
    const db = dbState(web.db);
    await must(cli(home, ['backup', 'b-web']));
    const inv = new Inventory(home);
    const [b] = inv.listBackups('b-web');
    inv.close();
    // The manifest says whose files the tree holds: a restore checks it can give them back.
    expect(b.manifest.code!.owners).toEqual([`${uid(users!.web)}:${run('id', ['-g', users!.web]).trim()}`]);

    as(users!.web, 'cd "$1" && echo changed > index.html && rm VERSION && echo new > new-file && chmod 0644 config/secret.env', webPath);
    sql(web.db, "INSERT INTO notes (body) VALUES ('after the backup')");
    expect(treeState(webPath)).not.toEqual(files);

    const r = await cli(home, ['restore', 'b-web', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(treeState(webPath)).toEqual(files);
    expect(dbState(web.db)).toEqual(db);
    expect(await lastRun('b-web')).toMatchObject({ command: 'restore', status: 'ok' });
    expect(existsSync(`${webPath}.opsdeck-incoming`)).toBe(false);
  });

  it('cmd: metrics run in the tree as the web user', async () => {
    await must(cli(home, ['instance', 'set', 'b-web', '--metric', 'secrets=cmd:grep -c KEY config/secret.env']));
    const r = await cli(home, ['health', 'b-web', '--json']);
    expect(JSON.parse(r.stdout).instances[0].metrics, r.stderr).toEqual({ secrets: 1 });
  });

  it('sudo asking for a password: a clear error naming host, users and the sudoers rule, and nothing changes', async () => {
    const files = treeState(webPath);
    const db = dbState(web.db);
    const backups = (await must(cli(home, ['backups', 'b-web', '--json']))).stdout;
    const message = `on host webhost, sudo wants a password for ${l.user} to run commands as ${users!.needsPassword}: opsdeck runs sudo -n and never types one`;
    const rule = `${l.user} ALL=(${users!.needsPassword}) NOPASSWD: ALL`;
    const inv = new Inventory(home);
    // The rule changed on the host since: the login user may act as opsnopw only with a password.
    inv.setHostBecome('webhost', users!.needsPassword);
    inv.close();
    try {
      const check = await cli(home, ['host', 'check', 'webhost']);
      expect(check.code).toBe(1);
      expect(check.stderr).toContain(message);
      expect(check.stderr).toContain(rule);
      const backup = await cli(home, ['backup', 'b-web']);
      expect(backup.code).toBe(1);
      expect(backup.stderr).toContain(message);
      const restore = await cli(home, ['restore', 'b-web', '--yes']);
      expect(restore.code).toBe(1);
      expect(restore.stderr).toContain(message);
      expect(restore.stderr).toContain(rule);
      expect(treeState(webPath)).toEqual(files);
      expect(dbState(web.db)).toEqual(db);
      expect(await lastRun('b-web')).toMatchObject({ command: 'restore', status: 'failed', failedStep: 'check' });
      expect((await must(cli(home, ['backups', 'b-web', '--json']))).stdout).toBe(backups);
    } finally {
      await must(cli(home, ['host', 'set', 'webhost', '--become', users!.web]));
    }
    // host set tries sudo before it saves: the same rule is refused there, and the host stays as it was.
    const set = await cli(home, ['host', 'set', 'webhost', '--become', users!.needsPassword]);
    expect(set.code).toBe(1);
    expect(set.stderr).toContain(message);
    expect(JSON.parse((await must(cli(home, ['host', 'show', 'webhost', '--json']))).stdout).become).toBe(users!.web);
  });

  it('refuses a restore whose parent directory the become user cannot write, before anything changes', async () => {
    // A tree of opsweb's in the login user's directory: the swap could not rename there.
    const path = join(srv1, 'b-notmine');
    rmSync(path, { recursive: true, force: true });
    mkdirSync(path);
    writeFileSync(join(path, 'index.html'), 'mine\n');
    run('chown', ['-R', `${users!.web}:`, path]);
    await must(cli(home, ['instance', 'add', 'b-notmine', '--host', 'webhost', '--path', path, '--env', 'dev']));
    await must(cli(home, ['backup', 'b-notmine']));
    const files = treeState(path);
    const r = await cli(home, ['restore', 'b-notmine', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${users!.web} cannot write ${srv1} on webhost, where the restore renames ${path} aside and puts the restored tree in its place`);
    expect(r.stderr).toContain(`chown ${users!.web} ${srv1}`);
    expect(treeState(path)).toEqual(files);
    expect(await lastRun('b-notmine')).toMatchObject({ command: 'restore', status: 'failed', failedStep: 'check' });
  });

  describe('a tree of several owners', () => {
    const path = join(www, 'mixed');
    const owners = () => ({ web: uid(users!.web), lab: uid(l.user) });

    beforeAll(async () => {
      rmSync(path, { recursive: true, force: true });
      mkdirSync(join(path, 'cache'), { recursive: true });
      writeFileSync(join(path, 'index.html'), 'web\n');
      writeFileSync(join(path, 'root-only.key'), 'root secret\n', { mode: 0o600 });
      writeFileSync(join(path, 'lab.txt'), 'lab\n');
      writeFileSync(join(path, 'orphan.dat'), 'no such user\n');
      writeFileSync(join(path, 'cache', 'x'), 'x\n');
      symlinkSync('index.html', join(path, 'current'));
      const { web: w, lab: lb } = owners();
      run('chown', [`${w}:${w}`, path, join(path, 'index.html')]);
      run('chown', [`${lb}:${lb}`, join(path, 'lab.txt')]);
      run('chown', ['4242:4343', join(path, 'orphan.dat')]);
      run('chown', [`0:${w}`, join(path, 'cache')]);
      run('chown', [`4242:${w}`, join(path, 'cache', 'x')]);
      lchownSync(join(path, 'current'), 0, Number(w));
      chmodSync(join(path, 'cache'), 0o2775);
      chmodSync(join(path, 'lab.txt'), 0o640);
      chmodSync(join(path, 'orphan.dat'), 0o604);
      await must(cli(home, ['instance', 'add', 'b-mixed', '--host', 'roothost', '--path', path, '--env', 'dev']));
    });

    it('--become root gives every file back its owner, group and mode exactly', async () => {
      const files = treeState(path);
      expect(files['root-only.key']).toMatch(/^file 600 0:0 /);
      expect(files['orphan.dat']).toMatch(/^file 604 4242:4343 /);
      expect(files['cache']).toBe(`dir 2775 0:${owners().web}`);
      await must(cli(home, ['backup', 'b-mixed']));

      // Owners, groups, modes and contents all changed, a file gone, one added.
      run('chown', ['-R', `${owners().lab}:${owners().lab}`, path]);
      chmodSync(join(path, 'root-only.key'), 0o644);
      chmodSync(join(path, 'cache'), 0o755);
      rmSync(join(path, 'orphan.dat'));
      writeFileSync(join(path, 'index.html'), 'changed\n');
      writeFileSync(join(path, 'added'), 'added\n');
      expect(treeState(path)).not.toEqual(files);

      const r = await cli(home, ['restore', 'b-mixed', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(treeState(path)).toEqual(files);
    });

    it('as a user who is not root, a restore that could not give the owners back is refused', async () => {
      await must(cli(home, ['host', 'set', 'roothost', '--become', users!.web]));
      try {
        const files = treeState(path);
        const r = await cli(home, ['restore', 'b-mixed', '--yes']);
        expect(r.code).toBe(1);
        const refused = new RegExp(
          `holds files owned by (.*) \\(uid:gid\\), and ${users!.web} \\(${owners().web}:\\d+\\), who unpacks them on roothost, can only create files it owns: the restore would not give them back their owners`,
        ).exec(r.stderr);
        expect(refused?.[1].split(', ').sort(), r.stderr).toEqual(['0:0', `0:${owners().web}`, `4242:${owners().web}`, '4242:4343', `${owners().lab}:${owners().lab}`].sort());
        expect(r.stderr).toContain('opsdeck host set roothost --become root');
        expect(treeState(path)).toEqual(files);
        expect(await lastRun('b-mixed')).toMatchObject({ command: 'restore', status: 'failed', failedStep: 'check' });
      } finally {
        await must(cli(home, ['host', 'set', 'roothost', '--become', 'root']));
      }
    });
  });

  it("without --become, files are the login user's as before", async () => {
    const path = join(srv1, 'b-plain');
    as(l.user, 'rm -rf -- "$1" && mkdir -p -- "$1/sub" && echo a > "$1/a" && echo b > "$1/sub/b" && chmod 0600 "$1/a" && ln -s a "$1/link"', path);
    await must(cli(home, ['instance', 'add', 'b-plain', '--host', 'lab1', '--path', path, '--env', 'dev']));
    const files = treeState(path);
    expect(files['a']).toMatch(new RegExp(`^file 600 ${uid(l.user)}:`));
    await must(cli(home, ['backup', 'b-plain']));
    as(l.user, 'echo changed > "$1/a" && rm "$1/sub/b"', path);
    const r = await cli(home, ['restore', 'b-plain', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/sudo|unpacking as root/);
    expect(treeState(path)).toEqual(files);
  });
});

describe.skipIf(!users)('login shells that are not POSIX: fish (read alike), tcsh (refused)', () => {
  const dir = join(l.hosts[1].root, 'b-fish');
  const path = join(dir, 'app');
  let fhome = '';

  beforeAll(async () => {
    fhome = newHome();
    await must(cli(fhome, ['env', 'add', 'dev']));
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, 'index.html'), 'fish\n');
    run('chown', ['-R', `${users!.fish}:`, dir]);
  });

  it("host add and host check test that fish reads opsdeck's quoting exactly", async () => {
    const add = await cli(fhome, [...hostAddArgs(l, l.hosts[1]).map((a, i) => (i === 2 ? 'fishhost' : a === l.user ? users!.fish : a))]);
    expect(add.code, add.stderr).toBe(0);
    const check = await must(cli(fhome, ['host', 'check', 'fishhost']));
    expect(check.stdout).toContain("login shell /usr/bin/fish: reads opsdeck's quoting exactly");
  });

  it('an argument ending in a backslash reaches the command as it was given', async () => {
    await must(cli(fhome, ['instance', 'add', 'b-fish', '--host', 'fishhost', '--path', path, '--env', 'dev']));
    // Under fish, 'C:\' once escaped its closing quote: the command line broke.
    await must(cli(fhome, ['instance', 'set', 'b-fish', '--hook', `maintenance-on=sh -c 'printf "%s|" "$@" > maint.txt' sh 'C:\\' "it's" '\\\\'`]));
    const r = await cli(fhome, ['maintenance', 'b-fish', 'on']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(path, 'maint.txt'), 'utf8')).toBe("C:\\|it's|\\\\|");
  });

  it('a login shell that reads the quoting otherwise (tcsh) is refused by host add, with the fix; nothing is saved', async () => {
    const r = await cli(fhome, [...hostAddArgs(l, l.hosts[1]).map((a, i) => (i === 2 ? 'cshhost' : a === l.user ? users!.csh : a))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the login shell of ${users!.csh} on host cshhost (/usr/bin/tcsh) does not read opsdeck's commands as a POSIX shell does`);
    expect(r.stderr).toContain(`fix: give ${users!.csh} a POSIX login shell (sh, bash, dash, zsh; fish works too), e.g. on the host: chsh -s /bin/bash ${users!.csh}`);
    expect(JSON.parse((await must(cli(fhome, ['host', 'list', '--json']))).stdout).map((h: { name: string }) => h.name)).toEqual(['fishhost']);
  });

  it('backs up and restores through fish', async () => {
    const files = treeState(path);
    await must(cli(fhome, ['backup', 'b-fish']));
    writeFileSync(join(path, 'index.html'), 'changed\n');
    const r = await cli(fhome, ['restore', 'b-fish', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(treeState(path)).toEqual(files);
  });
});
