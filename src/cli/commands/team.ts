import type { Command } from 'commander';
import { Inventory } from '../../../inventory/index.js';
import { inventoryUrlOf } from '../../../inventory/connect.js';
import { PG_SCHEMA, PG_USER_ROLE } from '../../../inventory/pg-migrations.js';
import { resolveHome } from '../../../inventory/home.js';
import { UsageError } from '../../core/errors.js';
import { globals, type Act } from '../action.js';
import { examples } from './help.js';

/**
 * team: the shared inventory on PostgreSQL. `team init` makes (or upgrades) its schema; it runs before
 * there is an inventory to open, so it does not go through act() (which opens one).
 */
export function register(program: Command, _act: Act): void {
  const team = program
    .command('team')
    .description('a team inventory on PostgreSQL, shared by several operators and jump boxes')
    .addHelpText('after', examples('opsdeck team init --inventory postgres://admin@db.example:5432/ops', 'opsdeck settings inventory postgres://me@db.example:5432/ops'));
  team
    .command('init')
    .description(`create or upgrade the inventory schema (${PG_SCHEMA}) and the role ${PG_USER_ROLE} operators are granted; run it as a role that may create schemas and roles`)
    .addHelpText('after', examples('opsdeck team init --inventory postgres://admin@db.example:5432/ops', 'opsdeck team init --inventory postgres://admin@db.example:5432/ops --json'))
    .action(async (_o: unknown, cmd: Command) => {
      const g = globals(cmd);
      const home = resolveHome(g.home);
      const url = inventoryUrlOf(home);
      if (!url) throw new UsageError('team init needs the PostgreSQL inventory to set up', 'give it: opsdeck team init --inventory postgres://ROLE@HOST:PORT/DB');
      const inv = new Inventory(home, { url, forInit: true });
      try {
        const { from, to } = inv.pg!.init();
        const doc = { inventory: inv.file, schema: PG_SCHEMA, role: PG_USER_ROLE, from, to, upToDate: from === to };
        if (g.json) process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
        else
          process.stdout.write(
            from === to
              ? `the inventory at ${inv.file} is up to date (schema ${PG_SCHEMA}, version ${to})\n`
              : `${from === 0 ? 'created' : 'upgraded'} the inventory at ${inv.file} (schema ${PG_SCHEMA}, version ${from} -> ${to})\n` +
                  `give each operator a login role of their own and: GRANT ${PG_USER_ROLE} TO ROLE;\n` +
                  `then, on each jump box: opsdeck settings inventory ${inv.file}\n`,
          );
      } finally {
        inv.close();
      }
    });
}
