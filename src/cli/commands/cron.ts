import type { Command } from 'commander';
import type { Act } from '../action.js';

/** cron: the crontab lines of the usual unattended jobs. */
export function register(program: Command, act: Act): void {
  program
    .command('cron')
    .description('print crontab lines for the usual unattended jobs, for review (install with crontab -e)')
    .action(
      act(async (app) => {
        const bin = process.argv[1] && process.argv[1].endsWith('opsdeck') ? process.argv[1] : 'opsdeck';
        const o = `${bin} --home ${app.home}`;
        const lines = [
          `# opsdeck jobs for ${app.home}: review, then add with crontab -e as ${process.env.USER ?? 'this user'}.`,
          '# Each job runs with --yes and no terminal: it prints a summary line and errors only, exits',
          '# non-zero on failure, alerts the channels of "opsdeck notify list", and never runs twice on',
          '# one instance at once (a second run exits 3).',
          '# nightly backup of every instance, two at a time',
          `15 2 * * *  ${o} backup --all --parallel 2 --yes`,
          '# then drop what the retention policy does not keep',
          `45 3 * * *  ${o} backups prune --yes`,
          '# hourly file-integrity check, and an alert for any instance without a recent backup',
          `5 * * * *   ${o} watch --all --yes`,
          `35 * * * *  ${o} backups check --yes`,
          '# weekly restore drill: put the instance to prove and a scratch instance (not protected) in place',
          `30 4 * * 0  ${o} drill INSTANCE --target SCRATCH --yes`,
        ];
        return { json: { lines }, text: lines.join('\n') };
      }),
    );
}
