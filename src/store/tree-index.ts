import { isUtf8 as utf8Bytes } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import { OpsError } from '../core/errors.js';

/**
 * One entry of a code tree as the host's `find -printf` saw it. Paths are byte strings (each char
 * one byte, latin1), relative to the tree, '' for its root: names need not be UTF-8.
 */
export interface TreeEntry {
  path: string;
  type: 'f' | 'd' | 'l';
  /** Permission bits with setuid, setgid and sticky (find's %m). */
  mode: number;
  uid: number;
  gid: number;
  /** Whole seconds, as tar stores them. */
  mtime: number;
  size: number;
  link?: string;
  ino: number;
  nlink: number;
  /** What the host's stat says, compared to decide whether a file changed: inode, size, mtime, ctime (ns). */
  stamp: string;
  /** Of the file's content as it arrived (files only). */
  sha256?: string;
  /** A file changed so shortly before it was listed that its stat proves nothing (see RACY_SINCE). */
  racy?: boolean;
}

/** How treeKey lists each entry of a tree (find -printf): the fingerprint is the sha256 of these lines, sorted bytewise. */
export const TREE_KEY_LINE = '%i %C@ %T@ %s %m %y %P\\n';

/**
 * Racy files (git's word): a regular file whose ctime is not older than the listing's start could be
 * rewritten after find saw it, the same size and its mtime set back, and keep that very ctime (file
 * times come from a clock that moves a tick at a time): its stat then proves nothing. Such a file is
 * marked in a listing (an R before its line): the fingerprint it is part of is never made again by a
 * later listing, so no snapshot is reused on its account, and a mirror fetches it again next time.
 * RACY_SINCE sets $T, find's -newerct argument, to the host's time less 0.1 s (file times lag the
 * clock by up to a tick); where date cannot give nanoseconds, to @0: every file is racy then.
 */
export const RACY_SINCE = `T=$(t=$(date +%s%N) && case $t in (*[!0-9]* | '') exit 1 ;; esac && t=$((t - 100000000)) && printf '@%d.%09d' $((t / 1000000000)) $((t % 1000000000))) || T=@0`;
/** find's expression printing R before a racy file's line (RACY_SINCE's $T); the line's own -printf follows. */
export const RACY_MARK = `\\( -type f -newerct "$T" -printf R \\) ,`;

/** Seconds and nanoseconds of a time find printed (%C@: seconds, a point, ten digits) or of RACY_SINCE's $T (without the @). */
const secondsAndNanos = (t: string): [number, number] => {
  const dot = t.indexOf('.');
  return dot < 0 ? [Number(t), 0] : [Number(t.slice(0, dot)), Number(t.slice(dot + 1, dot + 10).padEnd(9, '0'))];
};

/**
 * find's -newerct "$T" as a test of entries: a regular file changed after `since` (RACY_SINCE's $T,
 * with or without the @), read once for a whole list (a list of 100,000 entries took 180 ms when it
 * was read again for each).
 */
export function racyAfter(since: string): (e: Pick<TreeEntry, 'type' | 'stamp'>) => boolean {
  const [s, n] = secondsAndNanos(since.replace(/^@/, ''));
  return (e) => {
    if (e.type !== 'f') return false;
    // The stamp's last field is the ctime.
    const [cs, cn] = secondsAndNanos(e.stamp.slice(e.stamp.lastIndexOf(' ') + 1));
    return cs > s || (cs === s && cn > n);
  };
}

/** Whether find's -newerct "$T" takes this one entry (racyAfter, for one). */
export const isRacy = (e: Pick<TreeEntry, 'type' | 'stamp'>, since: string): boolean => racyAfter(since)(e);

/** What find prints per entry: the fields, then the path, then the link target, each ended by NUL. */
export const FIND_FORMAT = '%y\\t%i\\t%s\\t%T@\\t%C@\\t%m\\t%U\\t%G\\t%n\\t%P\\0%l\\0';

