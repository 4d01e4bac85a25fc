import Database from 'better-sqlite3';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { addInstance, asLabUser, cli, cutShortConversion, homeWithHosts, lab, must, sql, treeState } from '../helpers.js';

// opsdeck recover on what release mode leaves when a run is killed (issue 13, item 1): a conversion
// cut short (its journal PATH.releases/.converting), and a restore as a release cut short between
// its renames of shared/. The states are made on the host as the kill leaves them. And another
// instance's tree onto a release-mode instance (clone, restore --to): a new release of it.

const l = lab();
const root = l.hosts[0].root;
const page = (v: string) => `<html><body><h1>Sample app</h1><p>${v}</p></body></html>\n`;
const json = async (home: string, args: string[]) => JSON.parse((await must(cli(home, [...args, '--json']))).stdout);
/** Every name beside the instance's path (its releases, shared/, and anything a run left there). */
const beside = (name: string) =>
  readdirSync(root)
    .filter((n) => n === name || n.startsWith(`${name}.`))
    .sort();

/** A release-mode-ready instance: its own copy of the lab app's repository, with a commit on `branch` to update to. */
async function instanceWithRepo(name: string, shared: string[], inHome?: string) {
  const home = inHome ?? (await homeWithHosts(['lab1']));
  const url = join(root, `${name}-repo.git`);
  const work = join(root, `${name}-repo-work`);
  // Whatever an earlier run on this lab left beside the path (releases, shared/, a cut-short restore's names).
  asLabUser('sh', ['-c', 'rm -rf -- "$1" "$2" "$3".*', 'sh', url, work, join(root, name)]);
  asLabUser('git', ['clone', '-q', '--bare', l.appRepo, url]);
  asLabUser('git', ['clone', '-q', url, work]);
  const i = await addInstance(home, 'lab1', name, 'dev');
  asLabUser('git', ['-C', i.path, 'remote', 'set-url', 'origin', url]);
  const v1 = asLabUser('git', ['-C', i.path, 'rev-parse', 'HEAD']).trim();
  const git = ['git', '-C', work, '-c', 'user.name=lab', '-c', 'user.email=lab@localhost'];
  asLabUser(git[0], [...git.slice(1), 'checkout', '-q', '-B', name, v1]);
  asLabUser('sh', ['-c', 'printf "%s" "$2" > "$1"', 'sh', join(work, 'index.html'), page('converted')]);
  asLabUser(git[0], [...git.slice(1), 'commit', '-q', '-am', 'converted']);
  asLabUser(git[0], [...git.slice(1), 'push', '-q', 'origin', `${name}:${name}`]);
  await must(cli(home, ['instance', 'set', name, '--releases', '2', '--local', 'config/local.env', ...shared.flatMap((s) => ['--shared', s]), '--branch', name, '--health-text', 'Sample app']));
  return { home, i, v1 };
}

