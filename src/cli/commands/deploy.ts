import { Option, type Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { maintenancePlan, updatePlan, type UpdateResult } from '../../actions/update.js';
import { clonePlan, type CloneOptions } from '../../actions/clone.js';
import type { Act } from '../action.js';
import { confirmChange } from '../prompt.js';
import { forEachInstance, runPlan, type ManyOpts } from '../run.js';
import { examples } from './help.js';

interface UpdateOpts extends ManyOpts {
  allowProtected?: boolean;
  lag?: string;
}

interface UpgradeOpts {
  to: string;
  allowProtected?: boolean;
}

interface CloneCliOpts extends CloneOptions {
  upgradeTo?: string;
  allowProtected?: boolean;
}

const describeUpdate = (r: UpdateResult) =>
  r.upToDate
    ? `${r.instance}: already at ${r.from.slice(0, 10)}, the newest commit old enough for --lag; nothing changed`
    : `${r.instance}: ${r.from.slice(0, 10)} -> ${r.to.slice(0, 10)} (${r.commits} commits)${r.release ? `; release ${r.release} is live` : ''}; backup ${r.backup} was taken first`;

/** maintenance, update, upgrade, clone: the commands that change what an instance runs. */
export function register(program: Command, act: Act): void {
  program
    .command('maintenance <instance> <mode>')
    .description('put an instance in maintenance (on) or take it out (off)')
    .addHelpText('after', examples('opsdeck maintenance shop-prod on', 'opsdeck maintenance shop-prod off'))
    .action(act(async (app, g, name: string, mode: string) => runPlan(app, g, maintenancePlan(app, name, mode), (r) => `${r.instance} is ${r.maintenance ? 'in maintenance' : 'out of maintenance'}`)));
  program
    .command('update [instance...]')
    .description('update instances to the tip of their branch: backup, maintenance, checkout, migrate, health check; undone on failure')
    .addHelpText(
      'after',
      examples(
        'opsdeck update shop-prod',
        'opsdeck update --env dev --yes',
        'opsdeck update --env prod --yes --allow-protected',
        'opsdeck update --env prod --lag 3d --yes --allow-protected   # what was on the branch 3 days ago',
      ),
    )
    .option('--all', 'every instance')
    .option('--env <env>', 'every instance of this environment')
    .option('--parallel <n>', 'how many at once (default 1)')
    .option('--lag <age>', 'deploy the newest commit of the branch at least this old (e.g. 3d, 12h), never an older one than is live')
    .addOption(new Option('--allow-protected', 'with --yes: allow protected instances without a typed confirmation'))
    .action(
      act(async (app, g, names: string[], o: UpdateOpts) => {
        if (names.length === 1 && !o.all && !o.env) {
          const plan = updatePlan(app, names[0], { lag: o.lag });
          await confirmChange(app, g, names[0], `update ${names[0]} to the tip of ${plan.state.ref}?`, o.allowProtected);
          return runPlan(app, g, plan, describeUpdate);
        }
        // Many at once is for cron: no questions, so --yes (and --allow-protected for protected ones).
        if (!g.yes && !g.dryRun) throw new UsageError('updating several instances asks no questions one by one', 'add --yes (and --allow-protected for protected environments)');
        return forEachInstance(
          app,
          g,
          o,
          names,
          (n) => {
            const inst = app.inv.requireInstance(n);
            if (app.inv.requireEnv(inst.env).protected && !o.allowProtected) throw new UsageError(`${n} is in a protected environment`, 'add --allow-protected');
            return updatePlan(app, n, { lag: o.lag });
          },
          describeUpdate,
          'update',
        );
      }),
    );
  program
    .command('upgrade <instance>')
    .description('upgrade an instance to a tag or revision (--to REF), safely as update does')
    .addHelpText('after', examples('opsdeck upgrade shop-prod --to v3.0', 'opsdeck --dry-run upgrade shop-prod --to v3.0'))
    .requiredOption('--to <ref>', 'the tag (or revision) to deploy')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected instance without a typed confirmation'))
    .action(
      act(async (app, g, name: string, o: UpgradeOpts) => {
        const plan = updatePlan(app, name, { to: o.to });
        await confirmChange(app, g, name, `upgrade ${name} to ${o.to}?`, o.allowProtected);
        return runPlan(app, g, plan, describeUpdate);
      }),
    );

  program
    .command('clone <source> <target>')
    .description("make the target a copy of the source (files and database), keeping the target's URL, credentials, hooks and local files")
    .addHelpText(
      'after',
      examples(
        'opsdeck clone shop-prod shop-uat',
        'opsdeck clone shop-prod shop-uat --data-only --as-of 7d',
        "opsdeck clone shop-prod shop-uat --data-only --redact redact.sql   # e.g. customer.email = 'user' || customer_id || '@example.invalid'",
        'opsdeck clone shop-prod shop-uat --upgrade-to v3.0   # try an upgrade on real data',
      ),
    )
    .option('--data-only', "copy the database only; the target's code stays")
    .option('--code-only', "copy the code tree only; the target's database stays")
    .option('--from-backup', "copy the source's newest backup instead of its live state")
    .option('--as-of <age>', 'copy the newest backup at least this old (e.g. 7d, 12h)')
    .option('--redact <file>', 'redaction rules (table.column = expression, or SQL statements ending with ;) run on the copy before it commits on the target')
    .option('--upgrade-to <ref>', 'then upgrade the copy to this tag (try an upgrade on real data)')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected target without a typed confirmation'))
    .action(
      act(async (app, g, source: string, target: string, o: CloneCliOpts) => {
        const plan = clonePlan(app, source, target, o);
        const upgrade = o.upgradeTo !== undefined ? updatePlan(app, target, { to: o.upgradeTo }) : undefined;
        await confirmChange(
          app,
          g,
          target,
          `make ${target} a copy of ${source}? Its current ${o.dataOnly ? 'database' : o.codeOnly ? 'code' : 'code and database'} will be replaced.`,
          o.allowProtected,
        );
        const cloned = await runPlan(
          app,
          g,
          plan,
          (r) => `${r.target} is now a copy of ${r.source}${r.backup ? ` as of backup ${r.backup}` : ''}${r.safetyBackup ? `; its previous state is safety backup ${r.safetyBackup}` : ''}`,
        );
        if (!upgrade) return cloned;
        const up = await runPlan(app, g, upgrade, describeUpdate);
        return { json: { clone: cloned.json, upgrade: up.json }, text: `${cloned.text}\n${up.text}` };
      }),
    );
}
