import { describe, expect, it } from 'vitest';
import { fitColumns, fitMessage, type Column } from '../../screens/components.js';

const cols: Column[] = [
  { title: 'NAME', width: 10 },
  { title: 'STATE', width: 8 },
  { title: 'spark', width: 6, drop: 1 },
  { title: 'MODE', width: 8, drop: 3 },
  { title: 'HTTP', width: 6, drop: 2 },
  { title: 'WHY', width: 12, flex: true },
];

describe('columns on a terminal of a given width', () => {
  it('keeps every column when they fit, the flexible one taking what is left', () => {
    const f = fitColumns(cols, 70);
    expect(f.columns.map((c) => c.title)).toEqual(['NAME', 'STATE', 'spark', 'MODE', 'HTTP', 'WHY']);
    // 10+8+6+8+6 and 5 separators leave 27 for WHY.
    expect(f.columns[5].width).toBe(27);
    expect(f.index).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('drops the lowest first, and never the reason', () => {
    const f = fitColumns(cols, 50);
    expect(f.columns.map((c) => c.title)).toEqual(['NAME', 'STATE', 'MODE', 'HTTP', 'WHY']);
    expect(f.index).toEqual([0, 1, 3, 4, 5]);
    expect(f.columns.reduce((n, c) => n + c.width, 0) + f.columns.length - 1).toBe(50);
  });

  it('keeps the columns that may not be dropped even when they do not fit', () => {
    const f = fitColumns(cols, 20);
    expect(f.columns.map((c) => c.title)).toEqual(['NAME', 'STATE', 'WHY']);
    expect(f.columns[2].width).toBe(12);
  });
});

describe('a dialog message on a short terminal', () => {
  const msg = ['Restore drill of a onto b. The steps:', '1. Verify', '   Reads every stream back and compares it.', '2. Restore', '   Takes a safety backup, then loads.', '3. Check'].join('\n');
  it('is shown whole when it fits', () => {
    expect(fitMessage(msg, 80, 10)).toBe(msg);
  });
  it('drops the explanations first, keeping every step', () => {
    expect(fitMessage(msg, 80, 5)).toBe('Restore drill of a onto b. The steps:\n1. Verify\n2. Restore\n3. Check');
  });
  it('then cuts the tail with a count', () => {
    expect(fitMessage(msg, 80, 3)).toBe('Restore drill of a onto b. The steps:\n1. Verify\n… 2 more lines (a taller terminal shows them)');
  });
});
