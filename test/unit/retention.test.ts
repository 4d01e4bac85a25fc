import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, selectKept } from '../../src/core/retention.js';

/** One backup a day at 02:00 UTC, from `from` to `to` inclusive. */
function daily(from: string, to: string) {
  const out: { id: string; createdAt: string }[] = [];
  for (let t = Date.parse(`${from}T02:00:00Z`); t <= Date.parse(`${to}T02:00:00Z`); t += 86_400_000) {
    const iso = new Date(t).toISOString();
    out.push({ id: iso.slice(0, 10), createdAt: iso });
  }
  return out;
}

describe('retention policy', () => {
  it('keeps exactly the expected backups of a 14-month daily history with the defaults', () => {
    const history = daily('2025-09-22', '2026-11-21');
    expect(history).toHaveLength(426);
    const kept = [...selectKept(history, DEFAULT_POLICY)].sort().reverse();
    expect(kept).toEqual([
      // 3 daily: the last three days
      '2026-11-21',
      '2026-11-20',
      '2026-11-19',
      // 2 weekly: the newest of the two ISO weeks before (Nov 9-15, Nov 2-8)
      '2026-11-15',
      '2026-11-08',
      // 6 monthly: the newest of the six months before November
      '2026-10-31',
      '2026-09-30',
      '2026-08-31',
      '2026-07-31',
      '2026-06-30',
      '2026-05-31',
      // 1 yearly: the newest of the year before 2026
      '2025-12-31',
    ]);
  });

  it('keeps one per period when there are several, and always the newest', () => {
    const h = [
      { id: 'a', createdAt: '2026-11-21T09:00:00.000Z' },
      { id: 'b', createdAt: '2026-11-21T02:00:00.000Z' },
      { id: 'c', createdAt: '2026-11-20T02:00:00.000Z' },
    ];
    expect([...selectKept(h, { daily: 1, weekly: 0, monthly: 0, yearly: 0 })]).toEqual(['a']);
    expect([...selectKept(h, { daily: 0, weekly: 0, monthly: 0, yearly: 0 })]).toEqual(['a']);
    expect(selectKept([], DEFAULT_POLICY).size).toBe(0);
  });

  it('handles ISO weeks across a year boundary', () => {
    // 2026-01-01 is a Thursday: Dec 29 2025 - Jan 4 2026 is ISO week 2026-W01.
    const h = daily('2025-12-25', '2026-01-04');
    const kept = selectKept(h, { daily: 1, weekly: 1, monthly: 0, yearly: 0 });
    expect([...kept].sort()).toEqual(['2025-12-28', '2026-01-04']);
  });
});
