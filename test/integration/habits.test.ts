import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { quoteArg } from '../../src/remote/quote.js';
import type { LabInstance } from '../../fixtures/lab.js';
import { addInstance, BIN, cli, homeWithHosts, must, newHome } from '../helpers.js';

// What a sysadmin used to gh, kubectl and restic expects of a command-line tool: shell completion,
// cron lines that work where they are pasted, help with examples and topics.

const has = (prog: string) => spawnSync('sh', ['-c', `command -v ${prog}`]).status === 0;

describe('habits of the command line', () => {
  let home: string;
  let shop: LabInstance;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    shop = await addInstance(home, 'lab1', 'habits-shop', 'dev');
  });

  /** Completes the words in a real bash with the script opsdeck prints, as bash's tab would. */
  const bashComplete = (words: string[]) => {
    const script = [
      `source <(${quoteArg(BIN)} completion bash)`,
      `COMP_WORDS=(${words.map((w) => quoteArg(w) || "''").join(' ')})`,
      `COMP_CWORD=${words.length - 1}`,
      '_opsdeck',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    return execFileSync('bash', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
      .split('\n')
      .filter(Boolean);
  };

  it('the bash completion script completes subcommands, flags, and instance and environment names from the inventory', () => {
    expect(bashComplete(['opsdeck', 'backups', 'ver'])).toEqual(['verify']);
    expect(bashComplete(['opsdeck', 'back'])).toEqual(['backup', 'backups']);
    expect(bashComplete(['opsdeck', '--home', home, 'restore', 'habits-'])).toEqual(['habits-shop']);
    expect(bashComplete(['opsdeck', '--home', home, 'restore', 'habits-shop', '--al'])).toEqual(['--allow-failed-backup', '--allow-protected']);
    expect(bashComplete(['opsdeck', '--home', home, 'backup', '--env', ''])).toEqual(['dev', 'prod']);
    expect(bashComplete(['opsdeck', 'completion', ''])).toEqual(['bash', 'zsh', 'fish']);
  });

  it('the names come from a hidden command that reads the inventory and prints one a line', async () => {
    const r = await must(cli(home, ['__complete', 'instances']));
    expect(r.stdout.split('\n')).toEqual(['habits-shop']);
    expect((await must(cli(home, ['__complete', 'hosts']))).stdout).toBe('lab1');
    expect((await must(cli(home, ['--help']))).stdout).not.toContain('__complete');
  });

  it.skipIf(!has('zsh'))('the zsh script parses (zsh -n)', async () => {
    const script = (await must(cli(home, ['completion', 'zsh']))).stdout;
    expect(spawnSync('zsh', ['-n'], { input: script }).status).toBe(0);
  });

  it.skipIf(!has('fish'))('the fish script parses, and fish completes an instance name with it', async () => {
    const script = (await must(cli(home, ['completion', 'fish']))).stdout;
    const file = join(mkdtempSync(join(tmpdir(), 'habits-fish-')), 'opsdeck.fish');
    writeFileSync(file, script);
    expect(spawnSync('fish', ['-n', file]).status).toBe(0);
    const out = execFileSync('fish', ['-c', `${quoteArg(BIN)} completion fish | source; complete -C ${quoteArg(`opsdeck --home ${home} drill habits-`)}`], { encoding: 'utf8' });
    expect(out.trim()).toBe('habits-shop');
  });

  it('--version prints the version alone, also after global options', async () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      // Alone (bin/opsdeck answers it before loading anything), and after a global option.
      const bare = spawnSync(BIN, [flag], { encoding: 'utf8' });
      expect({ code: bare.status, stdout: bare.stdout, stderr: bare.stderr }, flag).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
      // (cli's output has its last newline taken off, as $(...) would.)
      expect(await cli(home, [flag]), `--home ${flag}`).toMatchObject({ code: 0, stdout: version, stderr: '' });
    }
  });

  it('every command and subcommand ends its --help with an Examples: block', () => {
    const missing: string[] = [];
    const help = buildProgram().createHelp();
    const walk = (cmd: Command, path: string[]) => {
      for (const c of help.visibleCommands(cmd)) {
        const p = [...path, c.name()];
        if (c.name() === 'help' && path.length) continue; // commander's own "help [command]" of a group
        let out = '';
        c.configureOutput({ writeOut: (s) => (out += s) });
        c.outputHelp();
        if (!/\nExamples:\n {2}\S/.test(out)) missing.push(p.join(' '));
        walk(c, p);
      }
    };
    walk(buildProgram(), ['opsdeck']);
    expect(missing).toEqual([]);
  });

  it('help exit-codes prints the exit codes the README gives, and help drills the concept', async () => {
    const out = (await must(cli(home, ['help', 'exit-codes']))).stdout;
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    // The README's sentence: "0 done, 1 failed (rolled back where it could be), 2 bad usage or input, 3 the instance is locked by another run"
    for (const [code, words] of [...readme.matchAll(/(\d) (done|failed \(rolled back where it could be\)|bad usage or input|the instance is locked by another run)/g)].map((m) => [m[1], m[2]])) {
      expect(out).toMatch(new RegExp(`^ {2}${code} {2}${words.replace(/[()]/g, '\\$&')}`, 'm'));
    }
    expect(out).toContain('opsdeck unlock');
    expect((await must(cli(home, ['help', 'drills']))).stdout).toMatch(/RTO.*RPO/s);
    expect((await must(cli(home, ['help', 'protected']))).stdout).toContain('--yes --allow-protected');
    expect((await must(cli(home, ['help', 'retention']))).stdout).toContain('safety backups are kept 7 days');
    const bad = await cli(home, ['help', 'nonsense']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('exit-codes, protected, retention, drills');
  });

  it("a backup's progress line counts to the sum of what flows (tree and database), and its log gives sizes in words", () => {
    /** A backup at a terminal (a pseudo-terminal by script(1)): what a person sees, progress line included. */
    const backup = () => {
      const out = execFileSync('script', ['-qfec', `${quoteArg(BIN)} --home ${quoteArg(home)} backup habits-shop`, '/dev/null'], {
        encoding: 'utf8',
        env: { ...process.env, OPSDECK_KNOWN_HOSTS: '' },
      });
      expect(out).toMatch(/backup \S+ of habits-shop/);
      // Each redraw of the progress line starts with a carriage return and an erase to the line's end.
      const progress = out
        .split('\r\x1b[K')
        .map((p) => /^ {4}([\d.]+ [KMG]?B)(?: of ([\d.]+ [KMG]?B) (\d+)%)?/.exec(p))
        .filter((m) => m !== null)
        .map((m) => ({ bytes: m[1], total: m[2], pct: m[3] }));
      return { out, progress };
    };
    // The first backup: the dump's size is not known before it flows, so the line has no total.
    const first = backup();
    expect(first.progress.length).toBeGreaterThan(0);
    expect(first.progress.every((p) => p.total === undefined)).toBe(true);
    // The next one: the tree's tar and a dump the size of the last one. The database did not change,
    // so the line ends at exactly its total.
    const second = backup();
    const last = second.progress[second.progress.length - 1];
    expect(last.total).toBeDefined();
    expect(second.progress.every((p) => p.total === last.total)).toBe(true);
    expect(last).toEqual({ bytes: last.total, total: last.total, pct: '100' });
    // Sizes as people read them, never a raw count of bytes.
    expect(second.out).toMatch(/code: \d+ files, [\d.]+ [KMG]?B, [\d.]+ [KMG]?B new stored/);
    expect(second.out).toMatch(/database: \d+ tables, [\d.]+ [KMG]?B, [\d.]+ [KMG]?B new stored/);
    expect(second.out).not.toMatch(/\d{4,} (new )?bytes/);
  });

  it('cron prints the PATH and OPSDECK_HOME lines its jobs need, and --check runs them as cron would', async () => {
    const out = (await must(cli(home, ['cron']))).stdout;
    const path = /^PATH=(.*)$/m.exec(out)?.[1];
    expect(path).toBeDefined();
    // node and restic, as found now, are on the crontab's PATH.
    const found = (prog: string) => execFileSync('sh', ['-c', `PATH=${quoteArg(path!)} command -v ${prog}`], { encoding: 'utf8' }).trim();
    expect(found('node')).not.toBe('');
    expect(found('restic')).not.toBe('');
    expect(out).toMatch(new RegExp(`^OPSDECK_HOME=${home}$`, 'm'));
    expect(out).toContain(`15 2 * * *  ${BIN} backup --all --parallel 2 --yes`);

    const check = await cli(home, ['cron', '--check']);
    expect(check.stdout).toContain('ok     15 2 * * *  backup --all --parallel 2 --yes');
    expect(check.stdout).not.toContain('FAILS');
    expect(check.stdout).toMatch(/all \d+ would run\./);
    expect(check.code).toBe(0);
  });

  it('cron --check says which job would fail in a bare environment, and why', async () => {
    // A home with no instances: backup --all has nothing to do, and says so.
    const empty = newHome();
    const r = await cli(empty, ['cron', '--check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILS {2}15 2 \* \* \* {2}backup --all --parallel 2 --yes\n\s+exit 2: opsdeck: backup: no instances given/);
    expect(r.stdout).toMatch(/\d of \d would fail\./);
    // opsdeck started from a PATH where restic is not: the lines warn, the check fails.
    const bin = mkdtempSync(join(tmpdir(), 'habits-path-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const noRestic = await cli(empty, ['cron', '--check'], { PATH: bin });
    expect(noRestic.code).toBe(1);
    expect(noRestic.stdout).toContain(`FAILS  restic\n         restic is not on this PATH (${bin})`);
    expect((await cli(empty, ['cron'], { PATH: bin })).stdout).toContain('# WARNING: restic is not on this PATH');
  });

  it('a site that does not answer as expected says why: connection refused, a maintenance page', async () => {
    const reasons = async () => {
      const r = await cli(home, ['health', 'habits-shop', '--json']);
      const doc = JSON.parse(r.stdout) as { instances: { instance: string; reasons: string[] }[] };
      return doc.instances.find((i) => i.instance === 'habits-shop')!.reasons.filter((x) => x.startsWith('http: '));
    };
    // A port nothing listens on.
    const refused = new URL(shop.url);
    refused.port = '1023'; // nothing listens there (and fetch does not refuse it as a "bad port")
    await must(cli(home, ['instance', 'set', 'habits-shop', '--health-url', refused.href]));
    expect(await reasons()).toEqual([`http: connection refused by ${refused.hostname}:1023: nothing listens there (is the web server running?)`]);
    // The web server answers 503 with a maintenance page opsdeck did not put there.
    await must(cli(home, ['instance', 'set', 'habits-shop', '--health-url', shop.url]));
    writeFileSync(join(shop.path, 'maintenance.html'), '<h1>Down for maintenance</h1>\n');
    try {
      expect(await reasons()).toEqual(['http: answered 503, expected 200: a maintenance page, though opsdeck did not put the instance in maintenance']);
    } finally {
      rmSync(join(shop.path, 'maintenance.html'));
    }
    expect(await reasons()).toEqual([]);
  });
});