/** Thrown for a tree the mirror cannot hold exactly (devices, fifos, sockets): the caller streams it whole. */
export class NotMirrorable extends Error {}

// Most names are ASCII: only the others are copied to be checked byte by byte.
const ASCII = /^[\x00-\x7f]*$/;
const isUtf8 = (s: string) => ASCII.test(s) || utf8Bytes(Buffer.from(s, 'latin1'));

const seconds = (t: string): number => {
  const [int, frac] = t.split('.');
  const n = Number(int);
  return n < 0 && frac && /[1-9]/.test(frac) ? n - 1 : n;
};

/**
 * Parses find's output (FIND_FORMAT records, then "end\tSTATUS\0\0" from the shell) into entries,
 * checking that it is one whole, consistent tree: a root, every parent a directory, no odd names.
 */
export function parseFindOutput(buf: Buffer): TreeEntry[] {
  const text = buf.toString('latin1');
  const parts = text.split('\0');
  const out: TreeEntry[] = [];
  let status: string | undefined;
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const head = parts[i];
    const link = parts[i + 1];
    if (head.startsWith('end\t')) {
      status = head.slice(4);
      break;
    }
    const f = head.split('\t');
    if (f.length < 10) throw new OpsError(`the host's file list is garbled near ${JSON.stringify(head.slice(0, 80))}`);
    const [y, ino, size, mt, ct, mode, uid, gid, nlink] = f;
    const path = f.slice(9).join('\t');
    if (y !== 'f' && y !== 'd' && y !== 'l') throw new NotMirrorable(`${path || '.'} is a special file (find type ${y})`);
    // restic keeps names as UTF-8 text: a name that is not would not come back byte for byte.
    if (!isUtf8(path) || !isUtf8(link)) throw new NotMirrorable(`${JSON.stringify(path)} is a name that is not UTF-8`);
    const stamp = `${ino} ${size} ${mt} ${ct}`;
    const e: TreeEntry = {
      path,
      type: y,
      mode: parseInt(mode, 8),
      uid: Number(uid),
      gid: Number(gid),
      mtime: seconds(mt),
      size: y === 'f' ? Number(size) : 0,
      ino: Number(ino),
      nlink: Number(nlink),
      stamp,
    };
    if (y === 'l') e.link = link;
    out.push(e);
  }
  if (status === undefined) throw new OpsError('the file list from the host was cut short');
  if (status !== '0') throw new OpsError(`find could not read the whole tree on the host (exit status ${status})`);
  checkTree(out);
  return sortTree(out);
}

/** A path with an empty, "." or ".." component. */
const UNSAFE = /(?:^|\/)\.{0,2}(?:\/|$)/;

/** A tree whose entries could be written into a directory without leaving it or following a link. */
export function checkTree(entries: TreeEntry[]): void {
  const types = new Map<string, TreeEntry['type']>();
  for (const e of entries) {
    if (types.has(e.path)) throw new OpsError(`the file list names ${JSON.stringify(e.path)} twice`);
    types.set(e.path, e.type);
  }
  if (types.get('') !== 'd') throw new OpsError('the file list has no root directory');
  for (const e of entries) {
    if (e.path === '') continue;
    if (UNSAFE.test(e.path)) throw new OpsError(`the file list names an unsafe path ${JSON.stringify(e.path)}`);
    const slash = e.path.lastIndexOf('/');
    if (types.get(slash === -1 ? '' : e.path.slice(0, slash)) !== 'd') throw new OpsError(`${JSON.stringify(e.path)} in the file list is not inside a directory of it`);
    if (![e.mode, e.uid, e.gid, e.mtime, e.size, e.ino, e.nlink].every(Number.isFinite)) throw new OpsError(`the file list has garbled fields for ${JSON.stringify(e.path)}`);
  }
}

