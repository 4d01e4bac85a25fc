import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import type { ChangeRequest } from '../../../inventory/changes.js';
import { UsageError } from '../../core/errors.js';
import { FOUR_EYES } from '../../actions/team.js';
import type { Act } from '../action.js';
import { runChange } from '../run.js';
import { table } from '../render.js';
import { examples } from './help.js';

function changeId(id: string): number {
  if (!/^\d+$/.test(id)) throw new UsageError(`invalid change id ${JSON.stringify(id)}`, 'list them with: opsdeck change list');
  return Number(id);
}

function describe(c: ChangeRequest): string {
  return [
    `change ${c.id}: ${c.command} of ${c.instance ?? `every instance of ${c.env} (standing)`} on ${c.env}: ${c.status.toUpperCase()}`,
    `asked by ${c.requestedBy} (${c.osUser} on ${c.host}) at ${c.requestedAt}: ${c.why}`,
    ...(c.decidedBy ? [`${c.status === 'rejected' ? 'rejected' : 'approved'} by ${c.decidedBy} at ${c.decidedAt}${c.decisionWhy ? `: ${c.decisionWhy}` : ''}`] : []),
    'plan:',
    ...c.plan.map((s, i) => `  ${i + 1}. ${s}`),
    `back-out: ${c.backout}`,
    ...(c.argv.length ? [`command: opsdeck ${c.argv.join(' ')}`] : []),
    ...(c.runs.length ? [`runs: ${c.runs.join(', ')} (opsdeck runs ID)`] : []),
  ].join('\n');
}

/** change: four-eyes change requests on protected environments of a team inventory. */
export function register(program: Command, act: Act): void {
  const change = program
    .command('change')
    .description('change requests on protected environments (team inventory): another admin approves a change before it runs')
    .addHelpText(
      'after',
      examples(
        'opsdeck update shop-prod --yes --allow-protected --why "security fix 4.2.1"   # asks: prints change N',
        'opsdeck change approve 12   # another admin of prod',
        'opsdeck change run 12       # or the same command again',
      ),
    );
  change
    .command('list')
    .description('change requests, newest first (pending and approved ones; --all for every one)')
    .addHelpText('after', examples('opsdeck change list', 'opsdeck change list --all --instance shop-prod'))
    .option('--all', 'rejected, run and expired ones too')
    .option('--instance <name>', 'only those of this instance')
    .action(
      act(async (app, _g, o: { all?: boolean; instance?: string }) => {
        const list = app.inv.changes.list({ instance: o.instance, open: !o.all });
        return {
          json: list,
          text: list.length
            ? table(
                list.map((c) => [String(c.id), c.status, c.command, c.instance ?? `${c.env} (standing)`, c.requestedBy, c.decidedBy ?? '', c.why]),
                ['ID', 'STATUS', 'COMMAND', 'INSTANCE', 'ASKED BY', 'DECIDED BY', 'WHY'],
              )
            : 'no change requests',
        };
      }),
    );
  change
    .command('show <id>')
    .description('a change request: its plan, back-out, who asked and why, who decided, its runs')
    .addHelpText('after', examples('opsdeck change show 12', 'opsdeck change show 12 --json'))
    .action(
      act(async (app, _g, id: string) => {
        const c = app.inv.changes.require(changeId(id));
        return { json: c, text: describe(c) };
      }),
    );
  change
    .command('approve <id>')
    .description('approve a change another role asked for (admins of its environment); it may then run within the window (24 h)')
    .addHelpText('after', examples('opsdeck change approve 12', 'opsdeck change approve 12 --why "checked the plan with the vendor"   # a note with it'))
    .action(
      act(async (app, g, id: string) => {
        const c = app.inv.changes.require(changeId(id));
        return runChange(app, g, 'change approve', { change: c.id, instance: c.instance, env: c.env, why: g.why }, () => {
          const d = app.inv.changes.decide(c.id, true, g.why ?? null);
          return { json: { change: d }, text: `change ${d.id} approved: ${d.standing ? `${d.command} may run on ${d.env} until it is rejected` : `run it with: opsdeck change run ${d.id}`}` };
        });
      }),
    );
  change
    .command('reject <id>')
    .description('reject a change request (or end a standing change); says why')
    .addHelpText('after', examples('opsdeck change reject 12 --why "not during the sale"'))
    .action(
      act(async (app, g, id: string) => {
        const why = g.why;
        if (!why) throw new UsageError('a rejection says why', 'add --why "the reason"');
        const c = app.inv.changes.require(changeId(id));
        return runChange(app, g, 'change reject', { change: c.id, instance: c.instance, env: c.env, why }, () => {
          const d = app.inv.changes.decide(c.id, false, why);
          return { json: { change: d }, text: `change ${d.id} rejected: ${why}` };
        });
      }),
    );
  change
    .command('standing <command>')
    .description(`ask for a standing change: COMMAND (${[...FOUR_EYES].join(', ')}) on every instance of a protected environment, from cron with --yes --allow-protected, once approved`)
    .requiredOption('--env <env>', 'the protected environment')
    .addHelpText('after', examples('opsdeck change standing update --env prod --why "nightly deploy of the release branch"'))
    .action(
      act(async (app, g, command: string, o: { env: string }) => {
        if (!FOUR_EYES.has(command))
          throw new UsageError(`${command} needs no change request`, `standing changes are for: ${[...FOUR_EYES].join(', ')} (the rest is an operator's right, see opsdeck team who)`);
        if (!g.why) throw new UsageError('a change request says why', 'add --why "what and why"');
        const env = app.inv.requireEnv(o.env);
        if (!env.protected) throw new UsageError(`environment ${env.name} is not protected: its changes need no approval`);
        const why = g.why;
        return runChange(app, g, 'change standing', { command, env: env.name, why }, () => {
          const c = app.inv.changes.request({
            command,
            instance: null,
            env: env.name,
            params: {},
            argv: [],
            plan: [`${command} of any instance of ${env.name}, each as its own run with its own plan`],
            backout: 'each run undoes itself on failure; reject this change to end it',
            why,
            standing: true,
          });
          return { json: { change: c }, text: `standing change ${c.id} asked for: ${command} on ${env.name}; another admin approves it: opsdeck change approve ${c.id}` };
        });
      }),
    );
  change
    .command('run <id>')
    .description('run an approved change: the command line that asked for it, as you, now')
    .addHelpText('after', examples('opsdeck change run 12', 'opsdeck change run 12 --yes --allow-protected   # from a script'))
    .action(
      act(async (app, g, id: string) => {
        const c = app.inv.changes.require(changeId(id));
        if (c.standing) throw new UsageError(`change ${c.id} is a standing change`, `run the command itself: opsdeck ${c.command} ... --yes --allow-protected`);
        if (c.status !== 'approved')
          throw new UsageError(
            `change ${c.id} is ${c.status}${c.status === 'expired' ? ': its approval is older than the window' : ''}, not approved`,
            c.status === 'pending' ? `another admin of ${c.env} approves it: opsdeck change approve ${c.id}` : 'ask again: the same command with --why',
          );
        // The same program, the same command line: it finds this approval and uses it.
        const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], '--home', app.home, ...(g.json ? ['--json'] : []), ...c.argv], { stdio: 'inherit' });
        return { json: undefined, text: '', exitCode: r.status ?? 1 };
      }),
    );
}
