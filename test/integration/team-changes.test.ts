import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { teamRoleNames } from '../../inventory/pg-team-roles.js';
import { addInstance, asLabUser, cli, homeWithHosts, lab, must, newHome, pgAdmin, TEAM_ADMIN, type CliResult } from '../helpers.js';

// Issue 11, item 5: four-eyes changes on a protected environment of a team inventory. Two admins of
// prod, alice and bob: what one asks for, only the other approves; then it runs once, within the window.

const tag = randomBytes(4).toString('hex');
const people = { alice: { role: `alice_c_${tag}`, password: `a-${tag}` }, bob: { role: `bob_c_${tag}`, password: `b-${tag}` } };
type Who = keyof typeof people;
let adminHome: string;
let db: string;
const homes = {} as Record<Who, string>;
const prod = `cp-${tag}`;

const as = (who: Who, args: string[]): Promise<CliResult> => cli(homes[who], args, { OPSDECK_INVENTORY_PASSWORD: people[who].password });
const json = async (who: Who, args: string[]) => JSON.parse((await must(as(who, [...args, '--json']))).stdout);

/** An instance of prod with nothing behind it but a directory: for changes that only touch the inventory. */
async function bare(name: string): Promise<void> {
  const path = join(lab().hosts[0].root, name);
  asLabUser('sh', ['-c', 'mkdir -p -- "$1"', 'sh', path]);
  await must(cli(adminHome, ['instance', 'add', name, '--host', 'lab1', '--path', path, '--env', 'prod']));
}
const exists = async (name: string) => (await cli(adminHome, ['instance', 'show', name])).code === 0;