/** restic's order: depth first, each directory's names sorted by their bytes (restic dump walks so). */
export function sortTree(entries: TreeEntry[]): TreeEntry[] {
  // Each key made once, not in every comparison (20,000 entries: ~600,000 comparisons).
  const keyed = entries.map((e) => ({ k: e.path.replaceAll('/', '\0'), e }));
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.e);
}

/** The index as stored beside the mirror in each snapshot: one JSON line per entry. */
export function serializeIndex(entries: TreeEntry[]): Buffer {
  return Buffer.from(entries.map((e) => JSON.stringify(e)).join('\n') + '\n', 'utf8');
}

export function parseIndex(buf: Buffer): TreeEntry[] {
  const entries = buf
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TreeEntry);
  checkTree(entries);
  return entries;
}

// ---- tar, as GNU tar writes and reads it

const BLOCK = 512;
const pad = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

function writeNum(h: Buffer, off: number, len: number, n: number): void {
  const oct = n.toString(8);
  if (n >= 0 && oct.length < len) {
    h.write(oct.padStart(len - 1, '0') + '\0', off, len, 'latin1');
    return;
  }
  // GNU base-256: a size over 8 GiB, an id over 2^21.
  h[off] = 0x80;
  let v = BigInt(n);
  for (let i = len - 1; i > 0; i--) {
    h[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

function header(name: string, type: string, opts: { mode?: number; uid?: number; gid?: number; size?: number; mtime?: number; link?: string } = {}): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 100), 0, 100, 'latin1');
  writeNum(h, 100, 8, opts.mode ?? 0);
  writeNum(h, 108, 8, opts.uid ?? 0);
  writeNum(h, 116, 8, opts.gid ?? 0);
  writeNum(h, 124, 12, opts.size ?? 0);
  writeNum(h, 136, 12, opts.mtime ?? 0);
  h.write(type, 156, 1, 'latin1');
  if (opts.link) h.write(opts.link.slice(0, 100), 157, 100, 'latin1');
  h.write('ustar  \0', 257, 8, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** A GNU long name or link ('L' / 'K'): the header and the padded name. */
function longField(type: 'L' | 'K', value: string): Buffer {
  const data = Buffer.from(value + '\0', 'latin1');
  return Buffer.concat([header('././@LongLink', type, { size: data.length }), data, Buffer.alloc(pad(data.length) - data.length)]);
}

/** The tar name of an entry: "./" for the root, "./a/b" below, directories ending in "/", as GNU tar -C DIR . stores them. */
const tarName = (e: TreeEntry) => (e.path === '' ? './' : `./${e.path}${e.type === 'd' ? '/' : ''}`);

/**
 * The headers of one entry of the restored tar, from the index: owners, modes and mtimes as on the
 * host. `linkTo`: the earlier path of a hard link, whose content it shares.
 */
export function entryHeader(e: TreeEntry, linkTo?: string): Buffer {
  const name = tarName(e);
  const link = linkTo !== undefined ? `./${linkTo}` : e.link;
  const type = linkTo !== undefined ? '1' : e.type === 'd' ? '5' : e.type === 'l' ? '2' : '0';
  const parts: Buffer[] = [];
  if (Buffer.byteLength(name, 'latin1') > 100) parts.push(longField('L', name));
  if (link !== undefined && Buffer.byteLength(link, 'latin1') > 100) parts.push(longField('K', link));
  parts.push(header(name, type, { mode: e.mode, uid: e.uid, gid: e.gid, size: type === '0' ? e.size : 0, mtime: e.mtime, link }));
  return Buffer.concat(parts);
}

/** entryHeader(e, linkTo).length, without making it: a header, and a long name's or link's blocks. */
function headerLength(e: TreeEntry, linkTo?: string): number {
  const long = (v: string | undefined) => (v !== undefined && v.length > 100 ? BLOCK + pad(v.length + 1) : 0);
  return BLOCK + long(tarName(e)) + long(linkTo !== undefined ? `./${linkTo}` : e.link);
}

/**
 * The tree's stat fingerprint as the host's treeKey (backup.ts) computes it from find, made from the
 * list instead of a second pass over the host: TREE_KEY_LINE's lines (racy files' marked), sorted by
 * bytes, hashed.
 */
export function treeKeyOf(entries: TreeEntry[]): string {
  let lines = entries.map((e) => {
    const [ino, size, mt, ct] = e.stamp.split(' ');
    return `${e.racy ? 'R' : ''}${ino} ${ct} ${mt} ${size} ${e.mode.toString(8)} ${e.type} ${e.path}`;
  });
  // sort takes a name with a newline as two lines.
  if (entries.some((e) => e.path.includes('\n'))) lines = lines.join('\n').split('\n');
  // The default order compares UTF-16 code units: for these byte strings, LC_ALL=C sort's order.
  lines.sort();
  return createHash('sha256')
    .update(lines.join('\n') + '\n', 'latin1')
    .digest('hex');
}

/** For each entry in order, the earlier path it is a hard link of (same inode, a file linked more than once). */
export function hardLinks(entries: TreeEntry[]): Map<string, string> {
  const first = new Map<number, string>();
  const links = new Map<string, string>();
  for (const e of entries) {
    if (e.type !== 'f' || e.nlink < 2) continue;
    const p = first.get(e.ino);
    if (p === undefined) first.set(e.ino, e.path);
    else links.set(e.path, p);
  }
  return links;
}

/** What the manifest records of a tree: the restored tar's exact length, and counts as TarScanner counts them. */
export function treeFacts(entries: TreeEntry[]): { bytes: number; files: number; dirs: number; symlinks: number; owners: string[] } {
  const links = hardLinks(entries);
  let bytes = 2 * BLOCK;
  let files = 0;
  let dirs = 0;
  let symlinks = 0;
  const owners = new Map<string, number>();
  for (const e of entries) {
    const linkTo = links.get(e.path);
    bytes += headerLength(e, linkTo) + (e.type === 'f' && linkTo === undefined ? pad(e.size) : 0);
    if (e.type === 'f' && linkTo === undefined) files++;
    else if (e.type === 'd') dirs++;
    else if (e.type === 'l') symlinks++;
    const o = `${e.uid}:${e.gid}`;
    owners.set(o, (owners.get(o) ?? 0) + 1);
  }
  return { bytes, files, dirs, symlinks, owners: [...owners].sort((a, b) => b[1] - a[1]).map(([o]) => o) };
}

export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
export const padding = (size: number) => Buffer.alloc(pad(size) - size);

/** One member of a tar being read. */
export interface TarMember {
  name: string;
  type: string;
  size: number;
  link: string;
  mode: number;
}

export type TarEvent = { kind: 'member'; member: TarMember } | { kind: 'data'; data: Buffer } | { kind: 'member-end' } | { kind: 'end' };

function readNum(b: Buffer): number {
  if (b[0] & 0x80) {
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i];
    return n;
  }
  const s = b.toString('latin1').replace(/\0.*$/s, '').trim();
  return s ? parseInt(s, 8) : 0;
}

const cstr = (b: Buffer) => {
  const z = b.indexOf(0);
  return b.subarray(0, z === -1 ? b.length : z).toString('latin1');
};

/**
 * Reads a tar as it streams by (GNU long names, PAX path/linkpath/size), yielding each member, its
 * data and its end. Names are byte strings (latin1). A header whose checksum is wrong is refused.
 */
export class TarReader {
  private head = Buffer.alloc(BLOCK);
  private fill = 0;
  private dataLeft = 0;
  private padLeft = 0;
  private ext: { type: string; bufs: Buffer[]; left: number } | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private paxSize: number | undefined;
  private inMember = false;
  ended = false;

  feed(chunk: Buffer): TarEvent[] {
    const ev: TarEvent[] = [];
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.dataLeft > 0) {
        const take = Math.min(this.dataLeft, chunk.length - off);
        const data = chunk.subarray(off, off + take);
        off += take;
        this.dataLeft -= take;
        if (this.ext) {
          this.ext.bufs.push(data);
          this.ext.left -= take;
        } else ev.push({ kind: 'data', data });
        if (this.dataLeft === 0) this.endData(ev);
        continue;
      }
      if (this.padLeft > 0) {
        const take = Math.min(this.padLeft, chunk.length - off);
        off += take;
        this.padLeft -= take;
        continue;
      }
      const take = Math.min(BLOCK - this.fill, chunk.length - off);
      chunk.copy(this.head, this.fill, off, off + take);
      this.fill += take;
      off += take;
      if (this.fill === BLOCK) {
        this.fill = 0;
        this.onHeader(this.head, ev);
      }
    }
    return ev;
  }

  private endData(ev: TarEvent[]): void {
    if (this.ext) {
      const data = Buffer.concat(this.ext.bufs);
      const type = this.ext.type;
      this.ext = undefined;
      if (type === 'L') this.longName = cstr(data);
      else if (type === 'K') this.longLink = cstr(data);
      else if (type === 'x') {
        const text = data.toString('latin1');
        let i = 0;
        while (i < text.length) {
          const sp = text.indexOf(' ', i);
          const len = Number(text.slice(i, sp));
          if (!(len > 0) || sp < 0) break;
          const rec = text.slice(sp + 1, i + len - 1);
          const eq = rec.indexOf('=');
          const [k, v] = [rec.slice(0, eq), rec.slice(eq + 1)];
          if (k === 'path') this.longName = v;
          else if (k === 'linkpath') this.longLink = v;
          else if (k === 'size') this.paxSize = Number(v);
          i += len;
        }
      }
      return;
    }
    this.inMember = false;
    ev.push({ kind: 'member-end' });
  }

  private onHeader(h: Buffer, ev: TarEvent[]): void {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      ev.push({ kind: 'end' });
      return;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (readNum(h.subarray(148, 156)) !== sum) throw new OpsError('a tar header has a wrong checksum: the archive is damaged');
    const type = String.fromCharCode(h[156] || 0x30);
    let size = readNum(h.subarray(124, 136));
    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      this.ext = { type, bufs: [], left: size };
      this.dataLeft = size;
      this.padLeft = pad(size) - size;
      if (size === 0) this.endData(ev);
      return;
    }
    const ustar = h.subarray(257, 263).toString('latin1') === 'ustar\0';
    const prefix = ustar ? cstr(h.subarray(345, 500)) : '';
    const name = this.longName ?? (prefix ? `${prefix}/${cstr(h.subarray(0, 100))}` : cstr(h.subarray(0, 100)));
    const link = this.longLink ?? cstr(h.subarray(157, 257));
    if (this.paxSize !== undefined) size = this.paxSize;
    this.longName = this.longLink = this.paxSize = undefined;
    if (type === '1' || type === '2' || type === '5') size = 0;
    ev.push({ kind: 'member', member: { name, type: type === '7' ? '0' : type, size, link, mode: readNum(h.subarray(100, 108)) } });
    this.inMember = true;
    this.dataLeft = size;
    this.padLeft = pad(size) - size;
    if (size === 0) this.endData(ev);
  }

  /** Whether the archive ended properly (its end blocks, or at least between members). */
  get complete(): boolean {
    return this.ended || (!this.inMember && this.fill === 0 && !this.ext);
  }
}

/** sha256 of a file's content as it streams by. */
export class FileHash {
  private h: Hash = createHash('sha256');
  bytes = 0;
  update(b: Buffer): void {
    this.h.update(b);
    this.bytes += b.length;
  }
  digest(): string {
    return this.h.digest('hex');
  }
}
