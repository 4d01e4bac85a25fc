import { Box, Text, useStdout } from 'ink';
import { printable } from '../src/core/display.js';
import { memo, useEffect, useState } from 'react';
import { formatBytes } from '../src/core/format.js';
import type { RunState, StepStatus } from './runState.js';

/** Terminal size, redrawn on resize (Ink 6 has no useWindowSize). */
export function useTermSize(): { cols: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ cols: stdout.columns || 100, rows: stdout.rows || 30 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const on = () => setSize(read());
    stdout.on('resize', on);
    return () => {
      stdout.off('resize', on);
    };
  }, [stdout]);
  return size;
}

export function Clock() {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const t = setInterval(() => setNow(new Date()), 1000);
    return () => clearInterval(t);
  }, []);
  return <Text dimColor>{now.toTimeString().slice(0, 8)}</Text>;
}

/** The inventory's path in `room` columns, cut in the middle; none when there is no room (the counts and filter matter more). */
function shortFile(file: string, room: number): string {
  if (room < 12) return '';
  return ' ' + (file.length <= room ? file : `${file.slice(0, Math.ceil(room / 2) - 1)}…${file.slice(file.length - Math.floor(room / 2))}`);
}

export function Header({ file, context, width }: { file: string; context: string; width: number }) {
  return (
    <Box flexDirection="column">
      <Box justifyContent="space-between" width={width}>
        <Text wrap="truncate-end">
          <Text bold color="cyan">
            opsdeck
          </Text>
          <Text dimColor>{shortFile(file, width - context.length - 20)}</Text>
          <Text> {context}</Text>
        </Text>
        <Clock />
      </Box>
      <Text dimColor>{'─'.repeat(Math.max(0, width))}</Text>
    </Box>
  );
}

export function Footer({ hints, flash, width }: { hints: [string, string, boolean?][]; flash?: { level: string; text: string }; width: number }) {
  return (
    <Box flexDirection="column">
      <Text dimColor>{'─'.repeat(Math.max(0, width))}</Text>
      {flash ? (
        <Text color={flash.level === 'error' ? 'red' : 'green'} wrap="truncate-end">
          {printable(flash.text)}
        </Text>
      ) : null}
      <Box width={width} justifyContent="space-between">
        <Box flexShrink={1}>
          <Text wrap="truncate-end">
            {hints.map(([k, what, greyed], i) => (
              <Text key={i}>
                {/* A key the role may not use: greyed, its reason after it. */}
                <Text bold={!greyed} color={greyed ? 'gray' : 'yellow'} dimColor={greyed}>
                  {k}
                </Text>
                <Text dimColor> {what} </Text>
              </Text>
            ))}
          </Text>
        </Box>
        {/* Always visible, however narrow the terminal: how to get help and how to get out. */}
        <Box flexShrink={0}>
          <Text>
            <Text bold color="yellow">
              ?
            </Text>
            <Text dimColor> help </Text>
            <Text bold color="yellow">
              q
            </Text>
            <Text dimColor> quit</Text>
          </Text>
        </Box>
      </Box>
    </Box>
  );
}

export interface Column {
  title: string;
  width: number;
  color?: (value: string) => string | undefined;
  /**
   * On a terminal too narrow for every column, the lowest `drop` goes first (a sparkline before the
   * reason a row is bad); columns without one always stay.
   */
  drop?: number;
  /** The column that takes the width left over, never less than its `width`. */
  flex?: boolean;
}

/**
 * The columns that fit in `width`, flexible one widened to what is left; each kept column's index
 * into the row's cells comes with it. Columns are dropped lowest `drop` first until the rest fit.
 */
export function fitColumns(columns: Column[], width: number): { columns: Column[]; index: number[] } {
  let kept = columns.map((c, i) => ({ c, i }));
  const need = () => kept.reduce((n, k) => n + k.c.width, 0) + kept.length - 1;
  const droppable = kept.filter((k) => k.c.drop !== undefined).sort((a, b) => a.c.drop! - b.c.drop! || b.i - a.i);
  for (const d of droppable) {
    if (need() <= width) break;
    kept = kept.filter((k) => k !== d);
  }
  const spare = Math.max(0, width - need());
  return { columns: kept.map((k) => (k.c.flex ? { ...k.c, width: k.c.width + spare } : k.c)), index: kept.map((k) => k.i) };
}

/** First index of the visible window that keeps `selected` in view. */
export function windowStart(selected: number, count: number, height: number): number {
  if (count <= height) return 0;
  const half = Math.floor(height / 2);
  return Math.max(0, Math.min(selected - half, count - height));
}

/** One table or picker row: its cells in their columns' colours, inverse when selected. */
export function RowText({ columns, cells, selected }: { columns: Column[]; cells: string[]; selected: boolean }) {
  return <RowRuns runs={segments(columns, cells, selected)} selected={selected} />;
}

