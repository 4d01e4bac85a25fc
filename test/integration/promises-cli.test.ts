import { execa } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, addInstance, asLabUser, cli, dbState, homeWithHosts, lab, must, newHome, sql, treeState } from '../helpers.js';

// What the README promises and no other test checked (issue 10, item 6), each against the real lab
// through bin/opsdeck, as a user would see it.

const l = lab();
const lastRun = async (home: string, instance: string) => JSON.parse((await must(cli(home, ['runs', '--json', '--limit', '1', '--instance', instance]))).stdout)[0];

// Split from promises.test.ts so that workers run them side by side.

describe('clone --code-only', () => {
  it("makes the target's tree the source's, keeps its local files, and leaves its database untouched", async () => {
    const home = await homeWithHosts(['lab1', 'lab2']);
    const src = await addInstance(home, 'lab1', 'pr-code-src', 'dev', { version: 'v2.0.0' });
    const dst = await addInstance(home, 'lab2', 'pr-code-dst', 'dev');
    await must(cli(home, ['instance', 'set', 'pr-code-dst', '--local', 'config/local.env']));
    asLabUser('sh', ['-c', 'echo only-in-source > "$1/extra.txt"', 'sh', src.path]);
    sql(dst.db, `SET ROLE ${dst.role}; INSERT INTO notes (body) VALUES ('the target keeps this');`);
    const srcFiles = treeState(src.path);
    const srcDb = dbState(src.db);
    const dstDb = dbState(dst.db);
    const dstLocal = readFileSync(join(dst.path, 'config', 'local.env'), 'utf8');

    const r = await cli(home, ['clone', 'pr-code-src', 'pr-code-dst', '--code-only', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/pr-code-dst is now a copy of pr-code-src/);

    const { 'config/local.env': local, ...dstRest } = treeState(dst.path);
    const { 'config/local.env': _srcLocal, ...srcRest } = srcFiles;
    expect(dstRest).toEqual(srcRest);
    expect(local).toBeDefined();
    expect(readFileSync(join(dst.path, 'config', 'local.env'), 'utf8')).toBe(dstLocal);
    expect(dbState(dst.db)).toEqual(dstDb);
    expect(treeState(src.path)).toEqual(srcFiles);
    expect(dbState(src.db)).toEqual(srcDb);
    expect(await fetch(dst.url).then((x) => x.text())).toContain('version v2.0.0');
  });
});

describe('runs ID', () => {
  it("shows a run's steps and how each ended, in text and --json; an unknown id is exit 2", async () => {
    const home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'pr-runs', 'dev');
    // One run that succeeds, one that fails at its health check and is rolled back.
    await must(cli(home, ['backup', 'pr-runs']));
    const ok = await lastRun(home, 'pr-runs');
    await must(cli(home, ['instance', 'set', 'pr-runs', '--branch', 'broken-health', '--hook', 'migrate=bin/migrate', '--health-text', 'Sample app']));
    expect((await cli(home, ['update', 'pr-runs', '--yes'])).code).toBe(1);
    const failed = await lastRun(home, 'pr-runs');
    expect(failed).toMatchObject({ command: 'update', status: 'rolled-back', failedStep: 'health' });

    const text = await must(cli(home, ['runs', String(ok.id)]));
    expect(text.stdout).toMatch(new RegExp(`^run ${ok.id}: backup pr-runs — ok\\n  by \\S+ from \\S+ at \\S+, \\d+ ms`));
    expect(text.stdout).toMatch(/\n {2}done {8}Back up the code tree and the database/);

    const json = JSON.parse((await must(cli(home, ['runs', String(failed.id), '--json']))).stdout);
    expect(json).toMatchObject({ id: failed.id, command: 'update', instance: 'pr-runs', status: 'rolled-back', failedStep: 'health' });
    // Each step as it ended, and the undo of each done step that has one.
    const steps = (json.steps as { name: string; status: string }[]).map((s) => `${s.name} ${s.status}`);
    expect(steps).toEqual(expect.arrayContaining(['checkout done', 'migrate done', 'health failed', 'checkout undone', 'migrate undone', 'maintenance-on undone']));
    // In the order they happened: the undos after the failure that caused them, newest first.
    expect(steps.indexOf('health failed')).toBeLessThan(steps.indexOf('migrate undone'));
    expect(steps.indexOf('migrate undone')).toBeLessThan(steps.indexOf('checkout undone'));
    const failedText = (await must(cli(home, ['runs', String(failed.id)]))).stdout;
    expect(failedText).toMatch(new RegExp(`^run ${failed.id}: update pr-runs — rolled-back`));
    expect(failedText).toMatch(/error: .*health check of pr-runs failed/);
    expect(failedText).toMatch(/\n {2}failed {6}Check the site answers/);
    expect(failedText).toMatch(/\n {2}undone {6}undo: Fetch and check out the new code/);

    const none = await cli(home, ['runs', '999999']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no run with id 999999[\s\S]*fix: list runs with: opsdeck runs/);
  });
});

