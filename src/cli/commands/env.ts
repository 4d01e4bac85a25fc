import type { Command } from 'commander';
import { checkName } from '../../../inventory/validate.js';
import { DEFAULT_POLICY, checkPolicy } from '../../core/retention.js';
import { parseAge } from '../../core/format.js';
import { DEFAULT_MAX_BACKUP_AGE } from '../../../inventory/index.js';
import type { Act } from '../action.js';
import { anyKeep, keepOptions, policyOf, type KeepOpts } from '../options.js';
import { runChange } from '../run.js';
import { table } from '../render.js';
import { examples } from './help.js';

interface EnvAddOpts {
  protected?: boolean;
}

interface EnvSetOpts extends KeepOpts {
  defaultRetention?: boolean;
  maxBackupAge?: string;
}

export function register(program: Command, act: Act): void {
  const env = program
    .command('env')
    .description('environments (dev, uat, preprod, prod)')
    .addHelpText('after', examples('opsdeck env add prod --protected', 'opsdeck env set prod --keep-daily 7 --max-backup-age 26h', 'opsdeck env list'));
  env
    .command('add <name>')
    .description('add an environment')
    .addHelpText('after', examples('opsdeck env add dev', 'opsdeck env add prod --protected   # changes need the typed name, or --yes --allow-protected'))
    .option('--protected', 'changes need a typed confirmation (or --yes --allow-protected)')
    .action(
      act(async (app, g, name: string, o: EnvAddOpts) => {
        checkName('environment', name);
        return runChange(app, g, 'env add', { env: name, protected: !!o.protected }, () => {
          const e = app.inv.addEnv(name, !!o.protected);
          return { json: e, text: `environment ${e.name} added${e.protected ? ' (protected)' : ''}` };
        });
      }),
    );
  keepOptions(
    env
      .command('set <name>')
      .description("set an environment's retention policy (backups prune uses it)")
      .addHelpText(
        'after',
        examples('opsdeck env set prod --keep-daily 7 --keep-weekly 4', 'opsdeck env set prod --max-backup-age 26h   # backups check alerts past it', 'opsdeck env set dev --default-retention'),
      ),
  )
    .option('--default-retention', 'go back to the default policy')
    .option('--max-backup-age <age>', `backups check alerts when the newest good backup is older (e.g. 26h, 2d; default ${DEFAULT_MAX_BACKUP_AGE})`)
    .action(
      act(async (app, g, name: string, o: EnvSetOpts) => {
        app.inv.requireEnv(name);
        const age = o.maxBackupAge;
        if (age !== undefined) parseAge(age);
        // Only the age limit given: the retention policy stays as it is.
        if (age !== undefined && !anyKeep(o) && !o.defaultRetention) {
          return runChange(app, g, 'env set', { env: name, maxBackupAge: age }, () => {
            app.inv.setMaxBackupAge(name, age);
            return { json: { name, maxBackupAge: age }, text: `environment ${name}: backups older than ${age} are alerted` };
          });
        }
        const policy = o.defaultRetention ? null : checkPolicy(policyOf(o), app.inv.retentionOf(name) ?? DEFAULT_POLICY);
        return runChange(app, g, 'env set', { env: name, maxBackupAge: age, retention: policy ?? 'default' }, () => {
          if (age !== undefined) app.inv.setMaxBackupAge(name, age);
          app.inv.setRetention(name, policy);
          const p = policy ?? DEFAULT_POLICY;
          return { json: { name, retention: p }, text: `environment ${name} keeps ${p.daily} daily, ${p.weekly} weekly, ${p.monthly} monthly, ${p.yearly} yearly backups` };
        });
      }),
    );
  env
    .command('list')
    .description('list environments')
    .addHelpText('after', examples('opsdeck env list', 'opsdeck env list --json'))
    .action(
      act(async (app) => {
        const envs = app.inv.listEnvs();
        return {
          json: envs,
          text: envs.length
            ? table(
                envs.map((e) => [e.name, e.protected ? 'protected' : '']),
                ['NAME', ''],
              )
            : 'no environments yet: opsdeck env add NAME',
        };
      }),
    );
}
