import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, linkSync, mkdirSync, readdirSync, rmSync, symlinkSync, utimesSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CuttingProxy } from '../../fixtures/proxy.js';
import { addInstance, cli, homeWithHosts, lab, must, treeState } from '../helpers.js';

const FILES = 2000;
const FILE_BYTES = 10_000;
const BIG = 2_500_000;

/** Bytes that crossed the proxy (both ways) while `f` ran. */
async function counted<T>(proxy: CuttingProxy, f: () => Promise<T>): Promise<{ bytes: number; result: T }> {
  const before = proxy.fromHost + proxy.toHost;
  const result = await f();
  return { bytes: proxy.fromHost + proxy.toHost - before, result };
}

describe('backups that send only what changed (setting treeMirrors)', () => {
  const l = lab();
  const proxy = new CuttingProxy({ host: l.hosts[0].address, port: l.hosts[0].port });
  let home: string;
  let inst: Awaited<ReturnType<typeof addInstance>>;
  let treeBytes = 0;
  /** The tree snapshot the last backup named. */
  let lastTree = '';
  const name = 'delta-dev';
  type Taken = { id: string; manifest: { code: { files: number; snapshot: string } } };
  const backup = async () => JSON.parse((await must(cli(home, ['backup', name, '--json']))).stdout) as Taken;
  /** A backup with --verbose: what it recorded and the commands it ran. */
  const backupLogged = async () => {
    const r = await must(cli(home, ['backup', name, '--json', '--verbose']));
    return { taken: JSON.parse(r.stdout) as Taken, lines: r.stderr.split('\n'), stderr: r.stderr };
  };
  /** restic backup of the mirror directory (not the database's --stdin one). */
  const resticOverMirror = (lines: string[]) => lines.filter((l) => l.startsWith('store$ ') && /restic backup /.test(l) && l.includes(join(home, 'mirrors', name)));
  /** A change on the host, so the next backup goes through the mirror instead of reusing the last tree snapshot. */
  const touchHost = (file: string) => appendFileSync(join(inst.path, 'data', 'uploads', 'd9', file), 'more');
  const snapshotIds = () => (JSON.parse(execFileSync('restic', ['snapshots', '--json'], { env: resticEnv() }).toString()) as { id: string }[]).map((s) => s.id);
  const resticEnv = () => ({ ...process.env, RESTIC_REPOSITORY: join(home, 'store'), RESTIC_PASSWORD_FILE: join(home, 'store.pass'), RESTIC_CACHE_DIR: join(home, 'cache') });
  const restoreExactly = async (id: string) => {
    const want = treeState(inst.path);
    // Damage: files changed, removed, added, a mode and a link changed.
    execFileSync('sh', ['-c', 'cd "$1" && rm -rf data/uploads/d3 && echo changed > index.html && echo new > added.txt && chmod 644 data/private.txt && rm data/home.html', 'sh', inst.path]);
    expect(treeState(inst.path)).not.toEqual(want);
    const r = await cli(home, ['restore', name, '--backup', id, '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(treeState(inst.path)).toEqual(want);
  };

  beforeAll(async () => {
    await proxy.start();
    home = await homeWithHosts([]);
    await must(cli(home, ['host', 'add', 'wire', '--address', '127.0.0.1', '--port', String(proxy.port), '--user', l.user, '--key', l.keyFile, '--fingerprint', l.hosts[0].fingerprint]));
    await must(cli(home, ['settings', 'treeMirrors', 'on']));
    inst = await addInstance(home, 'lab1', name, 'dev', { via: 'wire' });
    // 2,000 files of 10 KB that do not compress, one of 2.5 MB, and what makes "exact" mean something:
    // modes, a private directory, a symlink, an empty directory, a hard link, a name over 100 bytes,
    // a name with a newline and a tab.
    const up = join(inst.path, 'data', 'uploads');
    for (let i = 0; i < FILES; i++) {
      const d = join(up, `d${i % 20}`);
      if (i < 20) mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `f${i}.bin`), randomBytes(FILE_BYTES));
    }
    writeFileSync(join(up, 'big.bin'), randomBytes(BIG));
    const deep = join(inst.path, 'data', 'a'.repeat(60), 'b'.repeat(60));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'c'.repeat(40) + '.txt'), 'deep\n');
    writeFileSync(join(inst.path, 'data', 'odd\nname\twith tab'), 'odd\n');
    writeFileSync(join(inst.path, 'data', 'private.txt'), 'secret\n');
    chmodSync(join(inst.path, 'data', 'private.txt'), 0o600);
    symlinkSync('../index.html', join(inst.path, 'data', 'home.html'));
    mkdirSync(join(inst.path, 'data', 'empty'));
    linkSync(join(up, 'd0', 'f0.bin'), join(inst.path, 'data', 'f0-again.bin'));
    chmodSync(join(up, 'd1'), 0o750);
    chmodSync(join(up, 'd2', 'f2.bin'), 0o755);
    execFileSync('chown', ['-R', '--no-dereference', `--reference=${inst.path}`, join(inst.path, 'data')]);
    treeBytes = Number(execFileSync('du', ['-sb', inst.path]).toString().split('\t')[0]);
    expect(treeBytes).toBeGreaterThan(20e6);
  });

  afterAll(() => proxy.stop());

  it('sends the whole tree once, then under 1% of it when nothing changed, and stores no new tree', async () => {
    const first = await counted(proxy, backup);
    // The first backup has no mirror to compare with: every file travels.
    expect(first.bytes).toBeGreaterThan(treeBytes);
    expect(first.result.manifest.code.files).toBeGreaterThan(FILES);
    const second = await counted(proxy, backupLogged);
    expect(second.bytes, `${second.bytes} bytes of a ${treeBytes}-byte tree`).toBeLessThan(treeBytes / 100);
    // The host walks its tree once (the list), and no tar reads it to size it.
    const { lines, stderr, taken } = second.result;
    expect(
      lines.filter((l) => /^wire\$ .*find \. -printf/.test(l)),
      stderr,
    ).toHaveLength(1);
    expect(
      lines.filter((l) => /^wire\$ .*\btar\b/.test(l)),
      stderr,
    ).toEqual([]);
    // Nothing changed: the first backup's tree snapshot is this one's too, and restic never scans the mirror.
    expect(taken.manifest.code.snapshot).toBe(first.result.manifest.code.snapshot);
    expect(resticOverMirror(lines), stderr).toEqual([]);
    expect(stderr).toContain(`code tree unchanged since backup ${first.result.id}: its snapshot is reused`);
    lastTree = taken.manifest.code.snapshot;
  });

  it('sends less than three times one changed 2.5 MB file; restic compares the mirror with its last snapshot', async () => {
    writeFileSync(join(inst.path, 'data', 'uploads', 'big.bin'), randomBytes(BIG));
    const b = await counted(proxy, backupLogged);
    expect(b.bytes, `${b.bytes} bytes for a ${BIG}-byte file`).toBeLessThan(3 * BIG);
    expect(b.bytes).toBeGreaterThan(BIG);
    // restic is given the mirror's last snapshot as its parent instead of searching the store for one.
    const parent = lastTree;
    expect(
      resticOverMirror(b.result.lines).filter((l) => l.includes(` --parent ${parent} `) && / # exit 0/.test(l)),
      b.result.stderr,
    ).toHaveLength(1);
    expect(b.result.taken.manifest.code.snapshot).not.toBe(parent);
  });

  it("an unchanged backup's tree snapshot outlives the backup that made it (retention), and restores exactly", async () => {
    const a = await backup();
    const b = await backup();
    expect(b.manifest.code.snapshot).toBe(a.manifest.code.snapshot);
    // Keep only today's newest backup (b): a and every earlier one go, the snapshot b names stays.
    const pruned = JSON.parse(
      (await must(cli(home, ['backups', 'prune', name, '--keep-daily', '1', '--keep-weekly', '0', '--keep-monthly', '0', '--keep-yearly', '0', '--yes', '--json']))).stdout,
    ) as { removed: { id: string }[]; kept: { id: string }[] };
    expect(pruned.removed.map((x) => x.id)).toContain(a.id);
    expect(pruned.kept.map((x) => x.id)).toEqual([b.id]);
    expect(snapshotIds().filter((id) => id.startsWith(b.manifest.code.snapshot))).toHaveLength(1);
    expect((await cli(home, ['backups', 'verify', b.id])).code).toBe(0);
    await restoreExactly(b.id);
    // The restored tree is b's (new inodes, same files): the next backup names b's snapshot again.
    const c = await counted(proxy, backupLogged);
    expect(c.result.taken.manifest.code.snapshot).toBe(b.manifest.code.snapshot);
    expect(resticOverMirror(c.result.lines), c.result.stderr).toEqual([]);
    expect(c.bytes).toBeLessThan(treeBytes / 100);
  });

  it('restores the tree exactly (owners, modes, links, contents), and verifies and exports the backup', async () => {
    appendFileSync(join(inst.path, 'data', 'uploads', 'd5', 'f5.bin'), 'more');
    const b = await backup();
    expect((await cli(home, ['backups', 'verify', b.id])).code).toBe(0);
    const file = join(home, 'export.tar');
    await must(cli(home, ['backups', 'export', b.id, file]));
    const listed = execFileSync('sh', ['-c', 'tar -xOf "$1" code.tar | tar -tf - | wc -l', 'sh', file]).toString().trim();
    expect(Number(listed)).toBe(Object.keys(treeState(inst.path)).length);
    await restoreExactly(b.id);
  });

  it('a mirror changed on the jump box is caught: the file is fetched again, never stored as it was changed', async () => {
    // The restore gave every file a new inode: one backup through the mirror to catch up, then the mirror is changed.
    touchHost('f9.bin');
    const caughtUp = await backup();
    const tree = join(home, 'mirrors', name, 'snap', 'tree');
    const victim = join(tree, 'data', 'uploads', 'd7', 'f7.bin');
    const st = statSync(victim);
    // Same size, same mtime: only its ctime, which no one can set back, says it changed.
    writeFileSync(victim, randomBytes(FILE_BYTES));
    utimesSync(victim, st.atime, st.mtime);
    // And a file that is not the host's at all, and a file index changed beside the mirror.
    writeFileSync(join(tree, 'data', 'planted.php'), '<?php evil();');
    writeFileSync(join(home, 'mirrors', name, 'snap', 'index'), '{}\n');
    // And one file changed on the host, so the backup goes through the mirror.
    touchHost('f29.bin');
    const b = await counted(proxy, backup);
    expect(b.result.manifest.code.snapshot).not.toBe(caughtUp.manifest.code.snapshot);
    expect(b.bytes).toBeLessThan(treeBytes / 50);
    expect((await cli(home, ['backups', 'verify', b.result.id])).code).toBe(0);
    await restoreExactly(b.result.id);
    expect(existsSync(join(inst.path, 'data', 'planted.php'))).toBe(false);
  });

  it('a tree snapshot gone from the store (forgotten behind opsdeck) is not reused, and as a parent only makes restic search for another', async () => {
    touchHost('f49.bin');
    const last = await backup();
    const snapshot = last.manifest.code.snapshot;
    execFileSync('restic', ['forget', '-q', snapshot], { env: resticEnv() });
    // The tree is unchanged since last, whose snapshot is gone: a new one is made from the mirror.
    const b = await counted(proxy, backup);
    expect(b.result.manifest.code.snapshot).not.toBe(snapshot);
    expect(b.bytes).toBeLessThan(treeBytes / 50);
    expect((await cli(home, ['backups', 'verify', b.result.id])).code).toBe(0);
  });

  it('a mirror whose record is damaged is rebuilt with a full send', async () => {
    writeFileSync(join(home, 'mirrors', name, 'state.json'), '{ not json');
    touchHost('f69.bin');
    const b = await counted(proxy, backup);
    expect(b.bytes).toBeGreaterThan(treeBytes);
  });

  it('a mirror that is gone is rebuilt, and what it stores restores exactly', async () => {
    rmSync(join(home, 'mirrors', name), { recursive: true });
    touchHost('f89.bin');
    const c = await backup();
    expect(readdirSync(join(home, 'mirrors', name, 'snap', 'tree')).length).toBeGreaterThan(0);
    await restoreExactly(c.id);
  });

  it('an instance removed from the inventory leaves no copy of its tree on the jump box', async () => {
    await must(cli(home, ['instance', 'remove', name, '--yes']));
    expect(existsSync(join(home, 'mirrors', name))).toBe(false);
  });
});
