import { Option, type Command } from 'commander';
import { promotePlan } from '../../actions/promote.js';
import type { Act } from '../action.js';
import { confirmChange } from '../prompt.js';
import { runPlan } from '../run.js';
import { examples } from './help.js';

interface PromoteCliOpts {
  live?: boolean;
  allowProtected?: boolean;
}

/** promote: a staging instance becomes the production one. */
export function register(program: Command, act: Act): void {
  program
    .command('promote <staging>')
    .description(
      "make a staging instance the production one: its data brought up to date from production (newest backup, or --live), the two instances' environments and URLs swapped in the inventory, its promote hook run (DNS, proxy); the old production is kept, held, as the new one's staging",
    )
    .addHelpText(
      'after',
      examples(
        'opsdeck instance set shop-uat --staging-of shop-prod --hook promote="bin/point-dns-here"',
        'opsdeck --dry-run promote shop-uat',
        "opsdeck promote shop-uat            # from production's newest backup (its machine may be gone)",
        'opsdeck promote shop-uat --live     # production still answers: its data as it is now',
        'opsdeck instance set shop-prod --release-hold   # later: the old production may be refreshed or removed',
      ),
    )
    .option('--live', "copy production's data as it is now, host to host, instead of its newest backup")
    .addOption(new Option('--allow-protected', 'with --yes: go ahead on the protected production environment without a typed confirmation'))
    .action(
      act(async (app, g, name: string, o: PromoteCliOpts) => {
        const plan = promotePlan(app, name, { live: o.live });
        const prod = String(plan.params.production);
        await confirmChange(app, g, prod, `promote ${name} over ${prod}? ${name} takes ${prod}'s environment and URL; ${prod} is kept, held.`, o.allowProtected);
        return runPlan(
          app,
          g,
          plan,
          (r) =>
            `${r.production} is production now (${r.env}, ${r.url ?? 'no URL'})${r.backup ? `, with the data of backup ${r.backup}` : ''}; ${r.previous} is kept and held as its staging${r.safetyBackup ? `; ${r.production}'s previous data is safety backup ${r.safetyBackup}` : ''}`,
        );
      }),
    );
}
