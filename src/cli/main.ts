import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT } from '../core/errors.js';
import { makeAct, reportError, type Act } from './action.js';
import { useInventoryFlags } from './options.js';
import * as backup from './commands/backup.js';
import * as change from './commands/change.js';
import * as completion from './commands/completion.js';
import * as cron from './commands/cron.js';
import * as deploy from './commands/deploy.js';
import * as drill from './commands/drill.js';
import * as env from './commands/env.js';
import * as health from './commands/health.js';
import * as help from './commands/help.js';
import * as host from './commands/host.js';
import * as instance from './commands/instance.js';
import * as mirror from './commands/mirror.js';
import * as promote from './commands/promote.js';
import * as refresh from './commands/refresh.js';
import * as inventory from './commands/inventory.js';
import * as notify from './commands/notify.js';
import * as restore from './commands/restore.js';
import * as rollback from './commands/rollback.js';
import * as runs from './commands/runs.js';
import * as settings from './commands/settings.js';
import * as store from './commands/store.js';
import * as team from './commands/team.js';
import * as unlock from './commands/unlock.js';
import * as watch from './commands/watch.js';

// Kept here for the tests that import it from the CLI's entry.
export { parseMetrics } from './options.js';

/** The command groups, in the order --help lists them. */
const GROUPS: { register(program: Command, act: Act): void }[] = [
  env,
  host,
  instance,
  deploy,
  refresh,
  promote,
  rollback,
  backup,
  store,
  restore,
  mirror,
  watch,
  cron,
  health,
  drill,
  notify,
  inventory,
  settings,
  unlock,
  runs,
  team,
  change,
  completion,
  help,
];

/**
 * opsdeck's version, from its package.json: the nearest one above this module (dist/src/cli/ when run
 * from tsc's output, dist/ from the bundle). bin/opsdeck answers a bare --version itself; this one
 * answers it after global options (opsdeck --home X --version).
 */
function version(): string {
  for (let up = '../'; up.length < 16; up += '../') {
    try {
      const pkg = JSON.parse(readFileSync(new URL(`${up}package.json`, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'opsdeck' && pkg.version) return pkg.version;
    } catch {
      // not here: one folder up
    }
  }
  return 'unknown';
}

/** The program with its global options and every command; each command's exit code goes to `done`. */
export function buildProgram(done: (exitCode: number) => void = () => {}): Command {
  const program = new Command('opsdeck')
    .description(
      'Terminal operations console: inventory, verified backups and safe restores of web-application instances over SSH.\nRun with no command on a terminal to open the full-screen console.',
    )
    .option('--home <dir>', 'opsdeck home: inventory, store, keys (default $OPSDECK_HOME or ~/.local/share/opsdeck)')
    .option('--yes', 'answer every confirmation (for cron); --yes on a terminal-less run never waits')
    .option('--json', 'print one JSON document (the result) on stdout; progress goes to stderr')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--inventory <url>', 'a team inventory: postgres://ROLE@HOST:PORT/DB (default $OPSDECK_INVENTORY, the setting inventory, else SQLite in the home)')
    .option('--inventory-password-file <file>', 'the password of the inventory role, in a file of mode 600 (else $OPSDECK_INVENTORY_PASSWORD, ~/.pgpass or the prompt)')
    .option('--why <text>', 'team inventory: why this change to a protected environment; asks for it as a change request (opsdeck change)')
    .option('-v, --verbose', 'print every command opsdeck runs on stderr: where, the line to run it again by hand (secrets as ***), exit status, time, bytes')
    .version(version(), '-V, --version', 'print the version of opsdeck')
    .showHelpAfterError('(run opsdeck --help for usage)')
    .exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  // The inventory's place and password, before any command opens it.
  program.hook('preAction', (_p, cmd) => useInventoryFlags(cmd.optsWithGlobals()));
  const act = makeAct(done);
  for (const group of GROUPS) group.register(program, act);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let exitCode: number = EXIT.OK;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.OK;
      return EXIT.USAGE;
    }
    return reportError(err, {});
  }
  return exitCode;
}
