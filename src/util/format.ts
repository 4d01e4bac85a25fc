import { UsageError } from './errors.js';

/** Sizes as people read them: 1 decimal under 100, SI units (what df -H and restic print). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`;
}

/** How long ago, in the largest unit that reads well: 42s, 5m, 3h, 12d. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 90) return `${s}s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** 30m, 12h, 7d, 2w as milliseconds. */
export function parseAge(age: string): number {
  const m = /^(\d+)([mhdw])$/.exec(age);
  if (!m) throw new UsageError(`invalid age ${JSON.stringify(age)}`, 'write it as a number and a unit: 30m, 12h, 7d, 2w');
  return Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
}
