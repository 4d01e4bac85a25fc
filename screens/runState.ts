import type { RunEvent } from '../src/core/events.js';
import { printable } from '../src/core/display.js';
import { commandOutcome, commandPlace } from '../src/present/commands.js';

export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'undoing' | 'undone' | 'undo-failed';

export interface RunState {
  command: string;
  instance: string | null;
  steps: { name: string; title: string; explain?: string; status: StepStatus; ms?: number }[];
  progress?: { index: number; bytes: number; total?: number; rate?: number };
  logs: { level: string; message: string }[];
  /** The commands the run ran so far, as the command log shows them (newest last). */
  commands: LoggedCommand[];
  startedAt: number;
  finished?: { status: string; error?: string; hint?: string; exitCode: number; ms: number };
}

/** A command of the log, as the console shows it: escaped, with the run it belongs to. */
export interface LoggedCommand {
  run: string;
  place: string;
  line: string;
  outcome: string;
  failed: boolean;
}

const MAX_LOGS = 200;
const MAX_COMMANDS = 500;

/** A command event as the log shows it. */
export function loggedCommand(e: Extract<RunEvent, { type: 'command' }>, run: string): LoggedCommand {
  return { run, place: commandPlace(e.where), line: printable(e.line), outcome: commandOutcome(e), failed: e.code !== 0 };
}

/** Folds run events into what the run view draws. Pure, so it is tested without a terminal. */
export function reduceRun(s: RunState | undefined, e: RunEvent): RunState | undefined {
  if (e.type === 'run-started') {
    return { command: e.command, instance: e.instance, steps: e.steps.map((x) => ({ name: x.name, title: x.title, explain: x.explain, status: 'pending' })), logs: [], commands: [], startedAt: e.at };
  }
  if (!s) return s;
  const steps = s.steps.slice();
  const set = (i: number, status: StepStatus, ms?: number) => (steps[i] = { ...steps[i], status, ms: ms ?? steps[i].ms });
  switch (e.type) {
    case 'step-started':
      set(e.index, 'running');
      return { ...s, steps, progress: undefined };
    case 'progress':
      return { ...s, progress: { index: e.index, bytes: e.bytes, total: e.total, rate: e.rate } };
    case 'log':
      // Log lines carry what hosts sent: escaped, so they cannot drive the terminal or break the layout.
      return { ...s, logs: [...s.logs, { level: e.level, message: printable(e.message) }].slice(-MAX_LOGS) };
    case 'command':
      return { ...s, commands: [...s.commands, loggedCommand(e, `${s.command}${s.instance ? ` ${s.instance}` : ''}`)].slice(-MAX_COMMANDS) };
    case 'step-done':
      set(e.index, 'done', e.ms);
      return { ...s, steps, progress: undefined };
    case 'step-failed':
      set(e.index, 'failed');
      return { ...s, steps, logs: [...s.logs, { level: 'error', message: printable(`${steps[e.index].title}: ${e.error}`) }].slice(-MAX_LOGS) };
    case 'undo-started':
      set(e.index, 'undoing');
      return { ...s, steps };
    case 'undo-done':
      set(e.index, e.ok ? 'undone' : 'undo-failed');
      return { ...s, steps };
    case 'run-finished':
      return { ...s, progress: undefined, finished: { status: e.status, error: e.error === undefined ? undefined : printable(e.error), hint: e.hint, exitCode: e.exitCode, ms: e.ms } };
  }
  return s;
}