type Run = [string, string | undefined];
const sameRuns = (a: Run[], b: Run[]) => a.length === b.length && a.every((r, i) => r[0] === b[i][0] && r[1] === b[i][1]);

/**
 * A row's runs, drawn again only when their text or colours changed: a key redraws the whole
 * dashboard, and most of its rows (the other panels', the rows a move of the selection leaves) are
 * the last frame's.
 */
const RowRuns = memo(
  function RowRuns({ runs, selected }: { runs: Run[]; selected: boolean }) {
    return (
      <Text inverse={selected} wrap="truncate-end">
        {runs.map(([text, color], j) =>
          color ? (
            <Text key={j} color={color}>
              {text}
            </Text>
          ) : (
            text
          ),
        )}
      </Text>
    );
  },
  (a, b) => a.selected === b.selected && sameRuns(a.runs, b.runs),
);

/**
 * A row as runs of text of one colour: neighbouring cells without a colour become one string.
 * Ink's cost per frame grows with the styled pieces it has to measure and cut.
 */
export function segments(columns: Column[], r: string[], selected: boolean): [string, string | undefined][] {
  const out: [string, string | undefined][] = [];
  columns.forEach((c, j) => {
    const text = fit(r[j] ?? '', c.width) + (j < columns.length - 1 ? ' ' : '');
    const color = selected ? undefined : c.color?.(r[j] ?? '');
    const last = out[out.length - 1];
    if (last && last[1] === color) last[0] += text;
    else out.push([text, color]);
  });
  return out;
}

// Cells hold names from hosts (paths, tables, errors): escaped before they are cut to width.
export const fit = (raw: string, w: number) => {
  const s = printable(raw);
  return s.length > w ? s.slice(0, Math.max(0, w - 1)) + '…' : s.padEnd(w);
};

/**
 * A table that lays out only the rows that fit: Ink lays out every node it is given. Rows come as
 * an array, or as a count and a function that makes one row, so that of 10,000 instances only the
 * visible few are ever turned into cells.
 */
export function Table({
  columns,
  rows,
  count,
  row,
  selected,
  height,
  empty,
  focused = true,
  width,
}: {
  columns: Column[];
  /** The terminal's width: with it, columns are dropped or widened to fit (fitColumns). */
  width?: number;
  rows?: string[][];
  count?: number;
  row?: (i: number) => string[];
  selected: number;
  height: number;
  empty?: string;
  focused?: boolean;
}) {
  const n = rows ? rows.length : (count ?? 0);
  const all = rows ? (i: number) => rows[i] : (row ?? (() => []));
  const fitted = width === undefined ? undefined : fitColumns(columns, width);
  const cols = fitted ? fitted.columns : columns;
  const get = fitted
    ? (i: number) => {
        const r = all(i);
        return fitted.index.map((j) => r[j]);
      }
    : all;
  const h = Math.max(1, height - 1 - (n > height - 1 ? 1 : 0));
  const start = windowStart(selected, n, h);
  const visible = Array.from({ length: Math.max(0, Math.min(h, n - start)) }, (_, i) => get(start + i));
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate-end">
        {cols.map((c) => fit(c.title, c.width)).join(' ')}
      </Text>
      {n === 0 ? <Text dimColor>{empty ?? 'nothing here'}</Text> : null}
      {visible.map((r, i) => {
        const idx = start + i;
        const sel = focused && idx === selected;
        // Keyed by place on screen: a jump or a filter changes what each line says, not the lines.
        return <RowText key={i} columns={cols} cells={r} selected={sel} />;
      })}
      {n > h ? (
        <Text dimColor>
          {start + 1}–{Math.min(start + h, n)} of {n}
        </Text>
      ) : null}
    </Box>
  );
}

const ICON: Record<StepStatus, [string, string | undefined]> = {
  pending: ['·', 'gray'],
  running: ['▸', 'cyan'],
  done: ['✓', 'green'],
  failed: ['✗', 'red'],
  undoing: ['↺', 'yellow'],
  undone: ['↩', 'yellow'],
  'undo-failed': ['‼', 'red'],
};

function Elapsed({ since, until }: { since: number; until?: number }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (until) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [until]);
  return <Text dimColor>{(((until ?? now) - since) / 1000).toFixed(0)} s</Text>;
}

export function ProgressBar({ bytes, total, rate, width }: { bytes: number; total?: number; rate?: number; width: number }) {
  const barW = Math.max(10, Math.min(40, width - 40));
  const frac = total ? Math.min(1, bytes / total) : undefined;
  const filled = frac === undefined ? 0 : Math.round(frac * barW);
  return (
    <Text>
      {frac === undefined ? null : (
        <Text>
          <Text color="cyan">{'█'.repeat(filled)}</Text>
          <Text dimColor>{'░'.repeat(barW - filled)}</Text> {Math.round(frac * 100)}%{' '}
        </Text>
      )}
      {formatBytes(bytes)}
      {total ? ` of ${formatBytes(total)}` : ''}
      {rate ? `  ${formatBytes(rate)}/s` : ''}
    </Text>
  );
}

