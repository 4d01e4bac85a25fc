import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { Act } from '../action.js';
import { table } from '../render.js';
import { commandText } from '../../present/commands.js';
import { examples } from './help.js';

interface RunsOpts {
  limit: string;
  instance?: string;
  commands?: boolean;
}

/** runs: the audit trail. */
export function register(program: Command, act: Act): void {
  program
    .command('runs [id]')
    .description('the audit trail: who ran what, from where, and how it ended; with an id, its steps')
    .addHelpText(
      'after',
      examples(
        'opsdeck runs',
        'opsdeck runs --instance shop-prod --limit 50',
        'opsdeck runs 42   # its steps and undos, in order',
        'opsdeck runs 42 --commands   # the commands it ran, to redo a step by hand',
      ),
    )
    .option('--limit <n>', 'how many', '20')
    .option('--instance <name>', 'only runs on this instance')
    .option('--commands', 'with an id: every command the run ran, where, the line to run it again by hand (secrets as ***), and how it ended')
    .action(
      act(async (app, _g, id: string | undefined, o: RunsOpts) => {
        if (id !== undefined) {
          const run = /^\d+$/.test(id) ? app.inv.getRun(Number(id)) : undefined;
          if (!run) throw new UsageError(`no run with id ${id}`, 'list runs with: opsdeck runs');
          if (o.commands) {
            const commands = app.inv.runCommands(run.id);
            return {
              json: { ...run, commands },
              text: commands.length ? commands.map(commandText).join('\n') : `run ${run.id} ran no commands`,
            };
          }
          const steps = app.inv.runSteps(run.id);
          return {
            json: { ...run, steps },
            text:
              `run ${run.id}: ${run.command} ${run.instance ?? ''} — ${run.status}\n  by ${run.osUser} from ${run.origin} at ${run.startedAt}, ${run.durationMs ?? '?'} ms\n  params ${JSON.stringify(run.params)}\n` +
              (run.error ? `  error: ${run.error}\n` : '') +
              steps.map((s) => `  ${s.status.padEnd(11)} ${s.title}${s.error ? `: ${s.error}` : ''}`).join('\n'),
          };
        }
        if (o.commands) throw new UsageError('--commands needs a run id', 'opsdeck runs ID --commands (find the id with: opsdeck runs)');
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`invalid --limit ${o.limit}`, 'give a whole number, e.g. --limit 50');
        const runs = app.inv.listRuns(limit, o.instance);
        return {
          json: runs,
          text: runs.length
            ? table(
                runs.map((r) => [String(r.id), r.startedAt.replace('T', ' ').slice(0, 19), r.osUser, r.command, r.instance ?? '', r.status, r.error ?? '']),
                ['ID', 'STARTED', 'USER', 'COMMAND', 'INSTANCE', 'STATUS', 'ERROR'],
              )
            : 'no runs yet',
        };
      }),
    );
}
