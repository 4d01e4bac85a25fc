import type { Command } from 'commander';
import { Inventory } from '../../../inventory/index.js';
import { inventoryUrlOf } from '../../../inventory/connect.js';
import { PG_SCHEMA } from '../../../inventory/pg-migrations.js';
import { resolveHome } from '../../../inventory/home.js';
import { UsageError } from '../../core/errors.js';
import { LEVELS, type Level } from '../../../inventory/rights.js';
import { runChange } from '../run.js';
import { table } from '../render.js';
import { globals, type Act } from '../action.js';
import { examples } from './help.js';

/**
 * team: the shared inventory on PostgreSQL. `team init` makes (or upgrades) its schema; it runs before
 * there is an inventory to open, so it does not go through act() (which opens one).
 */
export function register(program: Command, act: Act): void {
  const team = program
    .command('team')
    .description('a team inventory on PostgreSQL, shared by several operators and jump boxes')
    .addHelpText('after', examples('opsdeck team init --inventory postgres://admin@db.example:5432/ops', 'opsdeck settings inventory postgres://me@db.example:5432/ops'));
  team
    .command('init')
    .description(
      `create or upgrade the inventory schema (${PG_SCHEMA}) and its two group roles, named after the database: opsdeck_DB_user (operators) and opsdeck_DB_admin (team admins); run it as a role that may create schemas and roles`,
    )
    .addHelpText('after', examples('opsdeck team init --inventory postgres://admin@db.example:5432/ops', 'opsdeck team init --inventory postgres://admin@db.example:5432/ops --json'))
    .action(async (_o: unknown, cmd: Command) => {
      const g = globals(cmd);
      const home = resolveHome(g.home);
      const url = inventoryUrlOf(home);
      if (!url) throw new UsageError('team init needs the PostgreSQL inventory to set up', 'give it: opsdeck team init --inventory postgres://ROLE@HOST:PORT/DB');
      const inv = new Inventory(home, { url, forInit: true });
      try {
        const { from, to, roles } = inv.pg!.init();
        const doc = { inventory: inv.file, schema: PG_SCHEMA, role: roles.user, adminRole: roles.admin, from, to, upToDate: from === to };
        if (g.json) process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
        else
          process.stdout.write(
            from === to
              ? `the inventory at ${inv.file} is up to date (schema ${PG_SCHEMA}, version ${to})\n`
              : `${from === 0 ? 'created' : 'upgraded'} the inventory at ${inv.file} (schema ${PG_SCHEMA}, version ${from} -> ${to})\n` +
                  `give each operator a login role of their own and: GRANT ${roles.user} TO ROLE; (a team admin: GRANT ${roles.admin} TO ROLE;)\n` +
                  `then, on each jump box: opsdeck settings inventory ${inv.file}\n`,
          );
      } finally {
        inv.close();
      }
    });
  team
    .command('grant <role>')
    .description('give a PostgreSQL role a level on an environment: viewer (read), operator (backup, watch, drill, restore onto unprotected instances), admin (everything there); team admins only')
    .requiredOption('--env <env>', 'the environment')
    .requiredOption('--as <level>', LEVELS.join(' | '))
    .addHelpText('after', examples('opsdeck team grant alice --env prod --as viewer', 'opsdeck team grant oncall --env staging --as operator   # a group role: each member gets it'))
    .action(
      act(async (app, g, role: string, o: { env: string; as: string }) => {
        requireTeam(app.inv.rights.team);
        if (!(LEVELS as readonly string[]).includes(o.as)) throw new UsageError(`invalid --as ${o.as}`, `one of: ${LEVELS.join(', ')}`);
        checkRole(role);
        app.inv.requireEnv(o.env);
        const level = o.as as Level;
        return runChange(app, g, 'team grant', { role, env: o.env, level }, () => {
          app.inv.rights.grant(role, o.env, level);
          return { json: { role, env: o.env, level }, text: `${role} is ${level} on ${o.env}` };
        });
      }),
    );
  team
    .command('revoke <role>')
    .description("take a role's rights on an environment away (its secrets too); team admins only")
    .requiredOption('--env <env>', 'the environment')
    .addHelpText('after', examples('opsdeck team revoke alice --env prod'))
    .action(
      act(async (app, g, role: string, o: { env: string }) => {
        requireTeam(app.inv.rights.team);
        checkRole(role);
        return runChange(app, g, 'team revoke', { role, env: o.env }, () => {
          const gone = app.inv.rights.revoke(role, o.env);
          return { json: { role, env: o.env, revoked: gone }, text: gone ? `${role} has no right on ${o.env} any more` : `${role} had no right on ${o.env}` };
        });
      }),
    );
  team
    .command('who')
    .description('who may do what where: the grants per environment, and the team admins')
    .option('--env <env>', 'one environment')
    .addHelpText('after', examples('opsdeck team who', 'opsdeck team who --env prod --json'))
    .action(
      act(async (app, _g, o: { env?: string }) => {
        requireTeam(app.inv.rights.team);
        const grants = app.inv.rights.listGrants(o.env);
        const admins = app.inv.rights.teamAdmins();
        const roles = app.inv.pg?.teamRoles() ?? null;
        return {
          json: { grants, teamAdmins: admins, roles },
          text:
            (grants.length
              ? table(
                  grants.map((x) => [x.env, x.role, x.level, x.grantedBy, x.grantedAt]),
                  ['ENV', 'ROLE', 'LEVEL', 'GRANTED BY', 'AT'],
                )
              : 'no grants') +
            `\nteam admins (admin everywhere, may grant): ${admins.join(', ') || 'none'}` +
            (roles ? `\nthis inventory's roles: operators are members of ${roles.user}, team admins of ${roles.admin}` : ''),
        };
      }),
    );
}

function requireTeam(team: boolean): void {
  if (!team)
    throw new UsageError(
      'rights per environment are for a team inventory on PostgreSQL: on this one (SQLite, one operator) everything is allowed',
      'point opsdeck at the team inventory: --inventory postgres://ROLE@HOST:PORT/DB',
    );
}

/** A PostgreSQL role name as opsdeck accepts it (an identifier, no quoting needed). */
function checkRole(role: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new UsageError(`invalid role name ${JSON.stringify(role)}`, 'lower-case letters, digits and _, starting with a letter or _');
}
