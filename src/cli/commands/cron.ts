import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { EXIT } from '../../core/errors.js';
import { quoteArg } from '../../remote/quote.js';
import type { Act } from '../action.js';
import { examples } from './help.js';

interface CronOpts {
  check?: boolean;
}

/** A job: when, the opsdeck arguments, and what it is for; a template is printed commented out. */
interface Job {
  when: string;
  args: string[];
  comment: string;
  template?: boolean;
}

const JOBS: Job[] = [
  { when: '15 2 * * *', args: ['backup', '--all', '--parallel', '2', '--yes'], comment: 'nightly backup of every instance, two at a time' },
  { when: '45 3 * * *', args: ['backups', 'prune', '--yes'], comment: "then drop what the retention policy does not keep: the store's, and each copy store's own (settings storeCopyRetention)" },
  { when: '5 * * * *', args: ['watch', '--all', '--yes'], comment: 'hourly file-integrity check, and an alert for any instance without a recent backup' },
  { when: '30 3 * * *', args: ['mirror', 'sync', '--all', '--yes'], comment: 'delayed mirrors: each brought to the newest backup of its source at least its lag old (none: nothing to do)' },
  { when: '35 * * * *', args: ['backups', 'check', '--yes'], comment: '' },
  {
    when: '15 5 * * *',
    args: ['backups', 'check', '--read-data-subset', 'auto', '--max-duration', '30m', '--yes'],
    comment: 'daily integrity check of the store: one part of its data read back per night, the whole store once per cycle',
  },
  {
    when: '30 4 * * 0',
    args: ['drill', 'INSTANCE', '--target', 'SCRATCH', '--yes'],
    comment: 'weekly restore drill: put the instance to prove and a scratch instance (not protected) in place, then uncomment',
    template: true,
  },
  {
    when: '0 6 * * 1-5',
    args: ['update', '--env', 'ENV', '--lag', '3d', '--yes'],
    comment: 'automatic updates, three days behind the branch (what has been out that long): put the environment in place, then uncomment',
    template: true,
  },
];

/** The copy stores' job: on when settings storeCopies names any, else a template to uncomment once it does. */
function withCopies(jobs: Job[], copies: boolean): Job[] {
  const copy: Job = {
    when: '15 4 * * *',
    args: ['backups', 'copy', '--yes'],
    comment: copies ? 'then whatever the copy stores lack (each backup is copied as it is taken)' : 'copy stores: set opsdeck settings storeCopies REPO,..., then uncomment',
    template: !copies,
  };
  const at = jobs.findIndex((j) => j.args[1] === 'prune');
  return [...jobs.slice(0, at + 1), copy, ...jobs.slice(at + 1)];
}

/** The directory holding an executable of that name on this PATH, if any. */
function whereIs(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return dir;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * cron runs jobs with a bare environment (PATH=/usr/bin:/bin, no OPSDECK_HOME): the lines a crontab
 * needs above the jobs, with the directories node and restic are found in now.
 */
function cronEnv(home: string): { vars: Record<string, string>; missing: string[] } {
  const restic = whereIs('restic');
  const dirs = [dirname(process.execPath), restic, '/usr/local/bin', '/usr/bin', '/bin'].filter((d): d is string => !!d);
  return { vars: { PATH: [...new Set(dirs)].join(':'), OPSDECK_HOME: home }, missing: restic ? [] : ['restic'] };
}

/** The opsdeck the jobs run: the one running now when it is opsdeck's, else from PATH. */
const binary = () => (process.argv[1]?.endsWith('opsdeck') ? process.argv[1] : 'opsdeck');

const jobLine = (bin: string, j: Job) => [bin, ...j.args].map(quoteArg).join(' ');

/** Runs one job's command as cron would (env -i with only the crontab's lines) with --dry-run. */
function checkJob(vars: Record<string, string>, bin: string, j: Job): { ok: boolean; why: string } {
  const envArgs = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
  // Through sh -c, as cron does, so a command not found on that PATH fails as it would there.
  const r = spawnSync('/usr/bin/env', ['-i', ...envArgs, 'sh', '-c', `${jobLine(bin, j)} --dry-run`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  if (r.status === 0) return { ok: true, why: '' };
  const said = (r.stderr || r.stdout || '').trim().split('\n').filter(Boolean);
  const why = said.length ? said.slice(-2).join(' / ') : r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
  return { ok: false, why: `exit ${r.status ?? r.signal}: ${why}` };
}

/** cron: the crontab lines of the usual unattended jobs, and --check to try them as cron would run them. */
export function register(program: Command, act: Act): void {
  program
    .command('cron')
    .description(
      "print crontab lines for the usual unattended jobs, with the PATH and OPSDECK_HOME they need, for review (install with crontab -e); --check runs each in cron's bare environment with --dry-run",
    )
    .option('--check', "run each job's command as cron would (env -i, only the crontab's PATH= and OPSDECK_HOME= lines) with --dry-run, and say which would fail and why (exit 1 if any)")
    .addHelpText('after', examples('opsdeck cron   # review the lines', 'opsdeck cron --check   # would they run under cron?', '(crontab -l; opsdeck cron) | crontab -   # add them to your crontab'))
    .action(
      act(async (app, _g, o: CronOpts) => {
        const bin = binary();
        const { vars, missing } = cronEnv(app.home);
        const all = withCopies(JOBS, app.store.copies.length > 0);
        const jobs = all.filter((j) => !j.template);
        if (o.check) {
          const results = [
            ...missing.map((m) => ({ job: m, ok: false, why: `${m} is not on this PATH (${process.env.PATH ?? ''}): install it, or run opsdeck cron from a shell that finds it` })),
            ...jobs.map((j) => ({ job: `${j.when}  ${j.args.join(' ')}`, ...checkJob(vars, bin, j) })),
          ];
          const bad = results.filter((r) => !r.ok);
          const text = [
            `Each job run as cron would (env -i ${Object.entries(vars)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}) with --dry-run:`,
            ...results.map((r) => (r.ok ? `ok     ${r.job}` : `FAILS  ${r.job}\n         ${r.why}`)),
            bad.length ? `${bad.length} of ${results.length} would fail.` : `all ${results.length} would run.`,
          ].join('\n');
          return { json: { env: vars, results }, text, exitCode: bad.length ? EXIT.FAILED : EXIT.OK };
        }
        const lines = [
          `# opsdeck jobs for ${app.home}: review, then add with crontab -e as ${process.env.USER ?? 'this user'}.`,
          '# Each job runs with --yes and no terminal: it prints a summary line and errors only, exits',
          '# non-zero on failure, alerts the channels of "opsdeck notify list", and never runs twice on',
          '# one instance at once (a second run exits 3). cron gives jobs a bare environment: these lines',
          '# give them the node and restic found now, and this home. Try them with: opsdeck cron --check',
          ...missing.map((m) => `# WARNING: ${m} is not on this PATH: install it, or the jobs will fail`),
          ...Object.entries(vars).map(([k, v]) => `${k}=${v}`),
          ...all.flatMap((j) => [...(j.comment ? [`# ${j.comment}`] : []), `${j.template ? '# ' : ''}${j.when.padEnd(11)} ${jobLine(bin, j)}`]),
        ];
        return { json: { env: vars, lines }, text: lines.join('\n') };
      }),
    );
}
