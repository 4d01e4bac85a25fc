import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { OpsError } from '../core/errors.js';
import { CommandError, type Shell } from '../remote/shell.js';
import type { SnapshotResult, Store } from './restic.js';
import { FIND_FORMAT, FileHash, parseFindOutput, RACY_SINCE, racyAfter, serializeIndex, TarReader, treeFacts, type TreeEntry } from './tree-index.js';

/**
 * A per-instance mirror of the code tree on the jump box (mirrors/INSTANCE in the home), so a backup
 * sends only what changed: the host lists its tree with find (stat data, no file contents), only
 * files whose inode, size, mtime or ctime differ from the last list travel (tar of that list over the
 * same SSH connection), and restic then backs up the mirror directory natively, reading only the
 * files it finds changed. Owners, modes and mtimes are the host's, kept in a file index stored beside
 * the mirror in each snapshot, with each file's sha256; a restore rebuilds the host's tar from both.
 */

/** What a mirrored backup records of the tree (the manifest's code part). */
export interface MirroredTree {
  snapshot: string;
  /** The tree's directory inside the snapshot (no leading slash, as `restic dump` takes it after one). */
  file: string;
  /** The exact length of the tar a restore rebuilds. */
  bytes: number;
  /** sha256 of the stored file index, which holds each file's sha256. */
  sha256: string;
  files: number;
  dirs: number;
  symlinks: number;
  owners: string[];
  mirror: { index: string };
}

interface MirrorState {
  version: 1;
  repository: string;
  /** host:path the mirror is of; another one (an instance moved) starts afresh. */
  source: string;
  /** Per file: the host's stamp when it was fetched, its sha256, and the mirror copy's own stat after writing. */
  files: Record<string, { stamp: string; sha256: string; size: number; local: string }>;
  /** The file index as last written: its sha256 and its own stat (an index left as it was is not written again). */
  index?: { sha256: string; local: string };
}

export const mirrorDir = (home: string, instance: string) => join(home, 'mirrors', instance);
/** An instance gone from the inventory leaves no copy of its tree on the jump box (its backups hold what it was). */
export const forgetMirror = (home: string, instance: string) => rmSync(mirrorDir(home, instance), { recursive: true, force: true });

const toBuf = (p: string) => Buffer.from(p, 'latin1');
const SLASH = Buffer.from('/');
/** The mirror copy's stat: any write to it (or chmod, or a copy put over it) changes its ctime, which no one can set back. */
const localStamp = (abs: Buffer): string => {
  const s = lstatSync(abs, { bigint: true });
  return `${s.ino} ${s.size} ${s.mtimeNs} ${s.ctimeNs}`;
};

const stampIfAny = (file: string): string | undefined => {
  try {
    return localStamp(toBuf(file));
  } catch {
    return undefined;
  }
};

/** Collects a command's stdout (the file list). */
export class Collect extends Writable {
  chunks: Buffer[] = [];
  bytes = 0;
  constructor(private readonly onBytes?: (n: number) => void) {
    super();
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb();
  }
  get buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * The host's file list: find's stat data, NUL-separated, then find's exit status (sh has no
 * pipefail), compressed when the host has gzip (a 2,000-file list is ~190 KB, ~50 KB gzipped). It
 * starts with RACY_SINCE's time: files changed after it are racy.
 * With $2 set, a tree whose path is a symbolic link (release mode, most likely) is not listed: exit 4.
 */
const LIST_SCRIPT = `if [ -n "$2" ] && [ -L "$1" ]; then exit 4; fi; cd -- "$1" || exit 1; ${RACY_SINCE}; { printf 'since\\t%s\\0\\0' "$T"; find . -printf '${FIND_FORMAT}'; printf 'end\\t%s\\0\\0' "$?"; } | if command -v gzip >/dev/null 2>&1; then gzip -1; else cat; fi`;
/** The files named on stdin (NUL-separated), as one tar; owners as numbers, as the full backup stores them. */
const SEND_SCRIPT = 'cd -- "$1" && exec tar --numeric-owner --null --no-recursion -T - -cf -';

