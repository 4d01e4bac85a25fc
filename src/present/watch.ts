import { watchChanged, type WatchReport } from '../actions/watch.js';
import { printable } from '../core/display.js';

/** What a watch found, line by line: the summary, then + added, ~ changed, - removed. */
export function watchLines(r: WatchReport): string[] {
  if (r.baselined) return [`watch ${r.instance}: baseline recorded (${r.files} files)`];
  if (!watchChanged(r)) return [`watch ${r.instance}: no changes since ${r.baselineAt} (${r.files} files)`];
  const lines = [`watch ${r.instance}: ${r.added.length} added, ${r.changed.length} changed, ${r.removed.length} removed since ${r.baselineAt}`];
  // Names come from the host: escaped, so a name cannot retitle the terminal or forge a line.
  for (const p of r.added) lines.push(`  + ${printable(p)}`);
  for (const c of r.changed) lines.push(`  ~ ${printable(c.path)} (${c.what.map(printable).join(', ')})`);
  for (const p of r.removed) lines.push(`  - ${printable(p)}`);
  return lines;
}
