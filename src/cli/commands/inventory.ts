import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { exportInventory, importInventory } from '../../../inventory/transfer.js';
import { UsageError, errorMessage } from '../../core/errors.js';
import { normalizeDbUrl } from '../../databases/index.js';
import type { Act } from '../action.js';
import { runChange } from '../run.js';
import { examples } from './help.js';

/** inventory export / import: the inventory as one JSON file, never with secrets. */
export function register(program: Command, act: Act): void {
  const inventory = program
    .command('inventory')
    .description('the inventory as one JSON file: to move it to another jump box, or keep it in git')
    .addHelpText('after', examples('opsdeck inventory export inventory.json', 'opsdeck --home ~/new inventory import inventory.json'));
  inventory
    .command('export [file]')
    .description('write environments, hosts and instances as JSON (to FILE, or stdout); secrets are never written')
    .addHelpText('after', examples('opsdeck inventory export > inventory.json', 'opsdeck inventory export inventory.json   # never secrets'))
    .action(
      act(async (app, _g, file?: string) => {
        const { doc, secretsLeftOut } = exportInventory(app.inv);
        const text = JSON.stringify(doc, null, 2) + '\n';
        if (secretsLeftOut.length) process.stderr.write(`opsdeck: not exported (set them again after an import): ${secretsLeftOut.join(', ')}\n`);
        if (!file) {
          process.stdout.write(text);
          return { json: undefined, text: '' };
        }
        writeFileSync(file, text, { mode: 0o600 });
        return {
          json: { file, envs: doc.envs.length, hosts: doc.hosts.length, instances: doc.instances.length },
          text: `inventory written to ${file}: ${doc.envs.length} environments, ${doc.hosts.length} hosts, ${doc.instances.length} instances`,
        };
      }),
    );
  inventory
    .command('import <file>')
    .description('add the environments, hosts and instances of an export; all or nothing, and never over existing names')
    .addHelpText(
      'after',
      examples('opsdeck --home ~/new inventory import inventory.json   # all or nothing', 'OPSDECK_DB_PASSWORD=... opsdeck instance set shop-prod --db-password   # then each password again'),
    )
    .action(
      act(async (app, g, file: string) => {
        let raw: unknown;
        try {
          raw = JSON.parse(readFileSync(file, 'utf8'));
        } catch (err) {
          throw new UsageError(`cannot read ${file} as JSON: ${errorMessage(err)}`, 'give a file written by opsdeck inventory export');
        }
        return runChange(app, g, 'inventory import', { file, ...entryNames(raw) }, () => {
          const r = importInventory(app.inv, raw, normalizeDbUrl);
          return {
            json: r,
            text:
              `imported ${r.envs} environments, ${r.hosts} hosts, ${r.instances} instances` +
              (r.needPassword.length
                ? `\nset their database passwords (they are never exported): ${r.needPassword.map((n) => `OPSDECK_DB_PASSWORD=... opsdeck instance set ${n} --db-password`).join('; ')}`
                : ''),
          };
        });
      }),
    );
}

/** The names an export file holds, for the audit trail (the import itself checks every field). */
function entryNames(raw: unknown): { envs?: string[]; hosts?: string[]; instances?: string[] } {
  const names = (list: unknown) => (Array.isArray(list) ? list.map((e: unknown) => (e && typeof e === 'object' && 'name' in e ? String(e.name) : '?')) : undefined);
  if (!raw || typeof raw !== 'object') return {};
  return { envs: names(Reflect.get(raw, 'envs')), hosts: names(Reflect.get(raw, 'hosts')), instances: names(Reflect.get(raw, 'instances')) };
}
