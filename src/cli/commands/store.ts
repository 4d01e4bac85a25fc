import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { storeRecords } from '../../../inventory/store-records.js';
import { UsageError } from '../../core/errors.js';
import { copyPlan, parseDuration, parseSubset, storeCheckPlan } from '../../actions/store.js';
import type { App, GlobalOpts } from '../../app/app.js';
import type { Act, Output } from '../action.js';
import { readSecret } from '../prompt.js';
import { runChange, runPlan } from '../run.js';
import { examples } from './help.js';

export interface StoreCheckFlags {
  readDataSubset?: string;
  maxDuration?: string;
}

/** backups check --read-data-subset auto|T [--max-duration 10m]: one part of the store's cycle read back (called from backups check). */
export async function storeCheck(app: App, g: GlobalOpts, o: StoreCheckFlags): Promise<Output> {
  const plan = storeCheckPlan(app, { subset: parseSubset(o.readDataSubset ?? 'auto'), maxDurationMs: parseDuration(o.maxDuration ?? '10m') });
  return runPlan(
    app,
    g,
    plan,
    (r) =>
      `store ${r.repository}: part ${r.part}/${r.parts} read back and sound (${Math.round(r.ms / 100) / 10} s); ${
        r.lastFullCycle ? `last read whole (a full cycle) ${r.lastFullCycle}` : `not yet read whole: ${r.parts - r.part} more part${r.parts - r.part === 1 ? '' : 's'} to this cycle`
      }`,
  );
}

/** What the store's status says: where it is, its copies, its checks, the pinned backups. */
function storeStatus(app: App): Output {
  const records = storeRecords(app.inv);
  const repository = app.store.repository;
  const checks = records.checks(repository, 10);
  const pins = records.pins();
  const status = {
    repository,
    copies: app.store.copies.map((c) => c.repository),
    lastFullCycle: records.lastFullCycle(repository),
    lastCheck: checks[0] ?? null,
    pinned: [...pins].map(([id, p]) => ({ id, ...p })),
  };
  const c = status.lastCheck;
  return {
    json: status,
    text: [
      `store           ${repository}`,
      `copies          ${status.copies.join(', ') || 'none (opsdeck settings storeCopies REPO,...)'}`,
      `read whole      ${status.lastFullCycle ?? 'never (opsdeck backups check --read-data-subset auto)'}`,
      `last check      ${c ? `${c.at}: part ${c.part}/${c.parts} ${c.ok ? 'sound' : `FAILED: ${c.error}`}` : 'none'}`,
      `pinned backups  ${status.pinned.map((p) => p.id).join(', ') || 'none'}`,
    ].join('\n'),
  };
}

