import { describe, expect, it } from 'vitest';
import { printable, printableText } from '../../src/util/display.js';

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