/** The host's list of a tree, and the bytes it took on the wire. */
export class TreeList {
  private parsed: TreeEntry[] | undefined;
  private hash: string | undefined;
  /** The tree's fingerprint (treeKeyOf), once worked out. */
  key?: string;
  constructor(
    /** find's output as the host printed it (unzipped), without the time it starts with. */
    readonly raw: Buffer,
    readonly wire: number,
    /** RACY_SINCE's time on the host ('@0': unknown, every file racy). */
    readonly since: string,
  ) {}
  /** The entries, parsed on first use: a tree whose list is byte for byte one already stored needs none. Throws NotMirrorable. */
  get entries(): TreeEntry[] {
    if (!this.parsed) {
      this.parsed = parseFindOutput(this.raw);
      const racy = racyAfter(this.since);
      for (const e of this.parsed) if (racy(e)) e.racy = true;
    }
    return this.parsed;
  }
  /** sha256 of the list: equal only when no entry's stat data (inode, size, mtime, ctime, mode, owner, links) changed at all. */
  get sha256(): string {
    this.hash ??= createHash('sha256').update(this.raw).digest('hex');
    return this.hash;
  }
}

export async function listTree(shell: Shell, path: string, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<TreeList>;
/** With `unlessLink`: undefined, without listing it, when the tree's path is a symbolic link. */
export async function listTree(shell: Shell, path: string, signal: AbortSignal | undefined, onBytes: ((n: number) => void) | undefined, unlessLink: true): Promise<TreeList | undefined>;
export async function listTree(shell: Shell, path: string, signal?: AbortSignal, onBytes?: (n: number) => void, unlessLink = false): Promise<TreeList | undefined> {
  const out = new Collect(onBytes);
  const argv = ['sh', '-c', LIST_SCRIPT, 'sh', path, unlessLink ? 'unless-link' : ''];
  const res = await shell.exec(argv, { stdout: out, signal });
  if (unlessLink && res.code === 4) return undefined;
  if (res.code !== 0) throw new CommandError(shell.label, argv, res);
  let buf = out.buffer;
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  // The list's own bytes go on without the time: an unchanged tree's list stays byte for byte the same.
  const head = /^since\t@(\d+(?:\.\d+)?)\0\0/.exec(buf.subarray(0, 64).toString('latin1'));
  if (!head) throw new OpsError(`the host's file list of ${path} does not start with its time`);
  return new TreeList(buf.subarray(head[0].length), out.bytes, head[1]);
}

/** list.json beside the mirror: the last list's sha256 and the snapshot a backup through the mirror made of it. */
interface ListRecord {
  version: 1;
  repository: string;
  source: string;
  list: string;
  snapshot: string;
}

const listFile = (home: string, instance: string) => join(mirrorDir(home, instance), 'list.json');

/**
 * Which stored snapshot holds the tree this exact list was taken of. A list that is not byte for
 * byte the last one stored, or a record of another store or host:path, gives undefined.
 */
export function snapshotOfList(store: Store, instance: string, source: string, list: TreeList): string | undefined {
  try {
    const r = JSON.parse(readFileSync(listFile(store.home, instance), 'utf8')) as ListRecord;
    return r.version === 1 && r.repository === store.repository && r.source === source && r.list === list.sha256 && typeof r.snapshot === 'string' ? r.snapshot : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Records that the tree of this list is stored as `snapshot` (after the snapshot exists; only the last
 * list is kept). A list with racy files is not: the same bytes again would not prove the same tree.
 */
export function recordList(store: Store, instance: string, source: string, list: TreeList, snapshot: string): void {
  const file = listFile(store.home, instance);
  if (list.entries.some((e) => e.racy)) return void rmSync(file, { force: true });
  mkdirSync(mirrorDir(store.home, instance), { recursive: true, mode: 0o700 });
  writeFileSync(`${file}.tmp`, JSON.stringify({ version: 1, repository: store.repository, source, list: list.sha256, snapshot } satisfies ListRecord), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/**
 * Whether the store still has this snapshot (one forgotten behind opsdeck's back must not be named
 * by a new backup): a local store's snapshot file, else restic's list of snapshots.
 */
export async function storeHasSnapshot(store: Store, snapshot: string): Promise<boolean> {
  const local = !/^[a-z0-9]+:/i.test(store.repository) || store.repository.startsWith('local:');
  if (local && /^[0-9a-f]{8,64}$/.test(snapshot)) {
    // restic names a snapshot's file by its full ID; manifests keep the short one restic printed.
    const dir = join(store.repository.replace(/^local:/, ''), 'snapshots');
    if (snapshot.length === 64) return existsSync(join(dir, snapshot));
    try {
      return readdirSync(dir).some((f) => f.startsWith(snapshot));
    } catch {
      return false;
    }
  }
  return (await store.snapshots()).some((s) => s.id === snapshot || (snapshot.length >= 8 && s.id.startsWith(snapshot)));
}

function readState(file: string): MirrorState | undefined {
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as MirrorState;
    return s.version === 1 && typeof s.files === 'object' ? s : undefined;
  } catch {
    return undefined;
  }
}

/** The mirror's record as pendingBytes read it for a list, so the backup that follows reads it once. */
const stateRead = new WeakMap<TreeList, { file: string; state: MirrorState | undefined }>();

/** The record of a mirror, when it is of this store and this host:path; else undefined (a fresh start). */
function mirrorState(store: Store, instance: string, source: string, list?: TreeList): MirrorState | undefined {
  const file = join(mirrorDir(store.home, instance), 'state.json');
  const read = list && stateRead.get(list);
  const state = read?.file === file ? read.state : readState(file);
  return state && state.repository === store.repository && state.source === source ? state : undefined;
}

/**
 * What a backup through the mirror will fetch for this list, in bytes: the files whose stamp differs
 * from the mirror's record (copies found damaged on the jump box come on top). For the progress bar.
 */
export function pendingBytes(store: Store, instance: string, source: string, list: TreeList): number {
  const state = mirrorState(store, instance, source);
  stateRead.set(list, { file: join(mirrorDir(store.home, instance), 'state.json'), state });
  let n = 0;
  for (const e of list.entries) if (e.type === 'f' && state?.files[e.path]?.stamp !== e.stamp) n += e.size;
  return n;
}

export interface MirrorRun {
  tree: MirroredTree;
  /** Bytes that came over the wire: the file list and the changed files' tar. */
  wire: number;
  /** Files fetched, and of those, mirror copies that were not as written (damaged, changed by hand). */
  fetched: number;
  repaired: number;
  dataAdded: number;
}

/**
 * Brings the mirror up to the host's tree and stores it as one snapshot. A mirror copy whose stat is
 * not what this code left (touched, truncated, replaced) is fetched again, an entry the host no longer
 * has is removed, and anything in the mirror the list does not name goes: what is stored is the host's
 * tree, or the backup fails.
 */
export async function mirrorBackup(
  store: Store,
  shell: Shell,
  opts: {
    instance: string;
    source: string;
    path: string;
    tags: string[];
    /** The host's list, when the caller took it already (listTree). */
    list?: TreeList;
    /** The snapshot of this mirror's last recorded backup: restic compares with it instead of searching every snapshot for one. */
    parent?: string;
    signal?: AbortSignal;
    progress?: (n: number) => void;
    log?: (line: string) => void;
  },
): Promise<MirrorRun> {
  const dir = mirrorDir(store.home, opts.instance);
  const snapDir = join(dir, 'snap');
  const treeDir = join(snapDir, 'tree');
  const stateFile = join(dir, 'state.json');
  mkdirSync(treeDir, { recursive: true, mode: 0o700 });

  const list = opts.list ?? (await listTree(shell, opts.path, opts.signal, opts.progress));
  const { entries, wire: listBytes } = list;
  const state = mirrorState(store, opts.instance, opts.source, list);
  if (!state) opts.log?.(`mirror: none yet for ${opts.instance} (or it was of another tree): every file is fetched`);
  const prev = state?.files ?? {};
  const want = new Map(entries.map((e) => [e.path, e]));
  const keep = new Set<string>();
  /** The kept copies' stat, read once in the walk. */
  const seen = new Map<string, string>();
  let repaired = 0;

  // Walk the mirror: whatever the list does not name, or names as another kind, goes; a file copy
  // is kept only when both the host's stamp and the copy's own stat are as last recorded.
  // It yields now and then: the database's dump streams through this process meanwhile.
  let visited = 0;
  const walk = async (rel: string) => {
    const abs = toBuf(rel === '' ? treeDir : join(treeDir, rel));
    for (const d of readdirSync(abs, { withFileTypes: true, encoding: 'buffer' })) {
      if (++visited % 250 === 0) await new Promise(setImmediate);
      const name = d.name.toString('latin1');
      const p = rel === '' ? name : `${rel}/${name}`;
      const e = want.get(p);
      const absP = Buffer.concat([abs, SLASH, d.name]);
      const kind = d.isDirectory() ? 'd' : d.isSymbolicLink() ? 'l' : d.isFile() ? 'f' : '?';
      if (!e || e.type !== kind || (kind === 'l' && readlinkSync(absP, { encoding: 'buffer' }).toString('latin1') !== e.link)) {
        if (kind === 'f' && prev[p]) repaired += prev[p].local === localStamp(absP) ? 0 : 1;
        rmSync(absP, { recursive: true, force: true });
        continue;
      }
      if (kind === 'd') {
        keep.add(p);
        await walk(p);
      } else if (kind === 'l') keep.add(p);
      else {
        const was = prev[p];
        if (!was) continue;
        const local = localStamp(absP);
        if (was.local !== local) {
          repaired++;
          continue;
        }
        if (was.stamp === e.stamp) {
          e.sha256 = was.sha256;
          keep.add(p);
          seen.set(p, local);
        }
      }
    }
  };
  await walk('');
  if (repaired)
    opts.log?.(`mirror: ${repaired} file(s) of ${opts.instance}'s mirror were not as last recorded (a backup interrupted while fetching, or changed or damaged on the jump box): fetched again`);

  const fetch: TreeEntry[] = [];
  for (const e of entries) {
    if (e.path === '' || keep.has(e.path)) continue;
    const abs = toBuf(join(treeDir, e.path));
    if (e.type === 'd') mkdirSync(abs, { mode: 0o700 });
    else if (e.type === 'l') symlinkSync(toBuf(e.link ?? ''), abs);
    else fetch.push(e);
  }

  const fetched = fetch.length ? await fetchFiles(shell, opts.path, treeDir, fetch, opts.signal, (n) => opts.progress?.(listBytes + n)) : 0;
  const files: MirrorState['files'] = {};
  for (const e of entries) {
    if (e.type !== 'f') continue;
    if (!e.sha256) throw new OpsError(`mirror: ${JSON.stringify(e.path)} did not arrive from the host`);
    // A racy file's stamp is recorded as one no later list has: it is fetched again next time.
    files[e.path] = { stamp: e.racy ? `${e.stamp} racy` : e.stamp, sha256: e.sha256, size: e.size, local: seen.get(e.path) ?? localStamp(toBuf(join(treeDir, e.path))) };
  }
  // An index as last written is left alone (restic then skips it by its stat); one changed on the
  // jump box since is written again, as a mirror copy would be fetched again.
  const index = serializeIndex(entries);
  const sha256 = createHash('sha256').update(index).digest('hex');
  const indexFile = join(snapDir, 'index');
  let indexLocal = state?.index?.sha256 === sha256 ? stampIfAny(indexFile) : undefined;
  if (indexLocal === undefined || indexLocal !== state?.index?.local) {
    // Written beside snap/, not in it: a part file left by a crash must not be stored.
    writeFileSync(join(dir, 'index.tmp'), index, { mode: 0o600 });
    renameSync(join(dir, 'index.tmp'), indexFile);
    indexLocal = localStamp(toBuf(indexFile));
  }
  const tmp = `${stateFile}.tmp`;
  writeFileSync(tmp, JSON.stringify({ version: 1, repository: store.repository, source: opts.source, files, index: { sha256, local: indexLocal } } satisfies MirrorState), { mode: 0o600 });
  renameSync(tmp, stateFile);

  const snap: SnapshotResult = await store.backupDir(snapDir, opts.tags, opts.signal, opts.parent);
  recordList(store, opts.instance, opts.source, list, snap.snapshotId);
  const facts = treeFacts(entries);
  const base = snapDir.replace(/^\/+/, '');
  return {
    tree: { snapshot: snap.snapshotId, file: `${base}/tree`, sha256, ...facts, mirror: { index: `${base}/index` } },
    wire: listBytes + fetched,
    fetched: fetch.length,
    repaired,
    dataAdded: snap.dataAdded,
  };
}

/**
 * Fetches the listed files as one tar from the host into the mirror, each written beside its place
 * and renamed over it once whole, hashed as it arrives. Only regular files (and hard links among
 * them) that were asked for are accepted. Returns the bytes that came over the wire.
 */
async function fetchFiles(shell: Shell, path: string, treeDir: string, list: TreeEntry[], signal: AbortSignal | undefined, onBytes: (n: number) => void): Promise<number> {
  const asked = new Map(list.map((e) => [`./${e.path}`, e]));
  const got = new Set<string>();
  const reader = new TarReader();
  let wire = 0;
  let cur: { e: TreeEntry; fh: FileHandle; tmp: Buffer; hash: FileHash } | undefined;
  // Written outside the tree and renamed in: no name of the host's can collide with a part file.
  const partDir = join(treeDir, '..', '..', 'incoming');
  rmSync(partDir, { recursive: true, force: true });
  mkdirSync(partDir, { mode: 0o700 });
  let parts = 0;
  const partOf = () => toBuf(join(partDir, String(parts++)));
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write: (chunk: Buffer, _enc, cb) => {
      wire += chunk.length;
      onBytes(wire);
      void (async () => {
        for (const ev of reader.feed(chunk)) {
          if (ev.kind === 'member') {
            const e = asked.get(ev.member.name);
            if (!e || got.has(ev.member.name)) throw new OpsError(`the host sent ${JSON.stringify(ev.member.name)}, which was not asked for`);
            got.add(ev.member.name);
            if (ev.member.type === '1') {
              const from = asked.get(ev.member.link);
              if (!from?.sha256) throw new OpsError(`the host sent ${JSON.stringify(ev.member.name)} as a link to a file it had not sent`);
              copyFileSync(toBuf(join(treeDir, from.path)), toBuf(join(treeDir, e.path)));
              e.sha256 = from.sha256;
              continue;
            }
            if (ev.member.type !== '0') throw new OpsError(`the host sent ${JSON.stringify(ev.member.name)} as tar type ${ev.member.type}, not a file`);
            if (ev.member.size !== e.size) throw new OpsError(`${e.path} changed on the host while it was read (${ev.member.size} bytes, listed with ${e.size}): run the backup again`);
            const tmp = partOf();
            cur = { e, tmp, fh: await open(tmp, 'w', 0o600), hash: new FileHash() };
          } else if (ev.kind === 'data' && cur) {
            cur.hash.update(ev.data);
            await cur.fh.write(ev.data);
          } else if (ev.kind === 'member-end' && cur) {
            await cur.fh.close();
            renameSync(cur.tmp, toBuf(join(treeDir, cur.e.path)));
            cur.e.sha256 = cur.hash.digest();
            cur = undefined;
          }
        }
      })().then(
        () => cb(),
        (err: Error) => cb(err),
      );
    },
  });
  const stdin = Buffer.concat(list.map((e) => toBuf(`./${e.path}\0`)));
  const argv = ['sh', '-c', SEND_SCRIPT, 'sh', path];
  try {
    const res = await shell.exec(argv, { stdin, stdout: sink, signal });
    if (res.code !== 0) throw new CommandError(shell.label, argv, res);
  } finally {
    if (cur) {
      await cur.fh.close().catch(() => {});
      rmSync(cur.tmp, { force: true });
    }
    rmSync(partDir, { recursive: true, force: true });
  }
  if (!reader.complete) throw new OpsError('the changed files came from the host cut short');
  const missing = list.filter((e) => !got.has(`./${e.path}`));
  if (missing.length) throw new OpsError(`the host did not send ${missing.length} changed file(s), ${JSON.stringify(missing[0].path)} first`);
  return wire;
}
