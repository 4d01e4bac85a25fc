import { describe, expect, it } from 'vitest';
import { printable, printableText } from '../../src/core/display.js';

describe('printable', () => {
  it('escapes C0, DEL, C1 and bidi controls so a name cannot drive the terminal or forge a line', () => {
    expect(printable('evil\x1b]0;TITLE\x07.txt')).toBe('evil\\e]0;TITLE\\a.txt');
    expect(printable('a\nb\rc\td')).toBe('a\\nb\\rc\\td');
    expect(printable('x\x00\x7f\x9b2J')).toBe('x\\x00\\x7f\\x9b2J');
    expect(printable('invoice\u202Efdp.exe')).toBe('invoice\\u202efdp.exe');
    expect(printable('\u2028\u2066')).toBe('\\u2028\\u2066');
  });
  it('leaves ordinary text alone, accents and emoji included', () => {
    expect(printable('lib/we ird;$(x).php')).toBe('lib/we ird;$(x).php');
    expect(printable('Ünïcödé/日本/😀.txt')).toBe('Ünïcödé/日本/😀.txt');
  });
  it('keeps lines and tabs in text of several lines, escaping the rest', () => {
    expect(printableText('--- a\n+++ b\n+\tx\x1b[2J\n')).toBe('--- a\n+++ b\n+\tx\\e[2J\n');
  });
});

describe('table', () => {
  it('keeps each row on one line, whatever a cell holds', async () => {
    const { table } = await import('../../src/cli/render.js');
    expect(table([['up', 'host said\nFORGED ok\x1b[2J']], ['STATE', 'REASON'])).toBe('STATE  REASON\nup     host said\\nFORGED ok\\e[2J\n');
  });
});

describe('run output', () => {
  it('the text renderer escapes what a host wrote into a log line or an error, and indents its lines', async () => {
    const { textRenderer } = await import('../../src/cli/render.js');
    let out = '';
    const r = textRenderer({ write: (s: string) => ((out += s), true), isTTY: false } as unknown as NodeJS.WriteStream, false);
    r({ type: 'run-started', runId: 1, command: 'restore', instance: 'x', steps: [{ name: 's', title: 'Step' }], dryRun: false, at: 0 });
    r({ type: 'log', index: 0, level: 'warn', message: 'hook: \x1b]0;owned\x07done\nFORGED line', at: 0 });
    r({ type: 'step-failed', index: 0, name: 's', error: 'tar: \x9b31mbad\rname', at: 0 });
    expect(out).toBe('    warn: hook: \\e]0;owned\\adone\n      FORGED line\nstep failed: Step: tar: \\x9b31mbad\\rname\n');
  });
  it('the console keeps log lines and errors escaped, one line each', async () => {
    const { reduceRun } = await import('../../screens/runState.js');
    let s = reduceRun(undefined, { type: 'run-started', runId: 1, command: 'watch', instance: 'x', steps: [{ name: 's', title: 'Scan' }], dryRun: false, at: 0 });
    s = reduceRun(s, { type: 'log', index: 0, level: 'info', message: 'a\x1b[2Jb\nc', at: 0 });
    s = reduceRun(s, { type: 'step-failed', index: 0, name: 's', error: 'x\x07', at: 0 });
    s = reduceRun(s, { type: 'run-finished', status: 'failed', error: 'e\x1b', exitCode: 1, ms: 1, at: 0 });
    expect(s!.logs.map((l) => l.message)).toEqual(['a\\e[2Jb\\nc', 'Scan: x\\a']);
    expect(s!.finished!.error).toBe('e\\e');
  });
});