describe('opsdeck recover, release mode', () => {
  it('undoes a conversion to release mode a killed run left half-done: the tree exactly as before it, audited; a second recover finds nothing to do', async () => {
    const { home, i, v1 } = await instanceWithRepo('rr-conv', ['uploads']);
    const before = treeState(i.path);
    // As a run killed inside the conversion leaves it: the tree moved and linked, config/local.env
    // moved and uploads/ made in shared/, the journal beside.
    const id = cutShortConversion(i.path, v1);

    const dry = await must(cli(home, ['recover', 'rr-conv', '--dry-run']));
    expect(dry.stdout).toMatch(/would undo the conversion to release mode cut short \(release 20260101T000000Z-[0-9a-f]+\)/);
    expect(lstatSync(i.path).isSymbolicLink()).toBe(true);

    const r = await json(home, ['recover', 'rr-conv']);
    expect(r).toMatchObject({ instance: 'rr-conv', run: null, conversionUndone: id, restoredReleases: [] });
    expect(lstatSync(i.path).isDirectory()).toBe(true);
    expect(treeState(i.path)).toEqual(before);
    expect(beside('rr-conv')).toEqual(['rr-conv']);
    const runs = await json(home, ['runs', '--instance', 'rr-conv', '--limit', '1']);
    expect(runs[0]).toMatchObject({ command: 'recover', status: 'ok' });

    const again = await cli(home, ['recover', 'rr-conv']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/rr-conv is not half-restored: .*nothing on lab1 is left of a conversion to release mode or a restore cut short/);
    // In place again, the next update converts afresh.
    await must(cli(home, ['update', 'rr-conv', '--yes']));
    expect(lstatSync(i.path).isSymbolicLink()).toBe(true);
    expect(await (await fetch(i.url)).text()).toContain('converted');
  });

  it('a restore as a release killed between its renames of shared/: a restore refuses until recover; recover puts shared/ back exactly, the site serves, nothing left beside', async () => {
    const { home, i } = await instanceWithRepo('rr-swap', ['uploads']);
    await must(cli(home, ['update', 'rr-swap', '--yes']));
    const shared = `${i.path}.shared`;
    asLabUser('sh', ['-c', 'printf photo > "$1/uploads/cat.jpg"', 'sh', shared]);
    await must(cli(home, ['backup', 'rr-swap']));
    // Written after the backup: the shared/ the restore is about to replace differs from the backup's.
    asLabUser('sh', ['-c', 'printf later > "$1/uploads/dog.jpg"', 'sh', shared]);
    const live = readlinkSync(i.path);
    const state = { link: live, releases: readdirSync(`${i.path}.releases`).sort(), shared: treeState(shared) };

    // As the kill leaves it: the restored release beside the live one with its record, the backup's
    // shared/ waiting as .opsdeck-incoming-ID, the live shared/ renamed to .opsdeck-previous-ID, the link not switched.
    const id = '20260102T000000Z-restored';
    const liveId = live.split('/').pop()!;
    const previous = readFileSync(`${i.path}.releases/.previous`, 'utf8');
    // The previous-release record as a kill inside the switch leaves it too: naming the live release.
    asLabUser('sh', [
      '-c',
      'cp -a "$1.releases/$2" "$1.releases/$3" && printf "%s" "$4" > "$1.releases/$3.json" && cp -a "$1.shared" "$1.shared.opsdeck-incoming-$3" && rm "$1.shared.opsdeck-incoming-$3/uploads/dog.jpg" && mv -T "$1.shared" "$1.shared.opsdeck-previous-$3" && printf "%s\\n" "$2" > "$1.releases/.previous"',
      'sh',
      i.path,
      liveId,
      id,
      JSON.stringify({ id, revision: '', at: new Date().toISOString(), backup: null, schema: null, from: liveId, previousBefore: previous.trim() }),
    ]);
    expect(existsSync(shared)).toBe(false);

    const backups = () => {
      const inv = new Database(join(home, 'inventory.sqlite'), { readonly: true });
      const n = (inv.prepare('SELECT count(*) AS n FROM backups').get() as { n: number }).n;
      inv.close();
      return n;
    };
    const backupsBefore = backups();
    const refused = await cli(home, ['restore', 'rr-swap', '--yes']);
    expect(refused.code).toBe(1);
    // Refused by the check, before a safety backup (or a database load) was made.
    expect(backups()).toBe(backupsBefore);
    expect(refused.stderr).toMatch(/a restore of rr-swap as release 20260102T000000Z-restored was cut short/);
    expect(refused.stderr).toMatch(/opsdeck recover rr-swap/);
    const noRollback = await cli(home, ['rollback', 'rr-swap', '--yes']);
    expect(noRollback.code).toBe(1);
    expect(noRollback.stderr).toMatch(/a restore of rr-swap as release 20260102T000000Z-restored was cut short/);
    expect(noRollback.stderr).toMatch(/opsdeck recover rr-swap/);
    expect(existsSync(`${shared}.opsdeck-previous-${id}`)).toBe(true);

    const r = await json(home, ['recover', 'rr-swap']);
    expect(r).toMatchObject({ run: null, conversionUndone: null, restoredReleases: [{ id, action: 'undo' }] });
    expect({ link: readlinkSync(i.path), releases: readdirSync(`${i.path}.releases`).sort(), shared: treeState(shared) }).toEqual(state);
    expect(readFileSync(`${i.path}.releases/.previous`, 'utf8')).toBe(previous);
    expect(beside('rr-swap')).toEqual(['rr-swap', 'rr-swap.releases', 'rr-swap.shared']);
    expect(await (await fetch(i.url)).text()).toContain('converted');
    expect((await cli(home, ['recover', 'rr-swap'])).code).toBe(2);

    // Whole again: a restore goes through, and leaves nothing beside either.
    await must(cli(home, ['restore', 'rr-swap', '--yes']));
    expect(readlinkSync(i.path)).toMatch(/-restored$/);
    expect(readdirSync(join(shared, 'uploads'))).toEqual(['cat.jpg']);
  });

  it('a restore as a release killed after its switch: recover finishes it, shared/ exactly the backup side, the one it replaced gone', async () => {
    const { home, i } = await instanceWithRepo('rr-done', ['uploads']);
    await must(cli(home, ['update', 'rr-done', '--yes']));
    const shared = `${i.path}.shared`;
    asLabUser('sh', ['-c', 'printf photo > "$1/uploads/cat.jpg" && printf later > "$1/uploads/dog.jpg"', 'sh', shared]);
    const liveId = readlinkSync(i.path).split('/').pop()!;
    const id = '20260102T000000Z-restored';
    // Both renames done and the link switched; only the clean-up of the replaced shared/ was left.
    asLabUser('sh', [
      '-c',
      'b=$(basename "$1") && cp -a "$1.releases/$2" "$1.releases/$3" && printf "%s" "$4" > "$1.releases/$3.json" && cp -a "$1.shared" "$1.shared.opsdeck-incoming-$3" && rm "$1.shared.opsdeck-incoming-$3/uploads/dog.jpg" && ' +
        'mv -T "$1.shared" "$1.shared.opsdeck-previous-$3" && mv -T "$1.shared.opsdeck-incoming-$3" "$1.shared" && ln -sfn "$b.releases/$3" "$1"',
      'sh',
      i.path,
      liveId,
      id,
      JSON.stringify({ id, revision: '', at: new Date().toISOString(), backup: null, schema: null, from: liveId, previousBefore: null }),
    ]);
    const incoming = treeState(shared);

    const r = await json(home, ['recover', 'rr-done']);
    expect(r).toMatchObject({ run: null, restoredReleases: [{ id, action: 'finish' }] });
    expect(readlinkSync(i.path)).toBe(`rr-done.releases/${id}`);
    expect(treeState(shared)).toEqual(incoming);
    expect(beside('rr-done')).toEqual(['rr-done', 'rr-done.releases', 'rr-done.shared']);
    expect(await (await fetch(i.url)).text()).toContain('converted');
  });

  it('a restore killed in its undo after the link went back (recorded "swapped"): recover undoes it, never finishes it over the release live before', async () => {
    const { home, i } = await instanceWithRepo('rr-undone', ['uploads']);
    await must(cli(home, ['update', 'rr-undone', '--yes']));
    const link = readlinkSync(i.path);
    // What an undo killed right after undoRestoredRelease left: the link and shared/ back, the record still "swapped".
    const inv = new Database(join(home, 'inventory.sqlite'));
    const runId = (inv.prepare('SELECT max(id) AS id FROM runs').get() as { id: number }).id;
    inv
      .prepare('INSERT INTO half_restored (instance, run_id, command, phase, safety_backup, staging, old, db_touched, since) VALUES (?, ?, ?, ?, NULL, ?, ?, 0, ?)')
      .run('rr-undone', runId, 'restore', 'swapped', `${i.path}.opsdeck-incoming`, `${i.path}.opsdeck-previous`, new Date().toISOString());
    inv.close();
    const r = await json(home, ['recover', 'rr-undone']);
    expect(r).toMatchObject({ run: runId, action: 'undo' });
    expect(readlinkSync(i.path)).toBe(link);
    expect(await (await fetch(i.url)).text()).toContain('converted');
  });

  it('a restore cut short before its switch, the link moved on since: recover refuses, naming both shared/, and changes nothing', async () => {
    const { home, i } = await instanceWithRepo('rr-moved', ['uploads']);
    await must(cli(home, ['update', 'rr-moved', '--yes']));
    const shared = `${i.path}.shared`;
    asLabUser('sh', ['-c', 'printf photo > "$1/uploads/cat.jpg"', 'sh', shared]);
    const liveId = readlinkSync(i.path).split('/').pop()!;
    const id = '20260102T000000Z-restored';
    const other = '20260103T000000Z-0123456789';
    // Both renames done, no switch; since then the link moved to another release, and shared/ is the one in use.
    asLabUser('sh', [
      '-c',
      'b=$(basename "$1") && cp -a "$1.releases/$2" "$1.releases/$3" && printf "%s" "$4" > "$1.releases/$3.json" && cp -a "$1.shared" "$1.shared.opsdeck-incoming-$3" && ' +
        'mv -T "$1.shared" "$1.shared.opsdeck-previous-$3" && mv -T "$1.shared.opsdeck-incoming-$3" "$1.shared" && cp -a "$1.releases/$2" "$1.releases/$5" && ln -sfn "$b.releases/$5" "$1" && printf "written since\\n" > "$1.shared/uploads/new.jpg"',
      'sh',
      i.path,
      liveId,
      id,
      JSON.stringify({ id, revision: '', at: new Date().toISOString(), backup: null, schema: null, from: liveId, previousBefore: null }),
      other,
    ]);
    const before = { link: readlinkSync(i.path), shared: treeState(shared), kept: treeState(`${shared}.opsdeck-previous-${id}`), beside: beside('rr-moved') };
    const res = await cli(home, ['recover', 'rr-moved']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`links to rr-moved.releases/${other}`);
    expect(res.stderr).toContain(`${shared}.opsdeck-previous-${id}`);
    expect({ link: readlinkSync(i.path), shared: treeState(shared), kept: treeState(`${shared}.opsdeck-previous-${id}`), beside: beside('rr-moved') }).toEqual(before);
    expect(readFileSync(join(shared, 'uploads', 'new.jpg'), 'utf8')).toBe('written since\n');
  });
});

