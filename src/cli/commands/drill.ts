import type { Command } from 'commander';
import { OpsError } from '../../core/errors.js';
import { drillPlan, type DrillReport } from '../../actions/drill.js';
import { DRILL_HEADERS, drillCells, drillPassedWords } from '../../present/drills.js';
import type { Act } from '../action.js';
import { confirm } from '../prompt.js';
import { runPlan } from '../run.js';
import { table } from '../render.js';
import { examples } from './help.js';

interface DrillOpts {
  target: string;
  backup?: string;
}

/** drill, drills. */
export function register(program: Command, act: Act): void {
  program
    .command('drill <instance>')
    .description('restore drill: verify a backup, restore it onto a scratch instance, check it answers and matches, report RTO and RPO')
    .addHelpText('after', examples('opsdeck drill shop-prod --target shop-scratch', 'opsdeck drill shop-prod --target shop-scratch --backup 20261129T021500-ab12', 'opsdeck help drills'))
    .requiredOption('--target <scratch>', 'the scratch instance to restore onto (never a protected one)')
    .option('--backup <id>', 'which backup (default: the newest)')
    .action(
      act(async (app, g, name: string, o: DrillOpts) => {
        const plan = drillPlan(app, name, o);
        if (!g.dryRun) await confirm(`restore drill: replace ${o.target}'s code and database with backup ${plan.state.backup.id} of ${name}?`, { yes: g.yes });
        try {
          return await runPlan(app, g, plan, drillPassedWords);
        } catch (err) {
          // A failed drill has its report too: point at it.
          const rep = plan.state.report;
          if (rep && !rep.ok && err instanceof OpsError) throw new OpsError(err.message, err.exitCode, `the drill report is ${rep.file}${err.hint ? `; ${err.hint}` : ''}`);
          throw err;
        }
      }),
    );
  program
    .command('drills [instance]')
    .description('the restore drills run so far, newest first')
    .addHelpText('after', examples('opsdeck drills', 'opsdeck drills shop-prod --json'))
    .action(
      act(async (app, _g, name?: string) => {
        const list: DrillReport[] = app.inv.listDrills(name);
        return { json: list, text: list.length ? table(list.map(drillCells), DRILL_HEADERS) : 'no drills yet: opsdeck drill INSTANCE --target SCRATCH' };
      }),
    );
}
