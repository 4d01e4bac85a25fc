import { describe, expect, it } from 'vitest';
import { sparkline } from '../../screens/sparkline.js';

describe('sparkline', () => {
  it('draws one bar per value, lowest to highest, newest on the right', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8)).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([7, 0], 2)).toBe('█▁');
  });
  it('keeps only the last values that fit, and pads a short history on the left', () => {
    expect(sparkline([9, 9, 9, 0, 8], 2)).toBe('▁█');
    expect(sparkline([1], 3)).toBe('  █');
    expect(sparkline([], 3)).toBe('   ');
  });
  it('scales to a fixed maximum when given: ratios stay comparable between hosts', () => {
    expect(sparkline([0.5, 0.5], 2, { max: 1 })).toBe('▅▅');
    expect(sparkline([0.1, 1], 2, { max: 1 })).toBe('▁█');
  });
  it('from the lowest value when asked, so small changes in a big number show', () => {
    expect(sparkline([1000, 1001, 1002], 3, { fromMin: true })).toBe('▁▅█');
    expect(sparkline([5, 5], 2, { fromMin: true })).toBe('▁▁');
    expect(sparkline([0, 0], 2)).toBe('▁▁');
  });
});