describe('settings', () => {
  it('lists the settings, changes one, and refuses a bad key or value naming the fix', async () => {
    const DEFAULTS = {
      storeRepository: '',
      connectTimeoutMs: 15000,
      refreshMs: 3000,
      inventory: '',
      storeCopies: [],
      treeMirrors: false,
      storeLockWait: '10m',
      storeCopyRetention: {},
      healthWait: '5s',
    };
    const home = newHome();
    const list = await must(cli(home, ['settings']));
    expect(list.stdout).toMatch(/^storeRepository\s+\(default\)$/m);
    expect(list.stdout).toMatch(/^connectTimeoutMs\s+15000$/m);
    expect(list.stdout).toMatch(/^refreshMs\s+3000$/m);
    expect(list.stdout).toMatch(/^healthWait\s+5s$/m);

    const set = await must(cli(home, ['settings', 'refreshMs', '5000']));
    expect(set.stdout).toMatch(/^refreshMs\s+5000$/m);
    expect(JSON.parse((await must(cli(home, ['settings', '--json']))).stdout)).toEqual({ ...DEFAULTS, refreshMs: 5000 });

    for (const [args, message, fix] of [
      [['refreshMs', 'fast'], /invalid refreshMs "fast"/, /fix: a whole number of milliseconds from 500 to 600000/],
      [['refreshMs', '10'], /invalid refreshMs "10"/, /fix: a whole number of milliseconds from 500 to 600000/],
      [['colour', 'blue'], /unknown setting "colour"/, /fix: the settings are: storeRepository, connectTimeoutMs, refreshMs/],
      [['connectTimeoutMs'], /give a value for connectTimeoutMs/, /fix: for example: opsdeck settings connectTimeoutMs/],
    ] as const) {
      const r = await cli(home, ['settings', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(fix);
    }
    // Nothing the refusals touched changed.
    expect(JSON.parse((await must(cli(home, ['settings', '--json']))).stdout)).toEqual({ ...DEFAULTS, refreshMs: 5000 });
  });

  it('refuses to move the store once backups are recorded in it', async () => {
    const home = await homeWithHosts(['lab1']);
    await addInstance(home, 'lab1', 'pr-settings', 'dev');
    await must(cli(home, ['backup', 'pr-settings']));
    const r = await cli(home, ['settings', 'storeRepository', '/srv/elsewhere']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/backups are recorded in the current store[\s\S]*fix: set it before the first backup/);
    expect(JSON.parse((await must(cli(home, ['settings', '--json']))).stdout).storeRepository).toBe('');
  });
});

describe('a host found in ~/.ssh/known_hosts', () => {
  const h = l.hosts[0];
  const pub = (name: string) =>
    readFileSync(join(l.dir, 'hosts', name, 'ssh_host_ed25519_key.pub'), 'utf8')
      .split(' ')
      .slice(0, 2)
      .join(' ');
  /** A HOME whose ~/.ssh/known_hosts lists lab1 (port 2222 form) with the key of `keyOf`. */
  const homeKnowing = (keyOf: string) => {
    const userHome = newHome();
    mkdirSync(join(userHome, '.ssh'), { mode: 0o700 });
    writeFileSync(join(userHome, '.ssh', 'known_hosts'), `[${h.address}]:${h.port} ${pub(keyOf)}\n`);
    return userHome;
  };
  // Not the helper's cli(): that one turns known_hosts off. No terminal and no --yes: nothing to prompt with.
  const addHost = (home: string, userHome: string) =>
    execa(BIN, ['--home', home, 'host', 'add', 'known1', '--address', h.address, '--port', String(h.port), '--user', l.user, '--key', l.keyFile, '--json'], {
      reject: false,
      env: { HOME: userHome, OPSDECK_KNOWN_HOSTS: undefined },
      stdin: 'ignore',
      timeout: 120_000,
    });

  it('is trusted without a prompt and its key pinned', async () => {
    const home = newHome();
    const r = await addHost(home, homeKnowing('lab1'));
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(JSON.parse(String(r.stdout))).toMatchObject({ name: 'known1', hostKey: h.fingerprint });
    await must(cli(home, ['host', 'check', 'known1']));
  });

  it('listed with another key: refused, naming the file and the fix, nothing added', async () => {
    const home = newHome();
    const userHome = homeKnowing('lab2');
    const r = await addHost(home, userHome);
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toContain(`host known1 offered key ${h.fingerprint}, which differs from ${join(userHome, '.ssh', 'known_hosts')} line 1: refused`);
    expect(String(r.stderr)).toMatch(/fix: verify the key on the host, then fix known_hosts or pass --fingerprint/);
    expect(JSON.parse((await must(cli(home, ['host', 'list', '--json']))).stdout)).toEqual([]);
  });
});
