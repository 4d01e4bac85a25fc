import { Option, type Command } from 'commander';
import { rollbackPlan, type RollbackResult } from '../../actions/rollback.js';
import type { Act } from '../action.js';
import { confirmChange } from '../prompt.js';
import { runPlan } from '../run.js';
import { examples } from './help.js';

interface RollbackOpts {
  to?: string;
  allowProtected?: boolean;
}

const describe = (r: RollbackResult) =>
  `${r.instance}: release ${r.from} -> ${r.to}${r.revision ? ` (${r.revision.slice(0, 10)})` : ''}; ${r.database ? `database loaded from backup ${r.database}, its state before is safety backup ${r.safetyBackup}` : 'database unchanged'}`;

/** rollback: a release-mode instance back to an earlier release in one switch. */
export function register(program: Command, act: Act): void {
  program
    .command('rollback <instance>')
    .description('switch a release-mode instance back to an earlier release in one step (its database too when the schema differs); undone on failure')
    .addHelpText(
      'after',
      examples(
        'opsdeck rollback shop-prod                                  # the release live before the current one',
        'opsdeck rollback shop-prod --to 20261130T001500Z-1a2b3c4d5e',
        'opsdeck --dry-run rollback shop-prod',
      ),
    )
    .option('--to <release>', 'the release to go back to (default: the one live before the current one)')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected instance without a typed confirmation'))
    .action(
      act(async (app, g, name: string, o: RollbackOpts) => {
        const plan = rollbackPlan(app, name, { to: o.to });
        await confirmChange(
          app,
          g,
          name,
          `roll ${name} back to ${o.to ? `release ${o.to}` : 'the release live before the current one'}? When the schema differs, its database goes back too.`,
          o.allowProtected,
        );
        return runPlan(app, g, plan, describe);
      }),
    );
}
