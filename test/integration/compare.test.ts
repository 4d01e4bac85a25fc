import { describe, expect, it } from 'vitest';
import { addInstance, asLabUser, cli, dbSqlAsApp, homeWithHosts, must, ENGINES } from '../helpers.js';

describe.each(ENGINES)('compare (%s)', (engine) => {
  // Dumps name PostgreSQL's tables with their schema; a MariaDB database has no schemas.
  const t = (name: string) => (engine === 'postgres' ? `public.${name}` : name);
  it('prod and its clone (another host) are identical; after a file and a row change on one side, exactly those differ', async () => {
    const home = await homeWithHosts(['lab1', 'lab2']);
    await addInstance(home, 'lab1', 'cmp-prod', 'dev', { pagila: true, engine });
    const copy = await addInstance(home, 'lab2', 'cmp-copy', 'dev', { engine });
    await must(cli(home, ['instance', 'set', 'cmp-copy', '--local', 'config/local.env']));
    await must(cli(home, ['clone', 'cmp-prod', 'cmp-copy', '--yes']));

    const same = await cli(home, ['compare', 'cmp-prod', 'cmp-copy', '--json']);
    expect(same.code, same.stderr + same.stdout).toBe(0);
    const r0 = JSON.parse(same.stdout);
    expect(r0.identical).toBe(true);
    expect(r0.database.tables.find((x: any) => x.table === t('rental'))).toMatchObject({ rowsA: 16044, rowsB: 16044, same: true });

    asLabUser('sh', ['-c', 'echo changed >> "$1/index.html"', 'sh', copy.path]);
    dbSqlAsApp(copy, `${engine === 'postgres' ? `SET ROLE ${copy.role}; ` : ''}UPDATE ${t('actor')} SET last_name = 'CHANGED' WHERE actor_id = 7;`);
    const diff = await cli(home, ['compare', 'cmp-prod', 'cmp-copy', '--json', '--diff', 'index.html']);
    expect(diff.code).toBe(1);
    const r = JSON.parse(diff.stdout);
    expect(r.files).toMatchObject({ onlyInA: [], onlyInB: [], different: [{ path: 'index.html', what: ['content'] }] });
    expect(r.database.schemaSame).toBe(true);
    expect(r.database.tables.filter((t: any) => !t.same)).toEqual([{ table: t('actor'), rowsA: 200, rowsB: 200, same: false }]);
    expect(r.diff).toMatch(/^\+changed$/m);
    const text = (await cli(home, ['compare', 'cmp-prod', 'cmp-copy'])).stdout;
    expect(text).toContain(`~ ${t('actor')}: 200 rows in cmp-prod, 200 in cmp-copy (contents differ)`);
    expect(text).toMatch(/cmp-prod and cmp-copy differ/);
  });
});
