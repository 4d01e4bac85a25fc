import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addInstance, BACKENDS, cli, homeWithHosts, lab, must, newHome } from '../helpers.js';

describe.each(BACKENDS)('inventory export and import (%s)', (backend) => {
  it('moves environments, hosts and instances to another home without secrets, all or nothing', async () => {
    const home = await homeWithHosts(['lab1', 'lab2'], backend);
    const l = lab();
    await must(
      cli(home, [
        'host',
        'add',
        'behind',
        '--address',
        l.hosts[2].address,
        '--port',
        String(l.hosts[2].port),
        '--user',
        l.user,
        '--key',
        l.keyFile,
        '--jump',
        'lab1',
        '--fingerprint',
        l.hosts[2].fingerprint,
      ]),
    );
    await must(cli(home, ['env', 'set', 'prod', '--keep-daily', '9', '--max-backup-age', '2d']));
    const i = await addInstance(home, 'lab1', 'inv-prod', 'prod');
    await must(cli(home, ['instance', 'set', 'inv-prod', '--branch', 'main', '--hook', 'migrate=bin/migrate', '--metric', 'n=sql:SELECT 1', '--local', 'config/local.env']));

    const file = join(newHome('sqlite'), 'inventory.json');
    const out = await must(cli(home, ['inventory', 'export', file]));
    expect(out.stderr).toContain('not exported (set them again after an import): database password of inv-prod');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(i.password);
    const doc = JSON.parse(text);
    expect(doc.hosts.map((h: any) => h.name).sort()).toEqual(['behind', 'lab1', 'lab2']);

    const other = newHome(backend);
    const imp = await must(cli(other, ['inventory', 'import', file]));
    expect(imp.stdout).toMatch(/imported 2 environments, 3 hosts, 1 instances/);
    expect(imp.stdout).toContain('opsdeck instance set inv-prod --db-password');
    const show = (h: string) => cli(h, ['instance', 'show', 'inv-prod', '--json']).then((r) => JSON.parse(r.stdout));
    const [a, b] = [await show(home), await show(other)];
    for (const k of ['host', 'path', 'env', 'url', 'dbUrl', 'branch', 'hooks', 'localPaths', 'metrics', 'protected']) expect(b[k], k).toEqual(a[k]);
    expect(b.hasDbPassword).toBe(false);
    expect(JSON.parse((await cli(other, ['host', 'show', 'behind', '--json'])).stdout)).toMatchObject({ jump: 'lab1', hostKey: l.hosts[2].fingerprint });

    // Again: every name is taken, so nothing at all is added.
    const again = await cli(other, ['inventory', 'import', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already in this inventory: environment dev, environment prod, host behind, host lab1, host lab2, instance inv-prod; nothing was imported/);
    // A broken document changes nothing either, even when its first entries are fine.
    const third = newHome(backend);
    writeFileSync(join(third, 'bad.json'), JSON.stringify({ ...doc, instances: [{ ...doc.instances[0], path: '/srv/../etc' }] }));
    const bad = await cli(third, ['inventory', 'import', join(third, 'bad.json')]);
    expect(bad.code).toBe(2);
    expect(JSON.parse((await cli(third, ['env', 'list', '--json'])).stdout)).toEqual([]);
    expect((await cli(third, ['inventory', 'import', '/etc/hostname'])).stderr).toMatch(/cannot read \/etc\/hostname as JSON/);

    // With its password set again, the imported instance works.
    await must(cli(other, ['instance', 'set', 'inv-prod', '--db-password'], { OPSDECK_DB_PASSWORD: i.password }));
    const bk = JSON.parse((await must(cli(other, ['backup', 'inv-prod', '--json']))).stdout);
    expect(bk.manifest.db.tables).toBeTruthy();
  });
});
