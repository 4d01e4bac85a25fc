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

/** A length of time in seconds, in the largest unit that reads well: 42s, 5m, 3h, 12d. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s}s`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** How long ago: 42s ago, 5m ago, 3h ago, 12d ago. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  return `${duration((now - Date.parse(iso)) / 1000)} ago`;
}

/** A ratio as a whole percentage; '-' when there is none. */
export function percent(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '-' : `${Math.round(x * 100)}%`;
}

/** 30m, 12h, 7d, 2w as milliseconds. */
export function parseAge(age: string): number {
  const m = /^(\d+)([mhdw])$/.exec(age);
  if (!m) throw new UsageError(`invalid age ${JSON.stringify(age)}`, 'write it as a number and a unit: 30m, 12h, 7d, 2w');
  return Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
}

/** Recovery point: how old the restored data was, in hours (one decimal). */
export function rpoWords(rpoSeconds: number): string {
  return `${(rpoSeconds / 3600).toFixed(1)} h`;
}

/** Recovery time in seconds; `none` (default '-') when the drill restored nothing. */
export function rtoWords(rtoSeconds: number, none = '-'): string {
  return rtoSeconds >= 0 ? `${rtoSeconds} s` : none;
}
