import { Option, type Command } from 'commander';
import { refreshPlan } from '../../actions/refresh.js';
import type { Act } from '../action.js';
import { confirmChange } from '../prompt.js';
import { runPlan } from '../run.js';
import { examples } from './help.js';

interface RefreshCliOpts {
  fromBackup?: boolean;
  asOf?: string;
  /** A file, or false for --no-redact. */
  redact?: string | false;
  allowProtected?: boolean;
}

/** refresh: a staging or dev instance gets the data of the instance it relates to. */
export function register(program: Command, act: Act): void {
  program
    .command('refresh <instance>')
    .description(
      'copy the data of the instance this one is the staging or dev copy of (instance set --staging-of / --dev-of) onto it, redacted with its stored rules (instance set --redact); its code stays (clone --data-only)',
    )
    .addHelpText(
      'after',
      examples(
        'opsdeck instance set shop-uat --staging-of shop-prod --redact redact.sql',
        'opsdeck refresh shop-uat',
        'opsdeck refresh shop-uat --from-backup   # production is not read at all',
        'opsdeck --dry-run refresh shop-uat',
      ),
    )
    .option('--from-backup', "copy the source's newest backup instead of its live state")
    .option('--as-of <age>', 'copy the newest backup at least this old (e.g. 7d, 12h)')
    .option('--redact <file>', "other redaction rules than the instance's stored ones, for this run")
    .option('--no-redact', 'copy the data unredacted, whatever rules are stored')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected target without a typed confirmation'))
    .action(
      act(async (app, g, name: string, o: RefreshCliOpts) => {
        const plan = refreshPlan(app, name, { fromBackup: o.fromBackup, asOf: o.asOf, redact: typeof o.redact === 'string' ? o.redact : undefined, noRedact: o.redact === false });
        const source = String(plan.params.source);
        await confirmChange(app, g, name, `replace the database of ${name} with ${source}'s${plan.params.redact ? ', redacted' : ''}? Its code stays.`, o.allowProtected);
        return runPlan(
          app,
          g,
          plan,
          (r) =>
            `${r.target} refreshed with ${r.source}'s data${r.backup ? ` as of backup ${r.backup}` : ''}${r.redacted ? `, redacted (${r.redacted})` : ', unredacted'}${r.safetyBackup ? `; its previous state is safety backup ${r.safetyBackup}` : ''}`,
        );
      }),
    );
}
