import { writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { hostAddArgs, makeLabInstance } from '../../fixtures/lab.js';
import { Inventory } from '../../inventory/index.js';
import { BACKENDS, cli, lab, must, newHome, repinHostKey, TEAM_ADMIN } from '../helpers.js';

interface Run {
  id: number;
  command: string;
  instance: string | null;
  status: string;
  osUser: string;
  origin: string;
  host: string | null;
  dbRole: string | null;
  params: Record<string, unknown>;
}

// Secrets the commands below are given: none may reach the audit trail, in any form.
const WEBHOOK_SECRET = 'whsec-audit-7f3a9c1e';
const SMTP_PASSWORD = 'smtp-audit-pw-52be0d';
// A webhook URL whose path is as good as a password (as many are).
const WEBHOOK_URL = 'https://hooks.example/services/T0AUDIT/tok-9d8c7b6a';
// What the audit trail records as "from where": an SSH session's client address.
const FROM = { SSH_CLIENT: '203.0.113.7 50022 22' };

describe.each(BACKENDS)('every change to the inventory is a run in the audit trail (%s)', (backend) => {
  let home: string;
  let dbPassword: string;
  let newPassword: string;
  const runs = async (): Promise<Run[]> => JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '100']))).stdout);

  beforeAll(async () => {
    home = newHome(backend);
    const l = lab();
    const h = l.hosts[0];
    const inst = makeLabInstance(l, h.name, 'audit-one');
    dbPassword = inst.password;
    newPassword = `${inst.password}-rotated`;
    await must(cli(home, ['env', 'add', 'prod', '--protected'], FROM));
    await must(cli(home, ['env', 'set', 'prod', '--max-backup-age', '12h'], FROM));
    await must(cli(home, hostAddArgs(l, h), FROM));
    // The host starts to present another key than the one pinned (here: the pin changes behind its back).
    repinHostKey(home, h.name, l.hosts[1].fingerprint);
    await must(cli(home, ['host', 'trust', h.name, '--fingerprint', h.fingerprint], FROM));
    await must(cli(home, ['instance', 'add', 'audit-one', '--host', h.name, '--path', inst.path, '--env', 'prod', '--db', inst.dbUrl], { ...FROM, OPSDECK_DB_PASSWORD: dbPassword }));
    await must(cli(home, ['instance', 'set', 'audit-one', '--hook', 'migrate=bin/migrate', '--metric', 'files=cmd:ls | wc -l', '--local', 'config/local.env'], FROM));
    await must(cli(home, ['instance', 'set', 'audit-one', '--db-password'], { ...FROM, OPSDECK_DB_PASSWORD: newPassword }));
    await must(cli(home, ['notify', 'webhook', '--url', WEBHOOK_URL], { ...FROM, OPSDECK_WEBHOOK_SECRET: WEBHOOK_SECRET }));
    await must(cli(home, ['notify', 'email', '--smtp', 'smtp://alerts@mail.example:587', '--to', 'oncall@example.com'], { ...FROM, OPSDECK_SMTP_PASSWORD: SMTP_PASSWORD }));
    await must(cli(home, ['notify', 'remove', 'email'], FROM));
    await must(cli(home, ['settings', 'refreshMs', '5000'], FROM));
    const file = join(home, 'other.json');
    writeFileSync(file, JSON.stringify({ format: 'opsdeck-inventory', version: 1, envs: [{ name: 'qa', protected: false, retention: null, maxBackupAge: null }], hosts: [], instances: [] }));
    const imp = await cli(home, ['inventory', 'import', file], FROM);
    expect(imp.code, imp.stderr).toBe(0);
  });

  it('lists each change with who made it and from where, in order', async () => {
    const list = (await runs()).reverse();
    expect(list.map((r) => r.command)).toEqual([
      'env add',
      'env set',
      'host add',
      'host trust',
      'instance add',
      'instance set',
      'instance set',
      'notify webhook',
      'notify email',
      'notify remove',
      'settings',
      'inventory import',
    ]);
    // The database role is the one logged in, as PostgreSQL itself wrote it; SQLite has none.
    const dbRole = backend === 'postgres' ? TEAM_ADMIN.role : null;
    for (const r of list) expect(r, r.command).toMatchObject({ status: 'ok', osUser: userInfo().username, origin: '203.0.113.7', host: hostname(), dbRole });
    expect(list.filter((r) => r.command.startsWith('instance')).map((r) => r.instance)).toEqual(['audit-one', 'audit-one', 'audit-one']);
  });

  it('says what changed: the old and new host key, the hooks, the setting', async () => {
    const l = lab();
    const list = await runs();
    const find = (command: string) => list.find((r) => r.command === command)!;
    expect(find('host trust').params).toMatchObject({ host: l.hosts[0].name, oldFingerprint: l.hosts[1].fingerprint, newFingerprint: l.hosts[0].fingerprint });
    expect(find('host add').params).toMatchObject({ host: l.hosts[0].name, address: l.hosts[0].address, fingerprint: l.hosts[0].fingerprint });
    expect(find('env set').params).toMatchObject({ env: 'prod', maxBackupAge: '12h' });
    expect(find('settings').params).toEqual({ setting: 'refreshMs', value: '5000', previous: 3000 });
    const sets = list.filter((r) => r.command === 'instance set').reverse();
    expect(sets[0].params).toMatchObject({
      instance: 'audit-one',
      hooks: { migrate: ['bin/migrate'] },
      localPaths: ['config/local.env'],
      metrics: [{ name: 'files', kind: 'cmd', source: 'ls | wc -l' }],
    });
    // A password is recorded as the fact that it was set.
    expect(sets[1].params).toEqual({ instance: 'audit-one', dbLogin: 'password set' });
    expect(find('instance add').params).toMatchObject({ name: 'audit-one', dbLogin: 'password set' });
    expect(find('notify webhook').params).toEqual({ kind: 'webhook', urlHost: 'hooks.example', signing: 'secret set' });
    expect(find('notify email').params).toMatchObject({ kind: 'email', to: 'oncall@example.com', login: 'password set' });
    // The password itself was stored, and works: the instance says so.
    expect((await must(cli(home, ['instance', 'show', 'audit-one']))).stdout).toContain('(password stored, encrypted)');
  });

  it('never shows a password or a webhook secret: not in opsdeck runs, not in the runs tables', async () => {
    const secrets = [dbPassword, newPassword, WEBHOOK_SECRET, SMTP_PASSWORD, 'tok-9d8c7b6a'];
    const list = await runs();
    const shown = [JSON.stringify(list), (await must(cli(home, ['runs', '--limit', '100']))).stdout];
    // Each run given a secret, as its own page shows it (params, steps).
    for (const r of list.filter((x) => /^(instance add|instance set|notify)/.test(x.command))) {
      shown.push((await must(cli(home, ['runs', String(r.id)]))).stdout);
      shown.push((await must(cli(home, ['runs', String(r.id), '--json']))).stdout);
    }
    // The tables themselves, on whichever database holds them.
    const inv = new Inventory(home);
    try {
      shown.push(JSON.stringify(inv.db.prepare('SELECT * FROM runs').all()), JSON.stringify(inv.db.prepare('SELECT * FROM run_steps').all()));
    } finally {
      inv.close();
    }
    for (const text of shown) for (const s of secrets) expect(text).not.toContain(s);
  });

  it('records nothing on --dry-run, and a refused change names its fix as before', async () => {
    const before = (await runs()).length;
    const dry = await must(cli(home, ['--dry-run', 'env', 'add', 'scratch']));
    expect(dry.stdout).toContain('would change the inventory: env add');
    expect((await runs()).length).toBe(before);
    expect(JSON.parse((await must(cli(home, ['env', 'list', '--json']))).stdout).map((e: { name: string }) => e.name)).not.toContain('scratch');

    const dup = await cli(home, ['env', 'add', 'prod']);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toContain('opsdeck: environment prod already exists\n  fix: list them with: opsdeck env list');
    // The refused attempt is in the trail too, as failed.
    expect((await runs())[0]).toMatchObject({ command: 'env add', status: 'failed' });
  });
});
