import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addInstance, asLabUser, cli, cutShortConversion, homeWithHosts, lab, must, treeState } from '../helpers.js';
import { ownRepo, page } from './release-repo.js';

// Release mode (issue 13, items 1 and 5) cut short, a planted .opsdeck-shared and update --lag,
// against the lab through bin/opsdeck: split from releases.test.ts, each test on its own home,
// instance and repository.

const l = lab();
const root = l.hosts[0].root;
const liveOf = (path: string) => readlinkSync(path).split('/').pop()!;
const json = async (home: string, args: string[]) => JSON.parse((await must(cli(home, [...args, '--json']))).stdout);

describe('a conversion to release mode cut short', () => {
  it('a step that fails undoes the steps before it, and a conversion a killed run left half-done is undone by the next run: the tree exactly as before', async () => {
    const home = await homeWithHosts(['lab1']);
    const repo = ownRepo('rl-cut-repo');
    asLabUser('rm', ['-rf', join(root, 'rl-cut.releases'), join(root, 'rl-cut.shared')]);
    const i = await addInstance(home, 'lab1', 'rl-cut', 'dev');
    asLabUser('git', ['-C', i.path, 'remote', 'set-url', 'origin', repo.url]);
    const v1 = asLabUser('git', ['-C', i.path, 'rev-parse', 'HEAD']).trim();
    repo.commit('rl-cut', v1, { 'index.html': page('converted') });
    // uploads/ cannot move out of the tree: renaming a directory into another one needs write permission on it (its ..).
    asLabUser('sh', ['-c', 'mkdir -p "$1/uploads" && echo photo > "$1/uploads/cat.jpg" && chmod 555 "$1/uploads"', 'sh', i.path]);
    await must(cli(home, ['instance', 'set', 'rl-cut', '--releases', '2', '--local', 'config/local.env', '--shared', 'uploads', '--branch', 'rl-cut']));
    const files = treeState(i.path);
    const gone = () => ({ releases: existsSync(`${i.path}.releases`), shared: existsSync(`${i.path}.shared`) });
    try {
      // config/local.env has moved to shared/ and the path is a link when uploads/ fails to move.
      const r = await cli(home, ['update', 'rl-cut', '--yes']);
      expect(r.code).toBe(1);
      expect(lstatSync(i.path).isDirectory()).toBe(true);
      expect(treeState(i.path)).toEqual(files);
      expect(gone()).toEqual({ releases: false, shared: false });

      // As a run killed inside the conversion leaves it: the tree moved and linked, config/local.env in shared/, the journal beside.
      const id = `20260101T000000Z-${v1.slice(0, 10)}`;
      asLabUser('sh', [
        '-c',
        'b=$(basename "$1") && mkdir "$1.releases" "$1.shared" "$1.shared/config" && printf "%s" "$3" > "$1.releases/.converting" && mv -T "$1" "$1.releases/$2" && ln -s "$b.releases/$2" "$1" && ' +
          'mv "$1.releases/$2/config/local.env" "$1.shared/config/local.env" && ln -s "../../../$b.shared/config/local.env" "$1.releases/$2/config/local.env"',
        'sh',
        i.path,
        id,
        JSON.stringify({ id, moved: ['config/local.env'], made: [] }),
      ]);
      const again = await cli(home, ['update', 'rl-cut', '--yes']);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/a conversion to release mode was cut short \(release 20260101T000000Z-[0-9a-f]+\): undoing it first/);
      expect(lstatSync(i.path).isDirectory()).toBe(true);
      expect(treeState(i.path)).toEqual(files);
      expect(gone()).toEqual({ releases: false, shared: false });
    } finally {
      asLabUser('chmod', ['755', join(i.path, 'uploads')]);
    }
  });
});