/** The run view: the plan's steps with ticks, a progress bar with bytes and rate, the last log lines. */
export function RunView({ run, width, height }: { run: RunState; width: number; height: number }) {
  const f = run.finished;
  const logRoom = Math.max(1, height - run.steps.length - 6);
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>{run.command}</Text> {run.instance ?? ''} <Elapsed since={run.startedAt} until={f ? run.startedAt + f.ms : undefined} />
        {f ? (
          <Text bold color={f.status === 'ok' ? 'green' : 'red'}>
            {'  '}
            {f.status === 'ok' ? 'DONE' : f.status === 'rolled-back' ? 'FAILED, ROLLED BACK' : 'FAILED'}
          </Text>
        ) : null}
      </Text>
      <Box flexDirection="column" marginY={1}>
        {run.steps.map((s, i) => (
          <Text key={i}>
            <Text color={ICON[s.status][1]}>{ICON[s.status][0]}</Text> {s.title}
            {s.ms !== undefined ? <Text dimColor> {(s.ms / 1000).toFixed(1)} s</Text> : null}
            {s.status === 'running' && run.progress?.index === i ? (
              <Text>
                {'  '}
                <ProgressBar bytes={run.progress.bytes} total={run.progress.total} rate={run.progress.rate} width={width} />
              </Text>
            ) : null}
            {/* Guided runs (drills) say what each step does while it runs, and what to do when it fails. */}
            {s.explain && (s.status === 'running' || s.status === 'failed') ? (
              <Text color={s.status === 'failed' ? 'yellow' : undefined} dimColor={s.status === 'running'} wrap="wrap">
                {'\n    '}
                {s.explain}
              </Text>
            ) : null}
          </Text>
        ))}
      </Box>
      {f?.error ? (
        <Text color="red" wrap="wrap">
          {f.error}
          {f.hint ? `\nfix: ${f.hint}` : ''}
        </Text>
      ) : null}
      {run.logs.slice(-logRoom).map((l, i) => (
        <Text key={i} dimColor={l.level === 'info'} color={l.level === 'error' ? 'red' : l.level === 'warn' ? 'yellow' : undefined} wrap="truncate-end">
          {l.message}
        </Text>
      ))}
    </Box>
  );
}

/** A confirmation with Cancel focused; on a protected target the name must be typed. */
/**
 * A dialog's message in at most `rows` rows of `width` columns: on a short terminal the indented
 * explanations go first (the steps' titles stay), then the tail is cut with a count, so the choice
 * below it is always on screen.
 */
export function fitMessage(message: string, width: number, rows: number): string {
  const w = Math.max(10, width);
  const height = (lines: string[]) => lines.reduce((n, l) => n + Math.max(1, Math.ceil(l.length / w)), 0);
  let lines = message.split('\n');
  if (height(lines) <= rows) return message;
  lines = lines.filter((l) => !/^ {3}\S/.test(l));
  if (height(lines) <= rows) return lines.join('\n');
  const kept: string[] = [];
  for (const l of lines) {
    if (height([...kept, l]) > rows - 1) break;
    kept.push(l);
  }
  return [...kept, `… ${lines.length - kept.length} more lines (a taller terminal shows them)`].join('\n');
}

export function ConfirmView({
  message,
  action,
  typeName,
  typed,
  focus,
  width = 80,
  height = 1000,
}: {
  message: string;
  action: string;
  typeName?: string;
  typed: string;
  focus: 'cancel' | 'ok';
  /** The room the dialog has: its message is fitted so the choice stays on screen. */
  width?: number;
  height?: number;
}) {
  // Border and padding take 4 columns and 2 rows; the choice below the message 2 rows (4 when protected).
  const shown = fitMessage(message, width - 4, height - 2 - (typeName ? 4 : 2));
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={typeName ? 'red' : 'yellow'} paddingX={1}>
      <Text wrap="wrap">{shown}</Text>
      {typeName ? (
        <Box marginTop={1} flexDirection="column">
          <Text color="red" bold>
            {typeName} is in a PROTECTED environment.
          </Text>
          <Text>
            Type its name to go on: <Text inverse>{typed || ' '}</Text>
          </Text>
          <Text dimColor>enter confirm · esc cancel</Text>
        </Box>
      ) : (
        <Box marginTop={1}>
          <Text inverse={focus === 'cancel'}> Cancel </Text>
          <Text> </Text>
          <Text inverse={focus === 'ok'} color={focus === 'ok' ? 'red' : undefined}>
            {' '}
            {action}{' '}
          </Text>
          <Text dimColor> ←/→ choose · enter · esc cancel</Text>
        </Box>
      )}
    </Box>
  );
}
