import { Option, type Command } from 'commander';
import { age } from '../../core/format.js';
import { restorePlan } from '../../actions/restore.js';
import { recoverPlan, recoverSummary } from '../../actions/recover.js';
import type { Act } from '../action.js';
import { confirmChange } from '../prompt.js';
import { runPlan } from '../run.js';
import { examples } from './help.js';

interface RestoreOpts {
  backup?: string;
  to?: string;
  allowProtected?: boolean;
  allowFailedBackup?: boolean;
}

/** restore, recover. */
export function register(program: Command, act: Act): void {
  program
    .command('restore <instance>')
    .description('restore a backup of an instance onto it or onto another (--to); a safety backup is taken first')
    .addHelpText('after', examples('opsdeck restore shop-prod', 'opsdeck restore shop-prod --backup 20261129T021500-ab12', 'opsdeck restore shop-prod --to shop-uat'))
    .option('--backup <id>', 'which backup (default: the newest that did not fail verification)')
    .option('--to <instance>', 'restore onto this instance instead')
    .option('--allow-failed-backup', 'with --backup: restore it even though its last verification failed')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected target without a typed confirmation'))
    .action(
      act(async (app, g, name: string, o: RestoreOpts) => {
        const plan = restorePlan(app, name, o);
        const target = plan.state.target;
        await confirmChange(
          app,
          g,
          target.name,
          `restore backup ${plan.state.from.backup.id} of ${name} (${age(plan.state.from.backup.createdAt)}) onto ${target.name} at ${target.host}:${target.path}? Its code and database will be replaced.`,
          o.allowProtected,
        );
        return runPlan(app, g, plan, (r) => `restored backup ${r.backup} onto ${r.target}${r.safetyBackup ? ` (its previous state is safety backup ${r.safetyBackup})` : ''}`);
      }),
    );

  program
    .command('recover <instance>')
    .description(
      'put right an instance a restore, clone or drill left half-restored (killed, crashed, or its undo could not reach the host): finishes the run if its code tree was already swapped in, otherwise undoes it from what it recorded (previous code tree, safety backup); in release mode also undoes a conversion a killed run left half-done, and finishes or undoes a restore cut short from what is on the host (shared/, the link)',
    )
    .addHelpText('after', examples('opsdeck recover shop-prod', 'opsdeck health shop-prod   # says HALF-RESTORED until it is recovered'))
    .action(
      act(async (app, g, name: string) =>
        // No confirmation: it only completes or takes back what a run that was confirmed started.
        runPlan(app, g, await recoverPlan(app, name), recoverSummary),
      ),
    );
}
