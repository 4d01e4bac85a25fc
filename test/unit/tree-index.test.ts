import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync, chmodSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { END_OF_ARCHIVE, FIND_FORMAT, NotMirrorable, TarReader, entryHeader, hardLinks, padding, parseFindOutput, treeFacts, treeKeyOf, type TreeEntry } from '../../src/store/tree-index.js';

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

  it("gives the same tree fingerprint as the host's find | sort | sha256sum (backup.ts treeKey)", () => {
    const host = execFileSync('sh', ['-c', 'cd -- "$1" && list=$(find . -printf "%i %C@ %T@ %s %m %y %P\\n") && printf "%s" "$list" | LC_ALL=C sort | sha256sum', 'sh', dir]).toString().split(' ')[0];
    expect(treeKeyOf(parseFindOutput(listOf(dir)))).toBe(host);
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