describe('a .opsdeck-shared entry in a tree', () => {
  it('is never taken for shared/: a backup or a copy of a tree whose commit planted a link by that name is refused, and the directory it names is left untouched', async () => {
    const home = await homeWithHosts(['lab1']);
    const i = await addInstance(home, 'lab1', 'rl-planted', 'dev');
    const c = await addInstance(home, 'lab1', 'rl-planted-copy', 'dev');
    // Another instance's shared files, and a link to them the way a commit could add it.
    const victim = join(root, 'rl-victim.shared');
    asLabUser('rm', ['-rf', victim]);
    asLabUser('sh', ['-c', 'mkdir -p "$1/uploads" && printf photo > "$1/uploads/cat.jpg" && ln -s ../rl-victim.shared "$2/.opsdeck-shared"', 'sh', victim, i.path]);
    const before = { victim: treeState(victim), copy: treeState(c.path) };

    const b = await cli(home, ['backup', 'rl-planted']);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/rl-planted\/\.opsdeck-shared .* is in rl-planted's tree/);
    const copy = await cli(home, ['clone', 'rl-planted', 'rl-planted-copy', '--yes']);
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toMatch(/\.opsdeck-shared .* is in rl-planted's tree/);
    expect(treeState(victim)).toEqual(before.victim);
    expect(treeState(c.path)).toEqual(before.copy);
  });
});

describe('a conversion cut short, then used for days', () => {
  it('the next update undoes it without losing what was written into shared/ since: the upload is in the tree afterwards', async () => {
    const home = await homeWithHosts(['lab1']);
    const repo = ownRepo('rl-used-repo');
    asLabUser('rm', ['-rf', join(root, 'rl-used.releases'), join(root, 'rl-used.shared')]);
    const i = await addInstance(home, 'lab1', 'rl-used', 'dev');
    asLabUser('git', ['-C', i.path, 'remote', 'set-url', 'origin', repo.url]);
    const v1 = asLabUser('git', ['-C', i.path, 'rev-parse', 'HEAD']).trim();
    repo.commit('rl-used', v1, { 'index.html': page('converted') });
    await must(cli(home, ['instance', 'set', 'rl-used', '--releases', '2', '--local', 'config/local.env', '--shared', 'uploads', '--branch', 'rl-used']));
    const local = readFileSync(join(i.path, 'config', 'local.env'), 'utf8');
    // As a killed run leaves it: the tree moved and linked, config/local.env moved and uploads/ made in shared/, the journal beside.
    const id = cutShortConversion(i.path, v1);
    // The site serves on meanwhile: an upload lands in shared/ through the link.
    asLabUser('sh', ['-c', 'printf photo > "$1/uploads/cat.jpg"', 'sh', i.path]);

    const up = await must(cli(home, ['update', 'rl-used', '--yes']));
    expect(up.stderr).toMatch(/a conversion to release mode was cut short \(release 20260101T000000Z-[0-9a-f]+\): undoing it first/);
    expect(readFileSync(join(i.path, 'uploads', 'cat.jpg'), 'utf8')).toBe('photo');
    expect(readFileSync(join(i.path, 'config', 'local.env'), 'utf8')).toBe(local);
    expect(liveOf(i.path)).not.toBe(id);
    expect(await (await fetch(i.url)).text()).toContain('converted');
  });

  it('refuses to undo when a shared path is both in the tree and in shared/: both kept, the journal too, and it says what to do', async () => {
    const home = await homeWithHosts(['lab1']);
    asLabUser('rm', ['-rf', join(root, 'rl-taken.releases'), join(root, 'rl-taken.shared')]);
    const repo = ownRepo('rl-taken-repo');
    const i = await addInstance(home, 'lab1', 'rl-taken', 'dev');
    asLabUser('git', ['-C', i.path, 'remote', 'set-url', 'origin', repo.url]);
    const v1 = asLabUser('git', ['-C', i.path, 'rev-parse', 'HEAD']).trim();
    repo.commit('rl-taken', v1, { 'index.html': page('converted') });
    await must(cli(home, ['instance', 'set', 'rl-taken', '--releases', '2', '--local', 'config/local.env', '--branch', 'rl-taken']));
    // Cut short after config/local.env moved; since then a real file took the link's place in the tree.
    const id = `20260101T000000Z-${v1.slice(0, 10)}`;
    asLabUser('sh', [
      '-c',
      'b=$(basename "$1") && mkdir "$1.releases" "$1.shared" "$1.shared/config" && printf "%s" "$3" > "$1.releases/.converting" && mv -T "$1" "$1.releases/$2" && ln -s "$b.releases/$2" "$1" && ' +
        'mv "$1.releases/$2/config/local.env" "$1.shared/config/local.env" && echo newer > "$1.releases/$2/config/local.env"',
      'sh',
      i.path,
      id,
      JSON.stringify({ id, moved: ['config/local.env'], made: [] }),
    ]);
    const shared = readFileSync(join(`${i.path}.shared`, 'config', 'local.env'), 'utf8');

    const r = await cli(home, ['update', 'rl-taken', '--yes']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/rl-taken\/config\/local\.env and .*rl-taken\.shared\/config\/local\.env on lab1 both exist/);
    expect(r.stderr).toMatch(/keep what belongs in .*then run again/);
    expect(readFileSync(join(i.path, 'config', 'local.env'), 'utf8')).toBe('newer\n');
    expect(readFileSync(join(`${i.path}.shared`, 'config', 'local.env'), 'utf8')).toBe(shared);
    expect(existsSync(join(`${i.path}.releases`, '.converting'))).toBe(true);
  });
});

describe('update --lag', () => {
  it('deploys the newest commit of the branch at least that old, never goes back, and says when none is old enough', async () => {
    const home = await homeWithHosts(['lab1']);
    const repo = ownRepo('rl-lag-repo');
    const i = await addInstance(home, 'lab1', 'rl-lag', 'dev');
    asLabUser('git', ['-C', i.path, 'remote', 'set-url', 'origin', repo.url]);
    const v1 = asLabUser('git', ['-C', i.path, 'rev-parse', 'HEAD']).trim();
    const daysAgo = (d: number) => new Date(Date.now() - d * 86_400_000);
    repo.commit('rl-lag', v1, { 'index.html': page('ten days old') }, daysAgo(10));
    const five = repo.commit('rl-lag', 'rl-lag', { 'index.html': page('five days old') }, daysAgo(5));
    repo.commit('rl-lag', 'rl-lag', { 'index.html': page('one day old') }, daysAgo(1));
    await must(cli(home, ['instance', 'set', 'rl-lag', '--branch', 'rl-lag', '--hook', 'migrate=bin/migrate', '--health-text', 'Sample app']));

    const r = await json(home, ['update', 'rl-lag', '--lag', '3d', '--yes']);
    expect(r).toMatchObject({ from: v1, to: five, commits: 2 });
    expect(await (await fetch(i.url)).text()).toContain('five days old');

    const again = await cli(home, ['update', 'rl-lag', '--lag', '3d', '--yes']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/rl-lag: already at .*nothing changed/);
    expect(await (await fetch(i.url)).text()).toContain('five days old');

    // Older than the lab's repository itself: no commit qualifies, and nothing changes.
    const none = await cli(home, ['update', 'rl-lag', '--lag', '1000w', '--yes']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no commit of rl-lag in rl-lag's repository is at least 1000w old/);
    expect(await (await fetch(i.url)).text()).toContain('five days old');
  });
});
