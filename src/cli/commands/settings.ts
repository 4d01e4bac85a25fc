import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { saveSetting, type Settings } from '../../app/settings.js';
import type { Act, Output } from '../action.js';
import { runChange } from '../run.js';
import { examples } from './help.js';

const show = (s: Settings): Output => ({
  json: s,
  text: Object.entries(s)
    .map(([k, v]) => `${k.padEnd(18)} ${v === '' ? '(default)' : typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : v}`)
    .join('\n'),
});

/** settings: show them, or change one (recorded in the audit trail). */
export function register(program: Command, act: Act): void {
  program
    .command('settings [key] [value]')
    .description('show the settings, or change one: refreshMs (health panels), connectTimeoutMs, storeRepository (before the first backup)')
    .addHelpText(
      'after',
      examples(
        'opsdeck settings',
        'opsdeck settings refreshMs 5000',
        'opsdeck settings storeRepository sftp:backup@vault:/srv/restic',
        'opsdeck settings storeLockWait 30m   # how long unattended runs wait for another restic lock (at a terminal: 1 min at most)',
        'opsdeck settings healthWait 90s      # how long update, upgrade, rollback and drill wait for the site to answer healthy',
        'opsdeck settings storeCopyRetention "/mnt/offsite/restic daily=30,weekly=8,monthly=12,yearly=5"   # a copy store keeps by its own retention',
      ),
    )
    .action(
      act(async (app, g, key?: string, value?: string) => {
        if (key === undefined) return show(app.settings);
        if (value === undefined) throw new UsageError(`give a value for ${key}`, `for example: opsdeck settings ${key} ${key === 'refreshMs' ? '5000' : '...'}`);
        const known = (k: string): k is keyof Settings => k in app.settings;
        return runChange(app, g, 'settings', { setting: key, value, previous: known(key) ? app.settings[key] : null }, () => show(saveSetting(app.home, key, value, app.inv.listBackups().length > 0)));
      }),
    );
}
