import type { Command } from 'commander';
import { EXIT, OpsError, errorMessage } from '../core/errors.js';
import { printableText } from '../core/display.js';
import { openApp, type App, type GlobalOpts } from '../app/app.js';
import { commandText } from '../present/commands.js';
import { withCommandSink, type CommandRecord } from '../remote/command-log.js';
import { parseDuration } from '../actions/store.js';
import { pingEnd, unattended } from './run.js';

/** Output of a command: what --json prints, and the text for people. */
export interface Output {
  json: unknown;
  text: string;
  exitCode?: number;
}

/** A command's body: its positional arguments, then its options, as commander passes them. */
export type Handler<A extends unknown[]> = (app: App, g: GlobalOpts, ...args: A) => Promise<Output>;

/** What commander's .action() takes: the arguments, the options object, then the command itself. */
export type CommanderAction = (...args: unknown[]) => Promise<void>;

/** Wraps a handler for commander; the wrapper hands each command's exit code to `done`. */
export type Act = <A extends unknown[]>(fn: Handler<A>) => CommanderAction;

export function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals<GlobalOpts>();
}

/**
 * Makes the action wrapper of one program: it opens the app, prints the result (text or --json),
 * maps errors to exit codes and passes the code to `done` (the program's caller returns it).
 */
export function makeAct(done: (exitCode: number) => void): Act {
  return <A extends unknown[]>(fn: Handler<A>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      // Commander passes the declared arguments and the options object: the handler's A, by construction.
      const params = args.slice(0, -1) as A;
      const g = globals(cmd);
      let app: App | undefined;
      try {
        app = openApp(g.home);
        const opened = app;
        // cron's jobs collide on the store's lock (prune, check, copy, backup): unattended, wait the setting's time.
        if (unattended(g)) opened.store.setLockWait(parseDuration(opened.settings.storeLockWait));
        const body = () => fn(opened, g, ...params);
        const out = await (g.verbose ? withCommandSink(printCommand, body) : body());
        const code = printOutput(out, g);
        await pingEnd(opened, code, out.text);
        done(code);
      } catch (err) {
        const code = reportError(err, g);
        if (app) await pingEnd(app, code, errorMessage(err));
        done(code);
      } finally {
        await app?.close().catch(() => {});
      }
    };
}

/** --verbose: each command as it ends, on stderr (over a progress line, which the next update redraws). */
function printCommand(c: CommandRecord): void {
  process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${printableText(commandText(c))}\n`);
}

function printOutput(out: Output, g: GlobalOpts): number {
  if (g.json && out.json !== undefined) process.stdout.write(JSON.stringify(out.json, null, 2) + '\n');
  // Text for people may hold what hosts sent (names, errors): never a raw control sequence.
  else if (out.text) process.stdout.write(printableText(out.text.endsWith('\n') ? out.text : out.text + '\n'));
  return out.exitCode ?? EXIT.OK;
}

export function reportError(err: unknown, g: GlobalOpts): number {
  const code = err instanceof OpsError ? err.exitCode : EXIT.FAILED;
  const hint = err instanceof OpsError ? err.hint : undefined;
  if (g.json) process.stdout.write(JSON.stringify({ error: errorMessage(err), hint, exitCode: code }, null, 2) + '\n');
  process.stderr.write(printableText(`opsdeck: ${errorMessage(err)}\n${hint ? `  fix: ${hint}\n` : ''}`));
  if (!(err instanceof OpsError) && process.env.OPSDECK_DEBUG) process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  return code;
}
