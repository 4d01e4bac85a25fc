import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asLabUser, cli, homeWithHosts, lab, must, repinHostKey, treeState } from '../helpers.js';

describe('reaching hosts', () => {
  it('goes through a jump host, checking both host keys', async () => {
    const home = await homeWithHosts(['lab1']);
    const l = lab();
    const target = l.hosts[1];
    const add = await cli(home, [
      'host',
      'add',
      'behind',
      '--address',
      target.address,
      '--port',
      '2222',
      '--user',
      l.user,
      '--key',
      l.keyFile,
      '--jump',
      'lab1',
      '--fingerprint',
      target.fingerprint,
      '--json',
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ name: 'behind', jump: 'lab1', hostKey: target.fingerprint });
    const path = join(target.root, 'jumped');
    asLabUser('sh', ['-c', 'rm -rf -- "$1" && mkdir -- "$1" && echo through > "$1/file"', 'sh', path]);
    await must(cli(home, ['instance', 'add', 'jumped', '--host', 'behind', '--path', path, '--env', 'dev']));
    const b = JSON.parse((await must(cli(home, ['backup', 'jumped', '--json']))).stdout);
    expect(b.manifest.code.files).toBe(1);
    // The jump host's own key is checked too: when it no longer matches, the hop is refused.
    repinHostKey(home, 'lab1', l.hosts[2].fingerprint);
    const bad = await cli(home, ['host', 'check', 'behind']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/HOST KEY OF lab1 .* HAS CHANGED/);
    const unknown = await cli(home, ['host', 'add', 'behind2', '--address', target.address, '--jump', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no host named nope');
  });

  describe('with ssh-agent instead of a key file', () => {
    let agent: { sock: string; pid: string };
    beforeAll(async () => {
      const out = (await execa('ssh-agent', ['-s'])).stdout;
      agent = { sock: /SSH_AUTH_SOCK=([^;]+)/.exec(out)![1], pid: /SSH_AGENT_PID=(\d+)/.exec(out)![1] };
      await execa('ssh-add', [lab().keyFile], { env: { SSH_AUTH_SOCK: agent.sock } });
    });
    afterAll(() => {
      process.kill(Number(agent.pid));
    });

    it('logs in with the agent', async () => {
      const home = await homeWithHosts([]);
      const l = lab();
      const h = l.hosts[0];
      const env = { SSH_AUTH_SOCK: agent.sock };
      const r = await cli(home, ['host', 'add', 'agented', '--address', h.address, '--port', '2222', '--user', l.user, '--fingerprint', h.fingerprint], env);
      expect(r.code, r.stderr).toBe(0);
      await must(cli(home, ['host', 'check', 'agented'], env));
      // Without the agent and without a key there is no way in, and the message says what to give.
      const none = await cli(home, ['host', 'check', 'agented']);
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/authentication failed[\s\S]*--key|ssh-agent/);
    });
  });
});

describe('free disk space on the target', () => {
  const l = lab();
  const mount = join(l.hosts[0].root, 'small-disk');
  let mounted = false;
  beforeAll(() => {
    mkdirSync(mount, { recursive: true });
    // Mounting needs root: as root a failed mount is a failure; without root the test says it skipped.
    if (process.getuid?.() !== 0) return;
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
    mounted = true;
    execFileSync('chown', [l.user, mount]);
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', [mount]);
  });

  it('refuses a restore that would not fit, before touching anything', async (ctx) => {
    ctx.skip(!mounted, 'skipped: needs root to mount a 1 MB tmpfs as the small disk (run the tests as root, as .ci/run does)');
    const home = await homeWithHosts(['lab1']);
    const big = join(l.hosts[0].root, 'big-src');
    asLabUser('sh', ['-c', 'rm -rf -- "$1" && mkdir -- "$1" && head -c 3000000 /dev/urandom > "$1/blob"', 'sh', big]);
    const small = join(mount, 'app');
    asLabUser('sh', ['-c', 'mkdir -p -- "$1" && echo keep > "$1/keep.txt"', 'sh', small]);
    await must(cli(home, ['instance', 'add', 'big-src', '--host', 'lab1', '--path', big, '--env', 'dev']));
    await must(cli(home, ['instance', 'add', 'small-dst', '--host', 'lab1', '--path', small, '--env', 'dev']));
    await must(cli(home, ['backup', 'big-src']));
    const before = treeState(small);
    const r = await cli(home, ['restore', 'big-src', '--to', 'small-dst', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not enough free disk on lab1 .*needs about 3\.\d MB/);
    expect(treeState(small)).toEqual(before);
    expect(JSON.parse((await cli(home, ['backups', 'small-dst', '--json'])).stdout)).toEqual([]);
  });
});
