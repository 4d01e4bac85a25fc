import { AsyncLocalStorage } from 'node:async_hooks';
import { quoteArg, toCommandLine } from './quote.js';
import type { CommandLogRecord } from '../../inventory/types.js';

/**
 * One command opsdeck ran, as a person would type it again (secrets as ***), and how it ended: the
 * record the inventory keeps (`where`: `host lab1`, `this machine`, `the backup store`; bytes read
 * from us and written to us).
 */
export type CommandRecord = CommandLogRecord;

export type CommandSink = (c: CommandRecord) => void;

// Commands are recorded where they run (drive), far below the run that caused them; the sink travels
// with the async context, so the run's steps, the CLI's --verbose and the console each see their own
// commands without every action passing a logger down.
const sinks = new AsyncLocalStorage<CommandSink>();

/** Runs fn with `sink` receiving every command run inside it, in addition to any enclosing sink. */
export function withCommandSink<T>(sink: CommandSink, fn: () => T): T {
  const outer = sinks.getStore();
  return sinks.run(
    outer
      ? (c) => {
          sink(c);
          outer(c);
        }
      : sink,
    fn,
  );
}

export function recordCommand(c: CommandRecord): void {
  const sink = sinks.getStore();
  if (!sink) return;
  try {
    sink(c);
  } catch {
    // A log that fails must not fail the command.
  }
}

const SECRET_WRAPPER = /^IFS= read -r ([A-Z_][A-Z0-9_]*) \|\| exit 97; export \1; exec "\$@"$/;
const BECOME_WRAPPER = 'cd / && exec "$@"';

/**
 * The line to paste to run argv again by hand. The wrappers opsdeck adds are shown as what they
 * mean: a secret read from stdin becomes `NAME=*** command` (type the secret for ***), `sudo -n -u
 * USER -- sh -c 'cd / && exec "$@"' sh command` becomes `sudo -n -u USER -- command`.
 */
export function displayArgv(argv: readonly string[], env: Record<string, string> = {}): string {
  // The environment opsdeck gives a local command (restic's repository and password file) is part of
  // what must be typed again; a value that is itself a secret never is.
  const vars = Object.entries(env).map(([k, v]) => `${k}=${/PASSWORD$|SECRET|TOKEN/.test(k) ? '***' : quoteArg(v)}`);
  const line = commandOf(argv);
  return vars.length ? `${vars.join(' ')} ${line}` : line;
}

function commandOf(argv: readonly string[]): string {
  const secrets: string[] = [];
  let rest = [...argv];
  let sudo: string[] = [];
  for (;;) {
    const m = rest[0] === 'sh' && rest[1] === '-c' && rest[3] === 'sh' ? SECRET_WRAPPER.exec(rest[2]) : null;
    if (m) {
      secrets.push(`${m[1]}=***`);
      rest = rest.slice(4);
      continue;
    }
    const dash = rest[0] === 'sudo' ? rest.indexOf('--') : -1;
    if (dash > 0 && !sudo.length && rest[dash + 1] === 'sh' && rest[dash + 2] === '-c' && rest[dash + 3] === BECOME_WRAPPER && rest[dash + 4] === 'sh') {
      sudo = rest.slice(0, dash + 1);
      rest = rest.slice(dash + 5);
      continue;
    }
    break;
  }
  if (!rest.length) return toCommandLine(argv);
  const cmd = toCommandLine(rest);
  // The secret must reach the command itself, through sudo too: sudo clears the environment, so
  // it goes after sudo, as env's argument.
  if (sudo.length) return `${toCommandLine(sudo)} ${secrets.length ? `env ${secrets.join(' ')} ` : ''}${cmd}`;
  return `${secrets.length ? secrets.join(' ') + ' ' : ''}${cmd}`;
}