describe("another instance's tree onto a release-mode instance", () => {
  let home: string;
  let t: Awaited<ReturnType<typeof addInstance>>;
  let shared: string;
  let local: string;
  let was: string;
  let treeBefore: Record<string, string>;
  /** The replaced shared/ is deleted in the background once a run is done: renamed to *.gone first. */
  const left = () => beside('rr-tgt').filter((n) => !n.endsWith('.gone'));

  beforeAll(async () => {
    ({ home, i: t } = await instanceWithRepo('rr-tgt', ['uploads']));
    await must(cli(home, ['update', 'rr-tgt', '--yes']));
    shared = `${t.path}.shared`;
    asLabUser('sh', ['-c', 'printf mine > "$1/uploads/target.jpg"', 'sh', shared]);
    local = readFileSync(join(shared, 'config', 'local.env'), 'utf8');
    was = readlinkSync(t.path);
    treeBefore = treeState(t.path);
  });

  it("a clone of an instance in place becomes a new release: shared/ holds the source's uploads, the target's own local file is kept, the database is the source's", async () => {
    const src = await addInstance(home, 'lab1', 'rr-src', 'dev');
    asLabUser('sh', ['-c', 'mkdir -p "$1/uploads" && printf source > "$1/uploads/source.jpg" && echo copied > "$1/only-in-source.txt"', 'sh', src.path]);
    sql(src.db, `SET ROLE ${src.role}; INSERT INTO notes (body) VALUES ('from the source');`);
    await must(cli(home, ['clone', 'rr-src', 'rr-tgt', '--yes']));
    expect(readlinkSync(t.path)).toMatch(/^rr-tgt\.releases\/\d{8}T\d{6}Z-restored$/);
    expect(readdirSync(`${t.path}.releases`)).toContain(was.split('/').pop());
    expect(readFileSync(join(t.path, 'only-in-source.txt'), 'utf8')).toBe('copied\n');
    expect(readlinkSync(join(t.path, 'uploads'))).toBe('../../rr-tgt.shared/uploads');
    expect(readdirSync(join(shared, 'uploads'))).toEqual(['source.jpg']);
    expect(readFileSync(join(shared, 'config', 'local.env'), 'utf8')).toBe(local);
    expect(sql(t.db, 'SELECT body FROM notes ORDER BY id')).toContain('from the source');
    expect(left()).toEqual(['rr-tgt', 'rr-tgt.releases', 'rr-tgt.shared']);
    // Out of maintenance, and so is the release live before (a rollback to it must not find the clone's page).
    expect((await fetch(t.url)).status).toBe(200);
    expect(existsSync(join(`${t.path}.releases`, was.split('/').pop()!, 'maintenance.html'))).toBe(false);
  });

  it("restore --to of a release-mode instance's backup: shared/ from the backup's shared/, no link into the source's shared/", async () => {
    const before = readlinkSync(t.path);
    const { i: s2 } = await instanceWithRepo('rr-src2', ['uploads'], home);
    await must(cli(home, ['update', 'rr-src2', '--yes']));
    asLabUser('sh', ['-c', 'printf backed > "$1/uploads/backed.jpg"', 'sh', `${s2.path}.shared`]);
    await must(cli(home, ['backup', 'rr-src2']));
    await must(cli(home, ['restore', 'rr-src2', '--to', 'rr-tgt', '--yes']));
    expect(readlinkSync(t.path)).not.toBe(before);
    expect(readdirSync(join(shared, 'uploads'))).toEqual(['backed.jpg']);
    expect(readFileSync(join(shared, 'config', 'local.env'), 'utf8')).toBe(local);
    expect(existsSync(join(t.path, '.opsdeck-shared'))).toBe(false);
    expect(Object.entries(treeState(t.path)).filter(([, v]) => v.includes('rr-src2.shared'))).toEqual([]);
    expect(await (await fetch(t.url)).text()).toContain('converted');
    expect(left()).toEqual(['rr-tgt', 'rr-tgt.releases', 'rr-tgt.shared']);
  });

  it('rollback --to the release live before the copies goes back in one switch: its tree exactly as it was', async () => {
    await must(cli(home, ['rollback', 'rr-tgt', '--to', was.split('/').pop()!, '--yes']));
    expect(readlinkSync(t.path)).toBe(was);
    expect(treeState(t.path)).toEqual(treeBefore);
    expect((await fetch(t.url)).status).toBe(200);
  });

  it('a clone whose tree holds a link on the way to a shared path (config -> another directory) is refused: the directory the link names byte-identical, the target as before', async () => {
    // Another site's config beside the target, which the source's tree links to (a git repository can hold links).
    const victim = join(root, 'rr-victim');
    asLabUser('sh', ['-c', 'rm -rf -- "$1" && mkdir -p "$1/config" && printf "DB_PASSWORD=theirs\\n" > "$1/config/local.env"', 'sh', victim]);
    const src = await addInstance(home, 'lab1', 'rr-src3', 'dev');
    asLabUser('sh', ['-c', 'rm -rf -- "$1/config" && ln -s -- "$2/config" "$1/config"', 'sh', src.path, victim]);
    const victimBefore = treeState(victim);
    const targetBefore = { link: readlinkSync(t.path), releases: treeState(`${t.path}.releases`), shared: treeState(shared) };
    const res = await cli(home, ['clone', 'rr-src3', 'rr-tgt', '--yes']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('config/local.env');
    expect(res.stderr).toContain('symbolic link');
    expect(treeState(victim)).toEqual(victimBefore);
    expect(readFileSync(join(victim, 'config', 'local.env'), 'utf8')).toBe('DB_PASSWORD=theirs\n');
    expect({ link: readlinkSync(t.path), releases: treeState(`${t.path}.releases`), shared: treeState(shared) }).toEqual(targetBefore);
    expect(left()).toEqual(['rr-tgt', 'rr-tgt.releases', 'rr-tgt.shared']);
  });
});