/** backups copy, backups pin|unpin, store status, store secret. */
export function register(program: Command, act: Act): void {
  const backups = program.commands.find((c) => c.name() === 'backups');
  if (!backups) throw new Error('the backups command is registered first');
  backups
    .command('copy [instance]')
    .description('copy the backups into the copy stores (settings storeCopies) with restic copy; each backup is also copied as it is taken')
    .addHelpText(
      'after',
      examples('opsdeck settings storeCopies /mnt/offsite/restic', 'opsdeck backups copy --yes   # for cron: whatever a copy store lacks', 'opsdeck backups copy shop-prod --dry-run'),
    )
    .action(
      act(async (app, g, name?: string) =>
        runPlan(app, g, copyPlan(app, name), (r) => r.copies.map((c) => `${c.repository}: ${c.ok ? `${c.snapshots} snapshots copied or there already` : `FAILED: ${c.error}`}`).join('\n')),
      ),
    );
  backups
    .command('pin <id>')
    .description('keep a backup whatever the retention policy: backups prune never drops a pinned backup (--why: why, shown by store status)')
    .addHelpText('after', examples('opsdeck backups pin 20261129T021500-ab12 --why "before the 3.0 migration"', 'opsdeck backups unpin 20261129T021500-ab12'))
    .action(
      act(async (app, g, id: string) => {
        const b = app.inv.requireBackup(id);
        // --why is the global flag (why a change): here, why the backup is kept.
        const o = { why: g.why };
        return runChange(
          app,
          g,
          'backups pin',
          { backup: id, why: o.why ?? null },
          () => {
            storeRecords(app.inv).pin(id, b.instance, o.why ?? null);
            return { json: { pinned: id }, text: `backup ${id} of ${b.instance} pinned: prune keeps it until backups unpin ${id}` };
          },
          { instance: b.instance },
        );
      }),
    );
  backups
    .command('unpin <id>')
    .description('let the retention policy decide on a pinned backup again')
    .addHelpText('after', examples('opsdeck backups unpin 20261129T021500-ab12'))
    .action(
      act(async (app, g, id: string) => {
        const b = app.inv.requireBackup(id);
        if (!storeRecords(app.inv).pins().has(id)) throw new UsageError(`backup ${id} is not pinned`, 'the pinned backups: opsdeck store status');
        return runChange(
          app,
          g,
          'backups unpin',
          { backup: id },
          () => {
            storeRecords(app.inv).unpin(id);
            return { json: { unpinned: id }, text: `backup ${id} of ${b.instance} unpinned: the retention policy decides on it again` };
          },
          { instance: b.instance },
        );
      }),
    );

  const store = program
    .command('store')
    .description("the backup store: where it is, its copies, its integrity checks, pinned backups; a shared store's password")
    .addHelpText('after', examples('opsdeck store status', "opsdeck store secret --env prod --password-file store.pass   # team inventory: the shared store's password"));
  store
    .command('status')
    .description('the store, its copies, when it was last read whole (backups check --read-data-subset), its last check, the pinned backups')
    .addHelpText('after', examples('opsdeck store status', 'opsdeck store status --json'))
    .action(act(async (app) => storeStatus(app)));
  store
    .command('secret')
    .description(
      "team inventory: keep the shared store's password in the inventory, sealed with an environment's key: every jump box of a role granted there opens the store with it, none keeps a file (from --password-file, OPSDECK_STORE_PASSWORD, else a new random one for a new store)",
    )
    .requiredOption('--env <env>', 'the environment whose key seals it: roles granted there may use the store')
    .option('--password-file <file>', "the store's password (an existing store's store.pass)")
    .addHelpText(
      'after',
      examples(
        'opsdeck settings storeRepository sftp:vault:/srv/restic   # vault: a host of the inventory',
        'opsdeck store secret --env prod   # a new store: a random password',
        'opsdeck store secret --env prod --password-file ~/.local/share/opsdeck/store.pass   # an existing one',
      ),
    )
    .action(
      act(async (app, g, o: { env: string; passwordFile?: string }) => {
        if (!app.inv.rights.team) throw new UsageError('store secret is for a team inventory', 'on SQLite the password is store.pass in the home');
        app.inv.requireEnv(o.env);
        const repository = app.store.repository;
        const given = await readSecret("the store's password", { file: o.passwordFile, envVar: 'OPSDECK_STORE_PASSWORD' });
        const kept = storeRecords(app.inv).storePasswordEnv(repository);
        // A new random password over a kept one would lock every jump box out of the store's backups.
        if (!given && kept)
          throw new UsageError(
            `the password of ${repository} is already kept in the team inventory (sealed with ${kept}'s key)`,
            `to move it to another environment, give the store's current password: --password-file FILE or OPSDECK_STORE_PASSWORD`,
          );
        const password = given || randomBytes(33).toString('base64');
        // The fact, never the value.
        return runChange(app, g, 'store secret', { repository, env: o.env, password: given ? 'given' : 'generated' }, () => {
          storeRecords(app.inv).setStorePassword(repository, o.env, password);
          return { json: { repository, env: o.env }, text: `the password of ${repository} is kept in the team inventory, sealed with ${o.env}'s key` };
        });
      }),
    );
}
