import { formatBytes } from '../core/format.js';
import type { CommandRecord } from '../remote/command-log.js';

/** Where a command ran, short: `lab1`, `local`, `store`. */
export function commandPlace(where: string): string {
  if (where.startsWith('host ')) return where.slice(5);
  return where === 'the backup store' ? 'store' : 'local';
}

/** How a command ended, in a few words: `exit 0 · 1.2 s · 3.4 MB out`. */
export function commandOutcome(c: Pick<CommandRecord, 'code' | 'signal' | 'ms' | 'bytesIn' | 'bytesOut'>): string {
  const end = c.code !== null ? `exit ${c.code}` : c.signal ? `signal ${c.signal}` : 'stopped';
  const bytes = [c.bytesIn ? `${formatBytes(c.bytesIn)} in` : '', c.bytesOut ? `${formatBytes(c.bytesOut)} out` : ''].filter(Boolean);
  return [end, c.ms < 10_000 ? `${(c.ms / 1000).toFixed(1)} s` : `${Math.round(c.ms / 1000)} s`, ...bytes].join(' · ');
}

/** One command as a shell prompt would show it, then how it ended: the line can be pasted on that host. */
export function commandText(c: CommandRecord): string {
  return `${commandPlace(c.where)}$ ${c.line}    # ${commandOutcome(c)}`;
}
