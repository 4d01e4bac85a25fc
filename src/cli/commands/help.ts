import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { DEFAULT_POLICY, SAFETY_DAYS } from '../../core/retention.js';
import { DEFAULT_MAX_BACKUP_AGE } from '../../../inventory/index.js';
import type { Act } from '../action.js';

/** The Examples: block each command's --help ends with (a test walks the tree for it). */
export const examples = (...lines: string[]): string => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`;

// Concepts that span commands, in the README's words: when one changes, change both.
const P = DEFAULT_POLICY;
export const TOPICS: Record<string, { title: string; text: string }> = {
  'exit-codes': {
    title: 'what each exit code means, for scripts and cron',
    text: `Exit codes you can script:
  0  done
  1  failed (rolled back where it could be)
  2  bad usage or input: nothing was changed
  3  the instance is locked by another run (the message says whose: command, run, user, host, pid,
     since; opsdeck unlock releases a lock whose run is gone)
Without a terminal and without --yes, a command that would ask exits 2 instead of waiting.
A run over several instances (--all, --env) goes on past failures and exits 1 if any failed.`,
  },
  protected: {
    title: 'protected environments: what they guard and how to get past the guard',
    text: `An environment added with --protected (opsdeck env add prod --protected) guards its instances:
a restore, clone, update, upgrade or remove that would change one needs the instance's name typed
at a terminal, or --yes --allow-protected when nobody is at one (cron).
A restore drill never restores onto a protected instance: its scratch target must be in an
unprotected environment (the console's picker shows protected ones dimmed, with the reason).
Examples:
  opsdeck env add prod --protected
  opsdeck update --env prod --yes --allow-protected`,
  },
  retention: {
    title: 'which backups prune keeps',
    text: `Retention keeps, per instance, the newest backup of each of the last N days, then N weeks before
those, months before those, years before those (defaults: ${P.daily} daily, ${P.weekly} weekly, ${P.monthly} monthly,
${P.yearly} yearly: they reach back about a month, six months and a year); the newest backup always
stays, and safety backups are kept ${SAFETY_DAYS} days.
Set it per environment, or for one prune with the same flags; --dry-run lists what would go:
  opsdeck env set prod --keep-daily 7 --max-backup-age 26h
  opsdeck backups prune --dry-run
opsdeck backups check exits 1 (and alerts) when an instance's newest good backup is older than its
environment's limit (default ${DEFAULT_MAX_BACKUP_AGE}).`,
  },
  drills: {
    title: 'restore drills: proving a backup restores, RTO and RPO',
    text: `A restore drill proves a backup restores: it verifies the backup against its manifest, restores it
onto a scratch instance (never a protected one), checks the site answers and the data matches,
and reports RTO (how long the restore took) and RPO (how old the restored data was), as Markdown
in the opsdeck home. A drill that fails is reported too (what failed, no RTO), and with --yes it
alerts.
  opsdeck drill shop-prod --target shop-scratch     # the newest backup; --backup ID for another
  opsdeck drills                                    # the drills run so far
In the console: D on an instance (pick a backup, a scratch target, read the steps, confirm), L for
the reports.`,
  },
};

/** Other words people type for a topic. */
const ALIASES: Record<string, string> = {
  'exit-code': 'exit-codes',
  exit: 'exit-codes',
  'protected-environments': 'protected',
  'protected-environment': 'protected',
  prune: 'retention',
  rpo: 'drills',
  rto: 'drills',
};

const topicList = () =>
  Object.entries(TOPICS)
    .map(([k, t]) => `  ${k.padEnd(12)} ${t.title}`)
    .join('\n');

/** help [COMMAND... | TOPIC]: a command's help, or a concept. */
export function register(program: Command, _act?: Act): void {
  program
    .command('help [words...]')
    .description('help on a command (opsdeck help backup), or on a topic: exit-codes, protected, retention, drills')
    .addHelpText('after', `\nTopics:\n${topicList()}\n${examples('opsdeck help exit-codes', 'opsdeck help backups prune', 'opsdeck help protected')}`)
    .action((words: string[]) => {
      if (!words.length) {
        program.outputHelp();
        process.stdout.write(`\nTopics (opsdeck help TOPIC):\n${topicList()}\n`);
        return;
      }
      // A topic's name wins over a command's (drills is both): the command's help is --help.
      const key = words.join('-');
      const topic = TOPICS[key] ?? TOPICS[ALIASES[key] ?? ''];
      if (topic) {
        process.stdout.write(`${topic.text}\n`);
        return;
      }
      const cmd = findCommand(program, words);
      if (!cmd) throw new UsageError(`no command or topic ${JSON.stringify(words.join(' '))}`, `the topics: ${Object.keys(TOPICS).join(', ')}; the commands: opsdeck --help`);
      cmd.outputHelp();
    });
}

/** The command a path of words names (backups prune), or undefined. */
function findCommand(program: Command, words: string[]): Command | undefined {
  let cmd: Command | undefined = program;
  for (const w of words) {
    cmd = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
    if (!cmd) return undefined;
  }
  return cmd;
}
