import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync, chmodSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  END_OF_ARCHIVE,
  FIND_FORMAT,
  NotMirrorable,
  RACY_MARK,
  RACY_SINCE,
  TREE_KEY_LINE,
  TarReader,
  entryHeader,
  hardLinks,
  isRacy,
  padding,
  parseFindOutput,
  treeFacts,
  treeKeyOf,
  type TreeEntry,
} from '../../src/store/tree-index.js';

/** find's list of a directory, as the host sends it (without the gzip). */
const listOf = (dir: string) => execFileSync('sh', ['-c', `cd -- "$1" && { find . -printf '${FIND_FORMAT}'; printf 'end\\t%s\\0\\0' "$?"; }`, 'sh', dir]);

/** The tar the index and contents make, as a restore rebuilds it. */
function tarOf(entries: TreeEntry[], content: (e: TreeEntry) => Buffer): Buffer {
  const links = hardLinks(entries);
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(entryHeader(e, links.get(e.path)));
    if (e.type === 'f' && !links.has(e.path)) parts.push(content(e), padding(e.size));
  }
  return Buffer.concat([...parts, END_OF_ARCHIVE]);
}

describe('tree index and the tar rebuilt from it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tree-index-'));
  mkdirSync(join(dir, 'a'.repeat(70), 'b'.repeat(70)), { recursive: true });
  writeFileSync(join(dir, 'a'.repeat(70), 'b'.repeat(70), 'deep.txt'), 'deep\n');
  writeFileSync(join(dir, 'odd\nname\t1'), 'odd\n');
  writeFileSync(join(dir, 'private'), 'secret\n');
  chmodSync(join(dir, 'private'), 0o600);
  linkSync(join(dir, 'private'), join(dir, 'same'));
  symlinkSync('x'.repeat(120), join(dir, 'link'));
  mkdirSync(join(dir, 'empty'));

  it("reads find's list: types, modes, links, names with newlines, and restic's order", () => {
    const entries = parseFindOutput(listOf(dir));
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(entries[0].path).toBe('');
    expect(byPath.get('private')).toMatchObject({ type: 'f', mode: 0o600, size: 7, nlink: 2 });
    expect(byPath.get('link')).toMatchObject({ type: 'l', link: 'x'.repeat(120) });
    expect(byPath.get('odd\nname\t1')?.type).toBe('f');
    // Depth first, names by their bytes: a directory's entries come right after it.
    const deep = entries.findIndex((e) => e.path.endsWith('deep.txt'));
    expect(entries[deep - 1].path).toBe(`${'a'.repeat(70)}/${'b'.repeat(70)}`);
  });

  /** The host's fingerprint as treeKey (backup.ts) makes it, racy files marked as changed after `since`. */
  const hostKey = (since: string) =>
    execFileSync('sh', ['-c', `T=${since}; cd -- "$1" && list=$(find . ${RACY_MARK} -printf "${TREE_KEY_LINE}") && printf "%s" "$list" | LC_ALL=C sort | sha256sum`, 'sh', dir])
      .toString()
      .split(' ')[0];
  const nodeKey = (since: string) => treeKeyOf(parseFindOutput(listOf(dir)).map((e) => ({ ...e, racy: isRacy(e, since) })));

  it("gives the same tree fingerprint as the host's find | sort | sha256sum (backup.ts treeKey)", () => {
    const now = `@${Math.floor(Date.now() / 1000) + 10}.0`;
    expect(nodeKey(now)).toBe(hostKey(now));
  });

  it('marks a file changed after the listing began as racy, on the host and here alike: the fingerprint is one no later listing gives', () => {
    writeFileSync(join(dir, 'fresh'), 'x');
    const fresh = parseFindOutput(listOf(dir)).find((e) => e.path === 'fresh')!;
    // Just before its ctime: taken by find's -newerct and by isRacy; a nanosecond after it: by neither.
    const ct = fresh.stamp.split(' ')[3];
    const [sec, frac] = ct.split('.');
    const ns = BigInt(sec) * 1_000_000_000n + BigInt(frac.slice(0, 9));
    const at = (n: bigint) => `@${n / 1_000_000_000n}.${String(n % 1_000_000_000n).padStart(9, '0')}`;
    const before = at(ns - 1n);
    const after = at(ns);
    expect(isRacy(fresh, before)).toBe(true);
    expect(isRacy(fresh, after)).toBe(false);
    expect(nodeKey(before)).toBe(hostKey(before));
    expect(nodeKey(after)).toBe(hostKey(after));
    expect(hostKey(before)).not.toBe(hostKey(after));
    // Directories and links are never racy: their lines say all a change would.
    expect(isRacy({ ...fresh, type: 'd' }, before)).toBe(false);
  });

  it("RACY_SINCE gives the host's time less a tenth of a second, as find's -newerct reads it", () => {
    const t0 = Date.now();
    const since = execFileSync('sh', ['-c', `${RACY_SINCE}; printf %s "$T"`]).toString();
    expect(since).toMatch(/^@\d+\.\d{9}$/);
    const ms = Number(since.slice(1)) * 1000;
    expect(ms).toBeGreaterThan(t0 - 1000);
    expect(ms).toBeLessThan(Date.now() - 99);
    // Without date's nanoseconds (a date that prints none): @0, so every file counts as racy.
    const bin = mkdtempSync(join(tmpdir(), 'nodate-'));
    writeFileSync(join(bin, 'date'), '#!/bin/sh\necho 17000000%N\n', { mode: 0o755 });
    expect(execFileSync('sh', ['-c', `PATH="$1:$PATH"; ${RACY_SINCE}; printf %s "$T"`, 'sh', bin]).toString()).toBe('@0');
  });

  it('GNU tar reads the rebuilt tar as the tree it was, hard link and long names included, and its length is known beforehand', () => {
    const entries = parseFindOutput(listOf(dir));
    const tar = tarOf(entries, (e) => Buffer.from(execFileSync('cat', [join(dir, e.path)])));
    expect(tar.length).toBe(treeFacts(entries).bytes);
    const out = mkdtempSync(join(tmpdir(), 'tree-index-out-'));
    execFileSync('tar', ['-x', '-p', '-f', '-', '-C', out], { input: tar });
    const again = parseFindOutput(listOf(out));
    const shape = (es: TreeEntry[]) => es.map((e) => [e.path, e.type, e.mode, e.size, e.link, e.mtime, e.nlink]);
    expect(shape(again)).toEqual(shape(entries));
  });

  it('reads members back, and refuses a damaged header', () => {
    const entries = parseFindOutput(listOf(dir));
    const tar = tarOf(entries, (e) => Buffer.alloc(e.size, 1));
    const names = new TarReader()
      .feed(tar)
      .flatMap((ev) => (ev.kind === 'member' ? [ev.member.name] : []))
      .sort();
    expect(names).toEqual(entries.map((e) => (e.path === '' ? './' : `./${e.path}${e.type === 'd' ? '/' : ''}`)).sort());
    const bad = Buffer.from(tar);
    bad[10] ^= 1;
    expect(() => new TarReader().feed(bad)).toThrow(/checksum/);
  });

  it('refuses a list that escapes its tree or was cut short, and leaves special files to the full stream', () => {
    const rec = (y: string, p: string) => `${y}\t1\t0\t1.0\t1.0\t755\t0\t0\t1\t${p}\0\0`;
    const end = 'end\t0\0\0';
    expect(() => parseFindOutput(Buffer.from(rec('d', '') + rec('f', '../x') + end))).toThrow(/unsafe/);
    expect(() => parseFindOutput(Buffer.from(rec('d', '') + rec('f', 'l/x') + rec('l', 'l') + end))).toThrow(/not inside a directory/);
    expect(() => parseFindOutput(Buffer.from(rec('d', '') + rec('f', 'x')))).toThrow(/cut short/);
    expect(() => parseFindOutput(Buffer.from(rec('d', '') + 'end\t1\0\0'))).toThrow(/exit status 1/);
    expect(() => parseFindOutput(Buffer.from(rec('d', '') + rec('p', 'fifo') + end))).toThrow(NotMirrorable);
  });
});
