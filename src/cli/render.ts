import type { RunEvent } from '../core/events.js';
import { formatBytes } from '../core/events.js';
import { printable, printableText } from '../core/display.js';

/**
 * Text renderer of run events on stderr. On a terminal it shows every step and a live progress line;
 * without one (cron) it prints only failures and undo, so a clean run is quiet.
 */
export function textRenderer(out: NodeJS.WriteStream = process.stderr, verbose = out.isTTY === true, prefix = ''): (e: RunEvent) => void {
  const o = { write: (s: string) => out.write(s.replace(/^(\r\x1b\[K)?(?=.)/gm, `$1${prefix}`)), isTTY: out.isTTY && !prefix };
  let steps: { title: string }[] = [];
  let dry = false;
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) {
      o.write('\r\x1b[K');
      progressShown = false;
    }
  };
  return (e) => {
    switch (e.type) {
      case 'run-started':
        steps = e.steps;
        dry = e.dryRun;
        if (e.dryRun) {
          o.write(`dry run of ${e.command}${e.instance ? ` on ${e.instance}` : ''}: nothing will be changed. The plan:\n`);
          e.steps.forEach((s, i) => o.write(`  ${i + 1}. ${s.title}${s.explain ? `\n     ${s.explain}` : ''}\n`));
        }
        break;
      case 'step-started':
        if (verbose) o.write(`[${e.index + 1}/${steps.length}] ${e.title}\n`);
        break;
      case 'progress':
        if (verbose && o.isTTY) {
          const pct = e.total ? ` ${Math.min(100, Math.round((e.bytes / e.total) * 100))}%` : '';
          o.write(`\r\x1b[K    ${formatBytes(e.bytes)}${e.total ? ` of ${formatBytes(e.total)}` : ''}${pct}${e.rate ? `  ${formatBytes(e.rate)}/s` : ''}`);
          progressShown = true;
        }
        break;
      case 'log':
        // A dry run's preview is the result, printed on stdout.
        if (dry) break;
        clearProgress();
        // Messages carry what hosts sent (stderr, names): escaped, and continued lines indented, so
        // neither a control sequence nor a forged line reaches the terminal.
        if (verbose || e.level !== 'info' || e.index === null) o.write(`    ${e.level === 'info' ? '' : e.level + ': '}${indent(e.message)}\n`);
        break;
      case 'step-done':
        clearProgress();
        if (verbose) o.write(`    done in ${(e.ms / 1000).toFixed(1)} s\n`);
        break;
      case 'step-failed':
        clearProgress();
        o.write(`step failed: ${steps[e.index]?.title ?? e.name}: ${indent(e.error)}\n`);
        break;
      case 'undo-started':
        o.write(`undoing: ${steps[e.index]?.title ?? e.name}\n`);
        break;
      case 'undo-done':
        if (!e.ok) o.write(`UNDO FAILED: ${steps[e.index]?.title ?? e.name}: ${indent(e.error ?? '')}\n`);
        break;
      case 'run-finished':
        clearProgress();
        break;
    }
  };
}

const indent = (s: string) => printableText(s).replace(/\n/g, '\n      ');

/** JSON lines of every event on stderr, for tools that follow a run (--json keeps stdout for the result). */
export function jsonLinesRenderer(out: NodeJS.WritableStream = process.stderr): (e: RunEvent) => void {
  return (e) => {
    if (e.type === 'progress') return;
    out.write(JSON.stringify(e) + '\n');
  };
}

export function table(rows: string[][], headers: string[]): string {
  // A cell is one line: whatever a host put in it (a reason, an error, a name) is escaped.
  const all = [headers, ...rows].map((r) => r.map((c) => printable(c ?? '')));
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return (
    all
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i])))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

export { age } from '../core/format.js';
