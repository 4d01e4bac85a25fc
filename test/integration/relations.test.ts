import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pagilaAvailable } from '../../fixtures/lab.js';
import { addInstance, cli, dbSql, dbState, homeWithHosts, must, treeState } from '../helpers.js';

// Relations between instances, refresh and promote (issue 13, item 3), against the lab.

const RULES = "customer.email = CONCAT('user', customer_id, '@example.invalid')\ncustomer.first_name = 'Anon'\nUPDATE customer SET last_name = CONCAT('Person ', customer_id);\n";
const show = async (home: string, name: string) => JSON.parse((await must(cli(home, ['instance', 'show', name, '--json']))).stdout);
/** What promote changes of an instance, as instance show says it. */
const role = async (home: string, name: string) => {
  const i = await show(home, name);
  return { env: i.env, url: i.url, protected: i.protected, relation: i.relation, maintenance: i.maintenanceSince };
};
const emails = (i: { db: string }) => dbSql(i, 'SELECT email FROM public.customer ORDER BY customer_id;').trim().split('\n');

describe('staging relations, refresh and promote', () => {
  let home: string;
  let prod: Awaited<ReturnType<typeof addInstance>>;
  let uat: Awaited<ReturnType<typeof addInstance>>;
  let rules: string;

  beforeAll(async () => {
    expect(pagilaAvailable()).toBe(true);
    home = await homeWithHosts(['lab1', 'lab2']);
    prod = await addInstance(home, 'lab1', 'rl-prod', 'prod', { pagila: true });
    uat = await addInstance(home, 'lab2', 'rl-uat', 'dev');
    rules = join(home, 'redact.sql');
    writeFileSync(rules, RULES);
  });

  it('instance set --staging-of and --redact store the relation and the rules; instance show says so on both', async () => {
    expect((await cli(home, ['instance', 'set', uat.name, '--staging-of', 'no-such'])).code).toBe(2);
    expect((await cli(home, ['instance', 'set', uat.name, '--staging-of', uat.name])).code).toBe(2);
    await must(cli(home, ['instance', 'set', uat.name, '--staging-of', prod.name, '--redact', rules]));
    const text = (await must(cli(home, ['instance', 'show', uat.name]))).stdout;
    expect(text).toContain(`relation  staging of ${prod.name}`);
    expect(text).toContain(`redact    3 rule(s) from ${rules}`);
    expect((await must(cli(home, ['instance', 'show', prod.name]))).stdout).toContain(`copies    ${uat.name} (staging)`);
    expect((await show(home, uat.name)).relation).toMatchObject({ kind: 'staging', of: prod.name, held: null });
  });

  it('refresh copies production data onto the staging instance, redacted with its stored rules, its code kept', async () => {
    expect((await cli(home, ['refresh', prod.name, '--yes'])).code).toBe(2);
    const code = treeState(uat.path);
    const prodBefore = dbState(prod);
    const r = JSON.parse((await must(cli(home, ['refresh', uat.name, '--yes', '--json']))).stdout);
    expect(r).toMatchObject({ source: prod.name, target: uat.name, redacted: rules });
    const source = new Set(emails(prod));
    const after = emails(uat);
    expect(after.length).toBe(source.size);
    expect(after.filter((e) => source.has(e))).toEqual([]);
    expect(dbSql(uat, 'SELECT count(*) FROM public.rental;').trim()).toBe(dbSql(prod, 'SELECT count(*) FROM public.rental;').trim());
    expect(treeState(uat.path)).toEqual(code);
    expect(dbState(prod)).toBe(prodBefore);
  });

  it('a promote whose hook fails is undone: both instances and the staging data as before', async () => {
    await must(cli(home, ['backup', prod.name]));
    await must(cli(home, ['instance', 'set', uat.name, '--hook', 'promote=false']));
    const [u, p] = [await role(home, uat.name), await role(home, prod.name)];
    const data = dbState(uat);
    const r = await cli(home, ['promote', uat.name, '--yes', '--allow-protected']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('promote hook');
    expect(await role(home, uat.name)).toEqual(u);
    expect(await role(home, prod.name)).toEqual(p);
    expect(dbState(uat)).toBe(data);
  });

  it('promote brings the data up from the newest backup, swaps environments and URLs, runs the hook, and holds the old production', async () => {
    dbSql(prod, "UPDATE public.actor SET first_name = 'PROMOTED' WHERE actor_id = 1;");
    await must(cli(home, ['backup', prod.name]));
    await must(cli(home, ['instance', 'set', uat.name, '--hook', 'promote=touch promoted-here']));
    const dry = await must(cli(home, ['--dry-run', 'promote', uat.name]));
    expect(dry.stdout).toContain(`${uat.name} takes environment prod and URL ${prod.url}`);
    expect((await show(home, uat.name)).env).toBe('dev');

    const r = JSON.parse((await must(cli(home, ['promote', uat.name, '--yes', '--allow-protected', '--json']))).stdout);
    expect(r).toMatchObject({ production: uat.name, previous: prod.name, env: 'prod', url: prod.url });
    const [u, p] = [await show(home, uat.name), await show(home, prod.name)];
    expect(u).toMatchObject({ env: 'prod', url: prod.url, protected: true });
    expect(u.relation).toMatchObject({ kind: null, held: null });
    expect(p).toMatchObject({ env: 'dev', url: uat.url });
    expect(p.relation).toMatchObject({ kind: 'staging', of: uat.name });
    expect(p.relation.held).toContain(`${uat.name} was promoted over it`);
    expect(existsSync(join(uat.path, 'promoted-here'))).toBe(true);
    // Production's data, unredacted, as backed up.
    expect(dbSql(uat, 'SELECT first_name FROM public.actor WHERE actor_id = 1;').trim()).toBe('PROMOTED');
    expect(emails(uat)).toEqual(emails(prod));

    // The old production is kept: nothing copies onto it or removes it until it is released.
    const before = dbState(prod);
    const refresh = await cli(home, ['refresh', prod.name, '--yes']);
    expect(refresh.code).toBe(2);
    expect(refresh.stderr).toContain(`${prod.name} is held`);
    expect((await cli(home, ['clone', uat.name, prod.name, '--yes'])).code).toBe(2);
    expect((await cli(home, ['instance', 'remove', prod.name, '--yes'])).code).toBe(2);
    expect(dbState(prod)).toBe(before);
    await must(cli(home, ['instance', 'set', prod.name, '--release-hold']));
    expect((await show(home, prod.name)).relation.held).toBeNull();
    // Its audit record is on the production it took over.
    const run = JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '5']))).stdout).find((x: { command: string; status: string }) => x.command === 'promote' && x.status === 'ok');
    expect(run).toMatchObject({ instance: prod.name });
  });
});

describe('promote on a team inventory: four eyes on the protected production', () => {
  it('needs an approved change request; --why asks for one and changes nothing', async () => {
    const home = await homeWithHosts(['lab1', 'lab2'], 'postgres');
    const prod = await addInstance(home, 'lab1', 'rl4-prod', 'prod');
    const uat = await addInstance(home, 'lab2', 'rl4-uat', 'dev');
    await must(cli(home, ['instance', 'set', uat.name, '--staging-of', prod.name]));
    await must(cli(home, ['backup', prod.name]));
    const r = await cli(home, ['promote', uat.name, '--yes', '--allow-protected']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`promote of ${prod.name} changes protected environment prod: it needs an approved change request`);
    const asked = JSON.parse((await must(cli(home, ['promote', uat.name, '--yes', '--allow-protected', '--why', 'the production machine is down', '--json']))).stdout);
    expect(asked.change).toMatchObject({ command: 'promote', instance: prod.name, status: 'pending' });
    expect(asked.change.plan).toContain(`Run ${uat.name}'s promote hook (DNS, proxy)`);
    expect((await show(home, uat.name)).env).toBe('dev');
    expect((await show(home, prod.name)).env).toBe('prod');
  });
});
