const BARS = '▁▂▃▄▅▆▇█';

/**
 * The last `width` values as a bar per value. Scaled from 0 (or the lowest value, when `fromMin`)
 * to `max` or the highest value seen, so a flat line at 90% disk still reads as high.
 */
export function sparkline(values: readonly number[], width: number, opts: { max?: number; fromMin?: boolean } = {}): string {
  const v = values.slice(-width);
  if (!v.length) return ''.padEnd(width);
  const lo = opts.fromMin ? Math.min(...v) : 0;
  const hi = Math.max(opts.max ?? -Infinity, ...v);
  const span = hi - lo;
  const bars = v.map((x) => (span <= 0 ? BARS[x > 0 && !opts.fromMin ? BARS.length - 1 : 0] : BARS[Math.min(BARS.length - 1, Math.max(0, Math.floor(((x - lo) / span) * BARS.length)))]));
  return bars.join('').padStart(width);
}
