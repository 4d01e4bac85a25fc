import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { addInstance, appSql, asLabUser, cli, dbSql, homeWithHosts, must } from '../helpers.js';

// Delayed mirrors (issue 13, item 2), against the lab.

const DAY = 86_400_000;
const notes = (i: { db: string }) => dbSql(i, 'SELECT body FROM notes ORDER BY id;').trim().split('\n').filter(Boolean);

describe('delayed mirrors', () => {
  let home: string;
  let prod: Awaited<ReturnType<typeof addInstance>>;
  let mirror: Awaited<ReturnType<typeof addInstance>>;
  const backups: string[] = [];

  beforeAll(async () => {
    home = await homeWithHosts(['lab1', 'lab2']);
    prod = await addInstance(home, 'lab1', 'mr-prod', 'prod');
    mirror = await addInstance(home, 'lab2', 'mr-aweekago', 'dev');
    // The mirror's own file (its database config), which no sync may overwrite.
    asLabUser('sh', ['-c', 'mkdir -p "$1/config" && echo "mirror own" > "$1/config/local.php"', 'sh', mirror.path]);
    await must(cli(home, ['instance', 'set', mirror.name, '--local', 'config/local.php']));
    // Two backups of production: one taken (as far as the inventory knows) eight days ago, one now.
    appSql(prod, "INSERT INTO notes (body) VALUES ('eight days ago');");
    backups.push(JSON.parse((await must(cli(home, ['backup', prod.name, '--json']))).stdout).id);
    const inv = new Inventory(home);
    inv.db.prepare('UPDATE backups SET created_at = ? WHERE id = ?').run(new Date(Date.now() - 8 * DAY).toISOString(), backups[0]);
    inv.close();
    appSql(prod, "INSERT INTO notes (body) VALUES ('today');");
    backups.push(JSON.parse((await must(cli(home, ['backup', prod.name, '--json']))).stdout).id);
  });

  it('is refused onto a protected instance, and onto itself', async () => {
    const guarded = await addInstance(home, 'lab2', 'mr-guarded', 'prod');
    const r = await cli(home, ['mirror', 'add', prod.name, guarded.name, '--lag', '7d']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${guarded.name} is in protected environment prod`);
    expect((await cli(home, ['mirror', 'add', prod.name, prod.name, '--lag', '7d'])).code).toBe(2);
    expect((await cli(home, ['mirror', 'add', prod.name, mirror.name, '--lag', 'a week'])).code).toBe(2);
    // A staging copy (redacted, say) does not silently become an unredacted mirror.
    await must(cli(home, ['instance', 'set', mirror.name, '--staging-of', prod.name]));
    const staged = await cli(home, ['mirror', 'add', prod.name, mirror.name, '--lag', '7d']);
    expect(staged.code).toBe(2);
    expect(staged.stderr).toContain(`--standalone --no-redact`);
    await must(cli(home, ['instance', 'set', mirror.name, '--standalone']));
    expect(JSON.parse((await must(cli(home, ['mirror', 'list', '--json']))).stdout)).toEqual([]);
  });

  it('sync puts the newest backup at least the lag old onto the mirror, its URL and own files kept; list shows the real lag', async () => {
    await must(cli(home, ['mirror', 'add', prod.name, mirror.name, '--lag', '7d']));
    const dry = await must(cli(home, ['--dry-run', 'mirror', 'sync', mirror.name]));
    expect(dry.stdout).toContain(`(${backups[0]})`);
    expect(notes(mirror)).toEqual([]);

    const r = JSON.parse((await must(cli(home, ['mirror', 'sync', mirror.name, '--json']))).stdout);
    expect(r).toMatchObject({ mirror: mirror.name, source: prod.name, backup: backups[0], upToDate: false });
    // Production as it was a week ago: the note of eight days ago, not today's.
    expect(notes(mirror)).toEqual(['eight days ago']);
    expect(readFileSync(join(mirror.path, 'config', 'local.php'), 'utf8')).toBe('mirror own\n');
    const shown = JSON.parse((await must(cli(home, ['instance', 'show', mirror.name, '--json']))).stdout);
    expect(shown.url).toBe(mirror.url);

    const [row] = JSON.parse((await must(cli(home, ['mirror', 'list', '--json']))).stdout);
    expect(row).toMatchObject({ mirror: mirror.name, source: prod.name, lagSeconds: 7 * 86400, backup: backups[0], due: false });
    expect(row.realLagSeconds).toBeGreaterThanOrEqual(8 * 86400 - 60);
    expect((await must(cli(home, ['mirror', 'list']))).stdout).toMatch(new RegExp(`${mirror.name}\\s+${prod.name}\\s+7d\\s+8d\\s+${backups[0]}`));
    expect((await must(cli(home, ['instance', 'show', mirror.name]))).stdout).toContain(`relation  mirror of ${prod.name}, 7d behind (holds backup ${backups[0]}`);

    // Nothing newer is old enough: the next sync changes nothing.
    const again = JSON.parse((await must(cli(home, ['mirror', 'sync', '--all', '--yes', '--json']))).stdout);
    expect(again).toMatchObject({ backup: backups[0], upToDate: true });
    expect(notes(mirror)).toEqual(['eight days ago']);
    const last = JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '1']))).stdout)[0];
    expect(last).toMatchObject({ command: 'mirror sync', instance: mirror.name, status: 'ok' });
  });

  it('with a shorter lag it follows a newer backup; mirror remove stops it', async () => {
    const inv = new Inventory(home);
    inv.db.prepare('UPDATE backups SET created_at = ? WHERE id = ?').run(new Date(Date.now() - 2 * DAY).toISOString(), backups[1]);
    inv.close();
    await must(cli(home, ['mirror', 'add', prod.name, mirror.name, '--lag', '1d']));
    expect(JSON.parse((await must(cli(home, ['mirror', 'list', '--json']))).stdout)[0]).toMatchObject({ backup: backups[0], due: true });
    const r = JSON.parse((await must(cli(home, ['mirror', 'sync', mirror.name, '--json']))).stdout);
    expect(r).toMatchObject({ backup: backups[1], upToDate: false });
    expect(notes(mirror)).toEqual(['eight days ago', 'today']);
    expect(readFileSync(join(mirror.path, 'config', 'local.php'), 'utf8')).toBe('mirror own\n');

    await must(cli(home, ['mirror', 'remove', mirror.name]));
    expect(JSON.parse((await must(cli(home, ['mirror', 'list', '--json']))).stdout)).toEqual([]);
    expect((await cli(home, ['mirror', 'sync', mirror.name])).code).toBe(2);
  });

  it('opsdeck cron runs mirror sync --all', async () => {
    expect((await must(cli(home, ['cron']))).stdout).toMatch(/mirror sync --all --yes/);
  });
});
