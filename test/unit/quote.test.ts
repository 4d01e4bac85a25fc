import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LocalShell } from '../../src/remote/local.js';
import { quoteArg, toCommandLine, withSecretFromStdin } from '../../src/remote/quote.js';

const hostile = [
  'plain',
  '',
  'with space',
  "it's",
  '"double"',
  '$(touch /tmp/opsdeck-never)',
  '`id`',
  'a;b && c || d | e > f < g',
  '-rf',
  '--help',
  '\\',
  "'; rm -rf / #",
  '$HOME ${PATH} $1 $@',
  'new\nline',
  'tab\there',
  '*?[glob]',
  '~root',
  'émoji ✓ ı',
  "''''",
  'ends in \\',
  "\\'\\\\",
  '%self',
  '=ls',
];

// The login shells quoteArg promises to read alike; a host whose shell differs is refused by host check.
const shells = ['sh', 'bash', 'dash', 'zsh', 'fish'].filter((s) => {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', s]);
    return true;
  } catch {
    return false;
  }
});

describe('quoteArg', () => {
  it('makes a POSIX shell see exactly the original word', () => {
    for (const s of hostile) {
      const out = execFileSync('sh', ['-c', `printf '%s' ${quoteArg(s)}`]).toString();
      expect(out).toBe(s);
    }
  });

  it('keeps a whole argv as separate words through sh', () => {
    const line = toCommandLine(['printf', '%s\\0', ...hostile]);
    const out = execFileSync('sh', ['-c', line]).toString();
    expect(out.split('\0').slice(0, -1)).toEqual(hostile);
  });

  it("reads the same in every supported login shell, fish included (its quotes escape \\ and ')", () => {
    expect(shells).toContain('fish');
    const line = toCommandLine(['printf', '%s\\0', ...hostile]);
    for (const sh of shells) expect([sh, execFileSync(sh, ['-c', line]).toString().split('\0').slice(0, -1)]).toEqual([sh, hostile]);
  });

  it('refuses a NUL byte, which no argv can carry', () => {
    expect(() => quoteArg('a\0b')).toThrow(/NUL/);
  });
});

describe('withSecretFromStdin', () => {
  it('hands the first stdin line to the command as an environment variable, and the rest as its stdin', async () => {
    const shell = new LocalShell();
    const argv = withSecretFromStdin('PGPASSWORD', ['sh', '-c', 'printf "%s|" "$PGPASSWORD"; cat']);
    const r = await shell.exec(argv, { secretLine: "s3cr3t 'with' $(chars)", stdin: 'the data\nmore' });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("s3cr3t 'with' $(chars)|the data\nmore");
    // The secret is nowhere in the argv that ps would show.
    expect(argv.join(' ')).not.toContain('s3cr3t');
  });
});
