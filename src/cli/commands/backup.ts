import type { Command } from 'commander';
import { EXIT, UsageError } from '../../core/errors.js';
import { backupPlan } from '../../actions/backup.js';
import { prunePlan } from '../../actions/retention.js';
import { exportPlan, verifyPlan } from '../../actions/verify.js';
import { DEFAULT_MAX_BACKUP_AGE } from '../../../inventory/index.js';
import { BACKUP_CHECK_HEADERS, BACKUP_HEADERS, backupCells, backupCheckCells, backupCheckRows, backupRow, describeBackup, lateBackupWords } from '../../present/backups.js';
import type { Act } from '../action.js';
import { anyKeep, keepOptions, policyOf, type KeepOpts } from '../options.js';
import { alert, forEachInstance, pingStart, runPlan, unattended, type ManyOpts } from '../run.js';
import { table } from '../render.js';
import { examples } from './help.js';
import { storeCheck, type StoreCheckFlags } from './store.js';

/** backup, backups (list, check, prune, verify, export). */
export function register(program: Command, act: Act): void {
  program
    .command('backup [instance...]')
    .description('back up instances: code tree and database into the store, checked and with a manifest')
    .addHelpText('after', examples('opsdeck backup shop-prod', 'opsdeck backup --env prod --parallel 4 --yes', 'opsdeck backup --all --yes   # for cron: goes on past failures, exit 1 if any failed'))
    .option('--all', 'every instance')
    .option('--env <env>', 'every instance of this environment')
    .option('--parallel <n>', 'how many at once (default 1)')
    .action(act(async (app, g, names: string[], o: ManyOpts) => forEachInstance(app, g, o, names, (n) => backupPlan(app, n), describeBackup, 'backup')));
  const backups = program
    .command('backups [instance]')
    .description('list backups, newest first')
    .addHelpText('after', examples('opsdeck backups', 'opsdeck backups shop-prod --json'))
    .action(
      act(async (app, _g, name?: string) => {
        if (name) app.inv.requireInstance(name);
        const list = app.inv.listBackups(name).map(backupRow);
        return {
          json: list,
          text: list.length
            ? table(
                list.map((b) => backupCells(b)),
                BACKUP_HEADERS,
              )
            : 'no backups yet: opsdeck backup INSTANCE',
        };
      }),
    );
  backups
    .command('check [instance...]')
    .description(`is every instance's newest good backup younger than its environment's limit (default ${DEFAULT_MAX_BACKUP_AGE})? exit 1, and alerts when unattended, if not`)
    .addHelpText(
      'after',
      examples(
        'opsdeck backups check',
        'opsdeck backups check shop-prod --yes   # alerts when its newest good backup is too old',
        'opsdeck backups check --read-data-subset auto --max-duration 10m --yes   # the store: one part of it read back per run',
      ),
    )
    .option(
      '--read-data-subset <auto|T>',
      'check the store instead: restic check reading the next part of a cycle that reads the whole store once (auto: parts sized to --max-duration; T: a cycle of T runs)',
    )
    .option('--max-duration <d>', 'with --read-data-subset: the time limit of one check (default 10m)')
    .action(
      act(async (app, g, names: string[], o: StoreCheckFlags) => {
        if (o.readDataSubset !== undefined) {
          if (names.length) throw new UsageError('--read-data-subset checks the store, not instances', 'run it without instance names');
          return storeCheck(app, g, o);
        }
        if (o.maxDuration !== undefined) throw new UsageError('--max-duration goes with --read-data-subset', 'opsdeck backups check --read-data-subset auto --max-duration 10m');
        await pingStart(app, g, 'backups check');
        const insts = names.length ? names.map((n) => app.inv.requireInstance(n)) : app.inv.listInstances();
        const rows = backupCheckRows(app.inv, insts);
        const late = rows.filter((r) => !r.ok);
        if (late.length && unattended(g) && !g.dryRun) {
          await alert(app, {
            subject: `${late.length} instance${late.length > 1 ? 's have' : ' has'} no recent backup`,
            body: late.map((r) => lateBackupWords(r)).join('\n') + `\n\nSee them with: opsdeck --home ${app.home} backups check`,
            fields: { event: 'backup-too-old', instances: late },
          });
        }
        return {
          json: rows,
          text: table(
            rows.map((r) => backupCheckCells(r)),
            BACKUP_CHECK_HEADERS,
          ),
          exitCode: late.length ? EXIT.FAILED : EXIT.OK,
        };
      }),
    );
  keepOptions(
    backups
      .command('prune [instance]')
      .description(
        "drop the backups the retention policy does not keep (the environment's, or the flags'); those a copy store keeps by its own retention stay listed as copy-only; --dry-run lists them",
      )
      .addHelpText('after', examples('opsdeck backups prune --dry-run', 'opsdeck backups prune shop-prod --keep-daily 7 --yes', 'opsdeck help retention')),
  ).action(
    act(async (app, g, name: string | undefined, o: KeepOpts) => {
      if (name) app.inv.requireInstance(name);
      // The instances whose backups it decides on are locked before it decides, and until it has
      // forgotten: a backup or restore meanwhile would add a backup or lean on one being dropped.
      const locked = g.dryRun ? [] : name ? [name] : [...new Set(app.inv.listBackups().map((b) => b.instance))].sort();
      app.inv.acquireLocks(
        locked.map((instance) => ({ instance, command: 'backups prune' })),
        null,
      );
      try {
        return await runPlan(app, g, prunePlan(app, { instance: name, policy: anyKeep(o) ? policyOf(o) : undefined }), (r) =>
          [
            ...r.removed.map((b) => `dropped ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt})`),
            ...r.copiesOnly.map(
              (b) =>
                `dropped ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt}) from the store; kept as copy-only (${b.copies.length ? `held by ${b.copies.join(', ')}` : 'a copy store could not be read'})`,
            ),
            `${r.removed.length} dropped, ${r.kept.length} kept${r.copiesOnly.length ? `, ${r.copiesOnly.length} kept in the copy stores only` : ''}`,
            ...r.copies.map((c) => `copy store ${c.repository}: ${c.removed.length} dropped (${c.removed.map((b) => b.id).join(', ') || 'none'}), ${c.kept.length} kept`),
            ...r.copiesOnlyDropped.map((b) => `dropped copy-only ${b.kind} backup ${b.id} of ${b.instance} (${b.createdAt}) from the inventory: no copy store keeps it`),
          ].join('\n'),
        );
      } finally {
        for (const l of locked) app.inv.releaseLock(l);
      }
    }),
  );
  backups
    .command('verify <id>')
    .description('read a backup back from the store and check it against its manifest')
    .addHelpText('after', examples('opsdeck backups verify 20261129T021500-ab12', 'opsdeck backups shop-prod   # the ids'))
    .action(
      act(async (app, g, id: string) =>
        runPlan(app, g, verifyPlan(app, id), (r) => `backup ${r.id}: ${r.verified ? 'verified: every stream matches its manifest' : 'DOES NOT MATCH: ' + r.problems.join('; ')}`),
      ),
    );
  backups
    .command('export <id> <file>')
    .description('write a backup as one portable tar (manifest.json, code.tar, db.sql)')
    .addHelpText('after', examples('opsdeck backups export 20261129T021500-ab12 shop.tar', 'tar -tf shop.tar   # manifest.json, code.tar, db.sql'))
    .action(act(async (app, g, id: string, file: string) => runPlan(app, g, exportPlan(app, id, file), (r) => `backup ${r.id} written to ${r.file}`)));
}