beforeAll(async () => {
  adminHome = await homeWithHosts(['lab1'], 'postgres');
  const url: string = JSON.parse(readFileSync(join(adminHome, 'settings.json'), 'utf8')).inventory;
  db = url.slice(url.lastIndexOf('/') + 1);
  for (const [who, p] of Object.entries(people) as [Who, { role: string; password: string }][]) {
    pgAdmin(`CREATE ROLE ${p.role} LOGIN PASSWORD '${p.password}'; GRANT ${teamRoleNames(db).user} TO ${p.role};`);
    homes[who] = newHome('sqlite');
    writeFileSync(join(homes[who], 'settings.json'), JSON.stringify({ inventory: url.replace(`//${TEAM_ADMIN.role}@`, `//${p.role}@`) }));
    await must(cli(adminHome, ['team', 'grant', p.role, '--env', 'prod', '--as', 'admin']));
  }
  await addInstance(adminHome, 'lab1', prod, 'prod');
});
afterAll(() => {
  pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE);`);
  pgAdmin(`DROP ROLE IF EXISTS ${teamRoleNames(db).user}, ${teamRoleNames(db).admin};`);
  for (const p of Object.values(people)) pgAdmin(`DROP ROLE IF EXISTS ${p.role};`);
});

describe('four-eyes changes on prod', () => {
  it('an upgrade is first a change request; the requester cannot approve it; another admin does; the same command then runs it, once', async () => {
    const upgrade = ['upgrade', prod, '--to', 'v2.0.0', '--yes', '--allow-protected'];
    const before = (await json('alice', ['instance', 'show', prod])).revision;

    const bare = await as('alice', upgrade);
    expect(bare.code, bare.stderr).toBe(2);
    expect(bare.stderr).toContain(`upgrade of ${prod} changes protected environment prod: it needs an approved change request`);

    const asked = await json('alice', [...upgrade, '--why', 'the security fix in 2.0']);
    const id: number = asked.change.id;
    expect(asked.change).toMatchObject({ command: 'upgrade', instance: prod, env: 'prod', status: 'pending', requestedBy: people.alice.role, why: 'the security fix in 2.0' });
    expect(asked.change.plan.length).toBeGreaterThan(3);
    expect(asked.change.backout).toMatch(/^any failure undoes, newest first: /);
    expect((await json('alice', ['instance', 'show', prod])).revision).toBe(before);

    const own = await as('alice', ['change', 'approve', String(id)]);
    expect(own.code).toBe(2);
    expect(own.stderr).toContain(`change ${id} was asked for by ${people.alice.role} itself: another admin of prod must decide it (four eyes)`);
    // The database refuses it too, with raw SQL as alice.
    const inv = new Inventory(homes.alice, { password: people.alice.password });
    try {
      expect(() => inv.db.prepare('SELECT decide_change(?, true, NULL)').get(id)).toThrow('another admin of prod must decide it');
      expect(() => inv.db.prepare("UPDATE change_requests SET status = 'approved'").run()).toThrow(/permission denied for table change_requests/);
    } finally {
      inv.close();
    }
    // Even the schema's owner cannot make requester and approver one (the CHECK).
    expect(() => pgAdmin(`UPDATE opsdeck.change_requests SET decided_by = requested_by WHERE id = ${id}`, db)).toThrow();

    await must(as('bob', ['change', 'approve', String(id)]));
    const ran = await as('alice', upgrade);
    expect(ran.code, ran.stderr).toBe(0);
    expect((await json('alice', ['instance', 'show', prod])).revision).not.toBe(before);

    const shown = await json('bob', ['change', 'show', String(id)]);
    expect(shown).toMatchObject({ status: 'ran', decidedBy: people.bob.role });
    expect(shown.runs).toHaveLength(1);
    const run = await json('bob', ['runs', String(shown.runs[0])]);
    expect(run).toMatchObject({ command: 'upgrade', status: 'ok', dbRole: people.alice.role, params: { change: id } });

    // Used once: the same command again is a new change.
    const again = await as('alice', upgrade);
    expect(again.code).toBe(2);
    // The audit trail: the request, the approval, the run, each under its role.
    // (alice's own approval is there too, refused.)
    const runs = (await json('bob', ['runs', '--limit', '20'])) as { command: string; dbRole: string; status: string; params: { change?: number } }[];
    expect(runs.filter((r) => r.params.change === id).map((r) => `${r.command} ${r.dbRole} ${r.status}`)).toEqual([
      `upgrade ${people.alice.role} ok`,
      `change approve ${people.bob.role} ok`,
      `change approve ${people.alice.role} failed`,
      `change request ${people.alice.role} ok`,
    ]);
  });

  it('a rejected change does not run, nor does one whose approval expired', async () => {
    const rej = `cr-${tag}`;
    const exp = `ce-${tag}`;
    await bare(rej);
    await bare(exp);
    const remove = (name: string) => ['instance', 'remove', name, '--yes'];

    const r = (await json('alice', [...remove(rej), '--why', 'retired'])).change.id;
    const noWhy = await as('bob', ['change', 'reject', String(r)]);
    expect(noWhy.code).toBe(2);
    expect(noWhy.stderr).toContain('a rejection says why');
    expect((await json('bob', ['change', 'reject', String(r), '--why', 'still in use by billing'])).change).toMatchObject({ status: 'rejected', decisionWhy: 'still in use by billing' });
    expect((await as('alice', remove(rej))).code).toBe(2);
    const runRejected = await as('alice', ['change', 'run', String(r)]);
    expect(runRejected.code).toBe(2);
    expect(runRejected.stderr).toContain(`change ${r} is rejected, not approved`);
    expect(await exists(rej)).toBe(true);

    const e = (await json('alice', [...remove(exp), '--why', 'retired'])).change.id;
    await must(as('bob', ['change', 'approve', String(e)]));
    // A day and more later (the window is 24 hours):
    pgAdmin(`UPDATE opsdeck.change_requests SET decided_at = to_char(now() - interval '25 hours', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') WHERE id = ${e}`, db);
    expect((await json('alice', ['change', 'list', '--all'])).find((c: { id: number }) => c.id === e)).toMatchObject({ status: 'expired' });
    const late = await as('alice', remove(exp));
    expect(late.code).toBe(2);
    expect(late.stderr).toContain(`change ${e} is approved, but its approval expired`);
    expect((await as('alice', ['change', 'run', String(e)])).code).toBe(2);
    expect(await exists(exp)).toBe(true);
  });

  it('change run runs the approved command line; a standing change lets cron run its command on every instance of prod', async () => {
    const one = `c1-${tag}`;
    await bare(one);
    const id = (await json('alice', ['instance', 'remove', one, '--yes', '--why', 'moved to the new cluster'])).change.id;
    await must(as('bob', ['change', 'approve', String(id)]));
    const r = await as('bob', ['change', 'run', String(id)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`instance ${one} removed from the inventory`);
    expect(await exists(one)).toBe(false);
    expect(await json('alice', ['change', 'show', String(id)])).toMatchObject({ status: 'ran' });

    const cron = [`cs1-${tag}`, `cs2-${tag}`];
    for (const n of cron) await bare(n);
    const s = (await json('alice', ['change', 'standing', 'instance remove', '--env', 'prod', '--why', 'the nightly clean-up of preview instances'])).change.id;
    expect((await as('alice', ['instance', 'remove', cron[0], '--yes'])).code).toBe(2);
    await must(as('bob', ['change', 'approve', String(s)]));
    for (const n of cron) await must(as('alice', ['instance', 'remove', n, '--yes']));
    expect((await json('bob', ['change', 'show', String(s)])).runs).toHaveLength(2);
    // Ended by a rejection: the next run needs a change again.
    await must(as('bob', ['change', 'reject', String(s), '--why', 'clean-up moved to staging']));
    await bare(`cs3-${tag}`);
    expect((await as('alice', ['instance', 'remove', `cs3-${tag}`, '--yes'])).code).toBe(2);
  });
});
