import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { addInstance, asLabUser, cli, dbState, homeWithHosts, lab, must, sql, treeState } from '../helpers.js';
import { ownRepo, page } from './release-repo.js';

// Release directories, rollback and update --lag (issue 13, items 1 and 5), against the lab through
// bin/opsdeck. Each test has its own copy of the sample app's repository, so the commits it adds
// (and their dates) touch no other test. Conversions cut short and update --lag are in
// releases-cut.test.ts: independent of these, so a second worker runs them meanwhile.

const l = lab();
const root = l.hosts[0].root;
const RELEASE = /^\d{8}T\d{6}Z-[0-9a-f]{10}$/;

/**
 * One request on a connection of its own (no keep-alive: a reused socket the server just closed is
 * a client race, not an answer): the status, or the error in words, which counts as not 200.
 */
const answer = (url: string) =>
  new Promise<number | string>((resolve) => {
    get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 'no status'));
    }).on('error', (e) => resolve(`error: ${e.message}`));
  });

const releasesOf = (path: string) =>
  readdirSync(`${path}.releases`)
    .filter((n) => RELEASE.test(n))
    .sort();
const liveOf = (path: string) => readlinkSync(path).split('/').pop()!;
const json = async (home: string, args: string[]) => JSON.parse((await must(cli(home, [...args, '--json']))).stdout);
/** Everything release mode keeps on the host: the link, every release (with .git), shared/. */
const releaseState = (path: string) => ({ link: readlinkSync(path), releases: treeState(`${path}.releases`), shared: treeState(`${path}.shared`) });

