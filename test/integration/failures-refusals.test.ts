import { execa } from 'execa';
import { mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { addInstance, asLabUser, cli, homeWithHosts, lab, local, must, repinHostKey, treeState } from '../helpers.js';

// Refusals: a locked instance, a host whose key is not the pinned one, hostile names and paths.
// (Split from failures.test.ts so that workers run them side by side.)

describe('locks', () => {
  let home: string;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'lock-dev', 'dev');
  });

  it('a second run on a locked instance exits 3 naming the holder', async () => {
    const inv = new Inventory(home);
    inv.acquireLock('lock-dev', 'restore (held by the test)', null);
    try {
      const r = await cli(home, ['backup', 'lock-dev']);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('restore (held by the test)');
      expect(r.stderr).toContain(`pid ${process.pid}`);
      expect(JSON.parse((await cli(home, ['backups', 'lock-dev', '--json'])).stdout)).toEqual([]);
    } finally {
      inv.releaseLock('lock-dev');
      inv.close();
    }
  });

  it('a lock whose process is gone is taken over', async () => {
    const dead = await execa('sh', ['-c', 'echo $$']);
    const inv = new Inventory(home);
    inv.db
      .prepare("INSERT INTO locks (instance, pid, host, user, command, started_at) VALUES ('lock-dev', ?, ?, 'x', 'backup', '2026-01-01')")
      .run(Number(dead.stdout), (await import('node:os')).hostname());
    inv.close();
    const r = await cli(home, ['backup', 'lock-dev']);
    expect(r.code, r.stderr).toBe(0);
    expect(new Inventory(home).listLocks()).toEqual([]);
  });
});

describe('host keys', () => {
  it('refuses a host whose key is not the expected one', async () => {
    const home = await homeWithHosts([]);
    const l = lab();
    const r = await cli(home, ['host', 'add', 'impostor', '--address', l.hosts[1].address, '--port', '2222', '--user', l.user, '--key', l.keyFile, '--fingerprint', l.hosts[0].fingerprint]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`offered key ${l.hosts[1].fingerprint}`);
    expect(JSON.parse((await cli(home, ['host', 'list', '--json'])).stdout)).toEqual([]);
  });

  it('stops every operation on a host whose key changed, until it is trusted again', async () => {
    const home = await homeWithHosts(['lab2']);
    await addInstance(home, 'lab2', 'keyed-dev', 'dev');
    const l = lab();
    // The host now presents a key other than the pinned one.
    repinHostKey(home, 'lab2', l.hosts[0].fingerprint);
    const check = await cli(home, ['host', 'check', 'lab2']);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/HOST KEY OF lab2 .* HAS CHANGED/);
    expect(check.stderr).toContain(`opsdeck host trust lab2 --fingerprint ${l.hosts[1].fingerprint}`);
    const b = await cli(home, ['backup', 'keyed-dev']);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/HAS CHANGED/);
    expect(JSON.parse((await cli(home, ['backups', '--json'])).stdout)).toEqual([]);

    const t = await cli(home, ['host', 'trust', 'lab2']);
    expect(t.code).toBe(2); // no terminal, no --fingerprint, no --yes: it will not guess
    await must(cli(home, ['host', 'trust', 'lab2', '--fingerprint', l.hosts[1].fingerprint]));
    await must(cli(home, ['backup', 'keyed-dev']));
  });
});

describe('hostile names and paths', () => {
  let home: string;
  const canary = () => mkdtempSync('/tmp/opsdeck-canary-');
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
  });

  it('refuses bad names, addresses and URLs with exit 2 and changes nothing', async () => {
    const dir = canary();
    const bad: string[][] = [
      ['instance', 'add', `x;touch ${dir}/pwned`, '--host', 'lab1', '--path', '/tmp/x/y', '--env', 'dev'],
      ['instance', 'add', '--', '-rf', '--host', 'lab1', '--path', '/tmp/x/y', '--env', 'dev'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', `/tmp/$(touch ${dir}/pwned)`, '--env', 'dev'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', '/tmp/../etc', '--env', 'dev'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', 'relative/path', '--env', 'dev'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', '/tmp/x/y', '--env', 'dev', '--db', 'postgres://u:hunter2@127.0.0.1/db'],
      ['instance', 'add', 'ok', '--host', 'lab1', '--path', '/tmp/x/y', '--env', 'dev', '--db', "postgres://u@127.0.0.1/d'b"],
      ['host', 'add', 'evil', '--address', `-oProxyCommand=touch ${dir}/pwned`],
      ['host', 'add', 'evil', '--address', '127.0.0.1', '--user', '$(id)'],
      ['env', 'add', 'a b'],
      ['backup', 'nope'],
    ];
    for (const args of bad) {
      const r = await cli(home, args);
      expect(r.code, args.join(' ') + '\n' + r.stderr).toBe(2);
      expect(r.stderr).toMatch(/opsdeck: |error: /);
    }
    expect(readdirSync(dir)).toEqual([]);
    expect(JSON.parse((await cli(home, ['instance', 'list', '--json'])).stdout)).toEqual([]);
    // The password never reached the audit trail either.
    expect(JSON.stringify(JSON.parse((await cli(home, ['runs', '--json'])).stdout))).not.toContain('hunter2');
  });

  it('backs up and restores a directory named with quotes, spaces, $(...) and ;', async () => {
    const l = lab();
    const path = join(l.hosts[0].root, `we'ird "dir" $(touch PWNED); echo \`touch PWNED2\``);
    asLabUser('sh', ['-c', 'rm -rf -- "$1" && mkdir -- "$1" && echo hello > "$1/-n file;$(x)"', 'sh', path]);
    await must(cli(home, ['instance', 'add', 'weird', '--host', 'lab1', '--path', path, '--env', 'dev']));
    const before = treeState(path);
    await must(cli(home, ['backup', 'weird']));
    asLabUser('sh', ['-c', 'echo changed > "$1/-n file;$(x)"', 'sh', path]);
    await must(cli(home, ['restore', 'weird', '--yes']));
    expect(treeState(path)).toEqual(before);
    // Commands run in the lab user's home or the srv directory: nothing named PWNED appeared anywhere.
    expect(local('find', [l.dir, '-name', 'PWNED*'])).toBe('');
  });
});
