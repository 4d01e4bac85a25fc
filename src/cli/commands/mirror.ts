import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { age, duration } from '../../core/format.js';
import { checkMirror, mirrorRows, mirrorSyncPlan, type MirrorSyncResult } from '../../actions/mirror.js';
import type { Act } from '../action.js';
import { table } from '../render.js';
import { forEachInstance, runChange, type ManyOpts } from '../run.js';
import { examples } from './help.js';

interface AddOpts {
  lag: string;
}

const describeSync = (r: MirrorSyncResult) =>
  r.upToDate
    ? `${r.mirror} already holds backup ${r.backup} of ${r.source} (${age(r.backupTakenAt)}): nothing to do`
    : `${r.mirror} is now ${r.source} as backed up ${age(r.backupTakenAt)} (backup ${r.backup})${r.safetyBackup ? `; its previous state is safety backup ${r.safetyBackup}` : ''}`;

/** mirror add | remove | list | sync: delayed mirrors. */
export function register(program: Command, act: Act): void {
  const mirror = program
    .command('mirror')
    .description('delayed mirrors: an instance kept a copy of another as it was a day, a week, a month ago (from its backups), so users can find what they deleted')
    .addHelpText('after', examples('opsdeck mirror add shop-prod shop-aweekago --lag 7d', 'opsdeck mirror sync --all --yes   # cron', 'opsdeck mirror list'));
  mirror
    .command('add <source> <mirror>')
    .description('make an instance a delayed mirror of another (refused onto a protected instance); mirror sync fills it')
    .addHelpText('after', examples('opsdeck mirror add shop-prod shop-aweekago --lag 7d', 'opsdeck mirror add shop-prod shop-yesterday --lag 1d && opsdeck mirror sync shop-yesterday'))
    .requiredOption('--lag <age>', 'how far behind the source it stays: 12h, 1d, 7d, 4w')
    .action(
      act(async (app, g, source: string, target: string, o: AddOpts) => {
        const lagSeconds = checkMirror(app, source, target, o.lag);
        return runChange(
          app,
          g,
          'mirror add',
          { instance: target, source, lagSeconds },
          () => {
            const before = app.inv.relations.get(target);
            app.inv.relations.set(target, { kind: 'mirror', of: source, lagSeconds, ...(before.of !== source && { syncedBackup: null, syncedAt: null }) });
            return { json: { mirror: target, source, lagSeconds }, text: `${target} is a mirror of ${source}, ${duration(lagSeconds)} behind; fill it with: opsdeck mirror sync ${target}` };
          },
          { instance: target },
        );
      }),
    );
  mirror
    .command('remove <mirror>')
    .description('stop keeping an instance a mirror (the instance and its data stay)')
    .addHelpText('after', examples('opsdeck mirror remove shop-aweekago'))
    .action(
      act(async (app, g, target: string) => {
        app.inv.requireInstance(target);
        const rel = app.inv.relations.get(target);
        if (rel.kind !== 'mirror') throw new UsageError(`${target} is not a mirror`, 'list them with: opsdeck mirror list');
        return runChange(
          app,
          g,
          'mirror remove',
          { instance: target, source: rel.of },
          () => {
            app.inv.relations.set(target, { kind: null, of: null, lagSeconds: null, syncedBackup: null, syncedAt: null });
            return { json: { removed: target }, text: `${target} is no longer a mirror of ${rel.of} (it keeps the data it has)` };
          },
          { instance: target },
        );
      }),
    );
  mirror
    .command('list')
    .description('the mirrors: source, lag asked, the backup each holds and how old its data really is')
    .addHelpText('after', examples('opsdeck mirror list', 'opsdeck mirror list --json'))
    .action(
      act(async (app) => {
        const rows = mirrorRows(app);
        return {
          json: rows,
          text: rows.length
            ? table(
                rows.map((r) => [
                  r.mirror,
                  r.source,
                  duration(r.lagSeconds),
                  r.realLagSeconds === null ? 'never synced' : duration(r.realLagSeconds),
                  r.backup ?? '-',
                  age(r.syncedAt),
                  r.due ? 'sync due' : 'up to date',
                ]),
                ['MIRROR', 'SOURCE', 'LAG', 'DATA AGE', 'BACKUP', 'SYNCED', 'STATE'],
              )
            : 'no mirrors yet: opsdeck mirror add SOURCE MIRROR --lag 7d',
        };
      }),
    );
  mirror
    .command('sync [mirror...]')
    .description('restore onto each mirror the newest backup of its source at least its lag old (its URL and local files kept); a mirror already there is left alone')
    .addHelpText('after', examples('opsdeck mirror sync shop-aweekago', 'opsdeck mirror sync --all --yes   # cron', 'opsdeck --dry-run mirror sync --all'))
    .option('--all', 'every mirror')
    .option('--parallel <n>', 'how many at once (default 1)')
    .action(
      act(async (app, g, names: string[], o: Pick<ManyOpts, 'all' | 'parallel'>) => {
        const targets = [...names, ...(o.all ? mirrorRows(app).map((r) => r.mirror) : [])];
        if (o.all && !targets.length) return { json: { results: [] }, text: 'no mirrors to sync' };
        // Only mirrors are synced: no confirmation, a mirror is a copy by definition (never protected).
        return forEachInstance(app, g, { parallel: o.parallel }, [...new Set(targets)], (n) => mirrorSyncPlan(app, n), describeSync, 'mirror sync');
      }),
    );
}