describe('release directories', () => {
  let home: string;
  let repo: ReturnType<typeof ownRepo>;
  let i: Awaited<ReturnType<typeof addInstance>>;
  const reloads = join(root, 'rl-up.reloads');
  const reloadCount = () => (existsSync(reloads) ? readFileSync(reloads, 'utf8').split('\n').filter(Boolean).length : 0);
  let v1: string;

  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    repo = ownRepo('rl-repo');
    // What an earlier run on this lab left beside the path would be refused by the conversion.
    asLabUser('rm', ['-rf', join(root, 'rl-up.releases'), join(root, 'rl-up.shared')]);
    i = await addInstance(home, 'lab1', 'rl-up', 'dev');
    asLabUser('git', ['-C', i.path, 'remote', 'set-url', 'origin', repo.url]);
    v1 = asLabUser('git', ['-C', i.path, 'rev-parse', 'HEAD']).trim();
    asLabUser('rm', ['-f', reloads]);
    await must(
      cli(home, [
        'instance',
        'set',
        'rl-up',
        '--releases',
        '3',
        '--local',
        'config/local.env',
        '--shared',
        'uploads',
        '--hook',
        'migrate=bin/migrate',
        '--hook',
        `reload=sh -c "echo reloaded >> ${reloads}"`,
        '--health-text',
        'Sample app',
      ]),
    );
  });

  it('the first update converts the instance; a failed health check undoes it all: a directory again, tree and database exactly as before', async () => {
    // A release that migrates, then serves nothing.
    repo.commit('rl-broken', v1, { 'index.html': null, 'migrations/002.sql': 'CREATE TABLE before_the_crash (id int);\n' });
    await must(cli(home, ['instance', 'set', 'rl-up', '--branch', 'rl-broken']));
    sql(i.db, `SET ROLE ${i.role}; INSERT INTO notes (body) VALUES ('before the update');`);
    const files = treeState(i.path);
    const db = dbState(i.db);

    const r = await cli(home, ['update', 'rl-up', '--yes']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/health check of rl-up failed.*rolled back/);
    expect(lstatSync(i.path).isDirectory()).toBe(true);
    expect(treeState(i.path)).toEqual(files);
    expect(dbState(i.db)).toEqual(db);
    expect(existsSync(`${i.path}.releases`)).toBe(false);
    expect(existsSync(`${i.path}.shared`)).toBe(false);
    // Switched in, reloaded, switched back, reloaded again.
    expect(reloadCount()).toBe(2);
    const steps = (await json(home, ['runs', String((await json(home, ['runs', '--limit', '1', '--instance', 'rl-up']))[0].id)])).steps.map(
      (s: { name: string; status: string }) => `${s.name} ${s.status}`,
    );
    expect(steps).toEqual(expect.arrayContaining(['convert done', 'build done', 'switch done', 'health failed', 'switch undone', 'build undone', 'convert undone']));
  });

  it('converts on the next update: the path links to a release, local and shared paths live in shared/', async () => {
    const local = readFileSync(join(i.path, 'config', 'local.env'), 'utf8');
    const c1 = repo.commit('rl-main', v1, { 'index.html': page('release one') });
    await must(cli(home, ['instance', 'set', 'rl-up', '--branch', 'rl-main']));
    const r = await json(home, ['update', 'rl-up', '--yes']);
    expect(r).toMatchObject({ instance: 'rl-up', from: v1, to: c1, commits: 1 });
    expect(r.release).toMatch(RELEASE);

    expect(lstatSync(i.path).isSymbolicLink()).toBe(true);
    expect(readlinkSync(i.path)).toBe(`rl-up.releases/${r.release}`);
    // The first release is the old directory, the second the new code.
    expect(releasesOf(i.path)).toHaveLength(2);
    expect(lstatSync(join(i.path, 'config', 'local.env')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(i.path, 'config', 'local.env'), 'utf8')).toBe(local);
    expect(readFileSync(join(`${i.path}.shared`, 'config', 'local.env'), 'utf8')).toBe(local);
    expect(lstatSync(join(`${i.path}.shared`, 'uploads')).isDirectory()).toBe(true);
    expect(await (await fetch(i.url)).text()).toContain('release one');
    expect(reloadCount()).toBe(3);
  });

  it('an update with no migration pending: the site answers 200 to every request, polled every 50 ms through the whole update', async () => {
    const c2 = repo.commit('rl-main', 'rl-main', { 'index.html': page('release two') });
    let stop = false;
    const answers: (number | string)[] = [];
    const poll = (async () => {
      while (!stop) {
        answers.push(await answer(i.url));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const r = await cli(home, ['update', 'rl-up', '--yes', '--json']);
    stop = true;
    await poll;
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ to: c2 });
    expect(answers.length).toBeGreaterThan(5);
    expect(answers.filter((s) => s !== 200)).toEqual([]);
    expect(await (await fetch(i.url)).text()).toContain('release two');
    expect(releasesOf(i.path)).toHaveLength(3);
  });

  it('a failed health check after the switch puts the old release back: the releases, shared/ and the database exactly as before', async () => {
    repo.commit('rl-broken', 'rl-main', { 'index.html': null, 'migrations/002.sql': 'CREATE TABLE before_the_crash (id int);\n' });
    await must(cli(home, ['instance', 'set', 'rl-up', '--branch', 'rl-broken']));
    const before = releaseState(i.path);
    const db = dbState(i.db);
    const r = await cli(home, ['update', 'rl-up', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/health check of rl-up failed.*rolled back/);
    expect(releaseState(i.path)).toEqual(before);
    expect(dbState(i.db)).toEqual(db);
    expect(await (await fetch(i.url)).text()).toContain('release two');
    await must(cli(home, ['instance', 'set', 'rl-up', '--branch', 'rl-main']));
  });

  it('rollback goes back one release in one switch, and --to goes forward again; the database stays when its schema is the same', async () => {
    const [, one, two] = releasesOf(i.path);
    expect(liveOf(i.path)).toBe(two);
    const back = await json(home, ['rollback', 'rl-up', '--yes']);
    expect(back).toMatchObject({ instance: 'rl-up', from: two, to: one, database: null });
    expect(liveOf(i.path)).toBe(one);
    expect(await (await fetch(i.url)).text()).toContain('release one');

    const fwd = await json(home, ['rollback', 'rl-up', '--to', two, '--yes']);
    expect(fwd).toMatchObject({ from: one, to: two, database: null });
    expect(await (await fetch(i.url)).text()).toContain('release two');

    const none = await cli(home, ['rollback', 'rl-up', '--to', '20200101T000000Z-0000000000', '--yes']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/has no release 20200101T000000Z-0000000000[\s\S]*its releases: /);
  });

  it('keeps the newest N releases; a rollback over a migration loads the database the release ran with', async () => {
    const before = releasesOf(i.path);
    // A local file declared after the conversion: the new release finds it in shared/, copied from the live one.
    asLabUser('sh', ['-c', 'echo "SECRET=kept" > "$1/config/extra.env"', 'sh', i.path]);
    await must(cli(home, ['instance', 'set', 'rl-up', '--local', 'config/extra.env']));
    sql(i.db, `SET ROLE ${i.role}; INSERT INTO notes (body) VALUES ('before the migration');`);
    const db = dbState(i.db);
    repo.commit('rl-main', 'rl-main', { 'index.html': page('release three'), 'migrations/002.sql': 'CREATE TABLE from_three (id int);\n' });
    const r = await json(home, ['update', 'rl-up', '--yes']);
    // Three kept: the oldest (the converted directory) went once the switch succeeded.
    expect(releasesOf(i.path)).toEqual([...before.slice(1), r.release]);
    expect(sql(i.db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'from_three'").trim()).toBe('1');
    expect(lstatSync(join(i.path, 'config', 'extra.env')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(i.path, 'config', 'extra.env'), 'utf8')).toBe('SECRET=kept\n');

    const back = await json(home, ['rollback', 'rl-up', '--yes']);
    expect(back).toMatchObject({ from: r.release, to: before[2], database: r.backup });
    expect(back.safetyBackup).toBeTruthy();
    expect(dbState(i.db)).toEqual(db);
    expect(await (await fetch(i.url)).text()).toContain('release two');
  });

  it('after a rollback and an update, a plain rollback goes back to the release live just before the update; pruning never drops that one', async () => {
    const [, two] = releasesOf(i.path);
    expect(liveOf(i.path)).toBe(two);
    sql(i.db, `SET ROLE ${i.role}; INSERT INTO notes (body) VALUES ('before release 4a');`);
    const db = dbState(i.db);
    repo.commit('rl-main', 'rl-main', { 'index.html': page('release 4a') });
    const four = await json(home, ['update', 'rl-up', '--yes']);
    // Not the release built before four (three): the one that was live when four went live.
    const back = await json(home, ['rollback', 'rl-up', '--yes']);
    expect(back).toMatchObject({ from: four.release, to: two, database: four.backup });
    expect(dbState(i.db)).toEqual(db);
    expect(await (await fetch(i.url)).text()).toContain('release two');

    // Two is the oldest release now, and live before the next one: pruning to 3 keeps it and drops three.
    repo.commit('rl-main', 'rl-main', { 'index.html': page('release 5a') });
    const five = await json(home, ['update', 'rl-up', '--yes']);
    expect(releasesOf(i.path)).toEqual([two, four.release, five.release]);
    const again = await json(home, ['rollback', 'rl-up', '--yes']);
    expect(again).toMatchObject({ from: five.release, to: two, database: five.backup });
    expect(await (await fetch(i.url)).text()).toContain('release two');
  });

  it('a backup holds the live release and shared/: a restore brings both back exactly, as a new release; verify and export hold shared/ too', async () => {
    const shared = `${i.path}.shared`;
    asLabUser('sh', ['-c', 'mkdir -p "$1/uploads/2026" && printf photo > "$1/uploads/2026/cat.jpg"', 'sh', shared]);
    const b = await json(home, ['backup', 'rl-up']);
    const was = liveOf(i.path);
    const before = { tree: treeState(i.path), shared: treeState(shared), db: dbState(i.db) };
    // The host loses the upload, the local file changes, a stray file lands in the release, a row is added.
    asLabUser('rm', ['-rf', join(shared, 'uploads', '2026')]);
    asLabUser('sh', ['-c', 'echo changed > "$1"', 'sh', join(shared, 'config', 'local.env')]);
    asLabUser('sh', ['-c', 'echo stray > "$1/stray.txt"', 'sh', i.path]);
    sql(i.db, `SET ROLE ${i.role}; INSERT INTO notes (body) VALUES ('after the backup');`);

    // What a restore killed after moving shared/ aside left: maybe the only copy of it, never deleted by the next restore.
    const aside = `${shared}.opsdeck-previous`;
    asLabUser('sh', ['-c', 'rm -rf "$1" && mkdir -p "$1/uploads" && printf only > "$1/uploads/only.jpg"', 'sh', aside]);
    const asideBefore = treeState(aside);

    const r = await json(home, ['restore', 'rl-up', '--backup', b.id, '--yes']);
    expect(r).toMatchObject({ backup: b.id, target: 'rl-up' });
    expect(treeState(aside)).toEqual(asideBefore);
    asLabUser('rm', ['-rf', aside]);
    expect(liveOf(i.path)).toMatch(/^\d{8}T\d{6}Z-restored$/);
    expect(treeState(i.path)).toEqual(before.tree);
    expect(treeState(shared)).toEqual(before.shared);
    expect(readFileSync(join(i.path, 'uploads', '2026', 'cat.jpg'), 'utf8')).toBe('photo');
    expect(dbState(i.db)).toEqual(before.db);
    expect(await (await fetch(i.url)).text()).toContain('release two');

    await must(cli(home, ['backups', 'verify', b.id]));
    const file = join(home, 'rl-up-export.tar');
    await must(cli(home, ['backups', 'export', b.id, file]));
    const member = execFileSync('tar', ['-tf', file])
      .toString()
      .split('\n')
      .find((n) => n.endsWith('code.tar'))!;
    const inCode = execFileSync('tar', ['-tf', '-'], { input: execFileSync('tar', ['-xOf', file, member], { maxBuffer: 256 << 20 }), maxBuffer: 64 << 20 })
      .toString()
      .split('\n');
    expect(inCode).toEqual(expect.arrayContaining(['./.opsdeck-shared/uploads/2026/cat.jpg', './.opsdeck-shared/config/local.env', './index.html']));

    // The release live before the restore is one plain rollback away, with the database as it is.
    const back = await json(home, ['rollback', 'rl-up', '--yes']);
    expect(back).toMatchObject({ to: was, database: null });
  });

  it("a copy of a release-mode instance onto one in place gets the shared files themselves, not links into the source's shared/", async () => {
    const c = await addInstance(home, 'lab1', 'rl-copy', 'dev');
    await must(cli(home, ['clone', 'rl-up', 'rl-copy', '--yes']));
    expect(lstatSync(c.path).isDirectory()).toBe(true);
    expect(lstatSync(join(c.path, 'uploads')).isDirectory()).toBe(true);
    expect(readFileSync(join(c.path, 'uploads', '2026', 'cat.jpg'), 'utf8')).toBe('photo');
    expect(lstatSync(join(c.path, 'config', 'local.env')).isFile()).toBe(true);
    expect(readFileSync(join(c.path, 'config', 'local.env'), 'utf8')).toBe(readFileSync(join(`${i.path}.shared`, 'config', 'local.env'), 'utf8'));
    expect(existsSync(join(c.path, '.opsdeck-shared'))).toBe(false);
    expect(Object.entries(treeState(c.path)).filter(([, v]) => v.includes('rl-up.shared'))).toEqual([]);
    expect(await (await fetch(c.url)).text()).toContain('release two');
  });

  it('--releases 0 makes the instance a directory again at its next update, local files back inside it', async () => {
    const local = readFileSync(join(i.path, 'config', 'local.env'), 'utf8');
    repo.commit('rl-main', 'rl-main', { 'index.html': page('release four') });
    await must(cli(home, ['instance', 'set', 'rl-up', '--releases', '0']));
    const up = await must(cli(home, ['update', 'rl-up', '--yes']));
    expect(lstatSync(i.path).isDirectory()).toBe(true);
    expect(lstatSync(join(i.path, 'config', 'local.env')).isFile()).toBe(true);
    expect(readFileSync(join(i.path, 'config', 'local.env'), 'utf8')).toBe(local);
    expect(existsSync(`${i.path}.releases`)).toBe(false);
    // config/extra.env was shared after release two was built, and two (live again since the
    // rollback) has its own copy: the shared one is kept and said, never deleted with shared/.
    expect(readdirSync(`${i.path}.shared`, { recursive: true }).sort()).toEqual(['config', 'config/extra.env']);
    expect(up.stderr).toMatch(/still holds files .* they are kept/);
    expect(await (await fetch(i.url)).text()).toContain('release four');
  });
});
