/**
 * A backup's stored code tree read back as one tar, whichever way it was stored: streamed whole by
 * restic, or through a mirror (tree-mirror.ts), rebuilt from the mirror's snapshot and its file index,
 * each file checked on the way.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { OpsError } from '../core/errors.js';
import type { Store } from './restic.js';
import { END_OF_ARCHIVE, entryHeader, FileHash, hardLinks, padding, parseIndex, sortTree, TarReader, type TreeEntry } from './tree-index.js';
import { Collect, type MirroredTree } from './tree-mirror.js';

/** Whether a manifest's tree was stored through a mirror. */
export const isMirrored = (code: object): code is MirroredTree => 'mirror' in code && typeof (code as { mirror?: unknown }).mirror === 'object';

/**
 * Writes a mirrored backup's tree into `out` as the tar the host's tar would have made (owners,
 * modes and mtimes from the index, each file checked against its sha256 on the way). Anything that
 * does not match the index fails the stream: a damaged store never restores as a whole tree.
 */
export async function dumpMirrored(store: Store, code: MirroredTree, out: Writable, signal?: AbortSignal): Promise<void> {
  const idx = new Collect();
  await store.dump(code.snapshot, code.mirror.index, idx, signal);
  const buf = idx.buffer;
  const sha = createHash('sha256').update(buf).digest('hex');
  if (sha !== code.sha256) throw new OpsError(`code: the stored file index has sha256 ${sha}, ${code.sha256} recorded`);
  const entries = sortTree(parseIndex(buf));
  const links = hardLinks(entries);
  const prefix = `${code.file}/`;
  const reader = new TarReader();
  let next = 1; // entries[0] is the root, which restic dump does not list
  let cur: { e: TreeEntry; hash: FileHash; link: boolean } | undefined;
  const send = async (parts: Buffer[]) => {
    for (const b of parts) {
      if (out.destroyed) throw new OpsError('the receiving end of the stream closed early');
      if (!out.write(b)) await new Promise<void>((res, rej) => (out.once('drain', res), out.once('close', () => rej(new OpsError('the receiving end of the stream closed early')))));
    }
  };
  let started = false;
  const rebuild = new Writable({
    highWaterMark: 1 << 20,
    write: (chunk: Buffer, _enc, cb) => {
      void (async () => {
        const parts: Buffer[] = [];
        if (!started) {
          started = true;
          parts.push(entryHeader(entries[0]));
        }
        for (const ev of reader.feed(chunk)) {
          if (ev.kind === 'member') {
            const m = ev.member;
            const e = entries[next++];
            const name = m.name.replace(/\/$/, '');
            const kind = m.type === '5' ? 'd' : m.type === '2' ? 'l' : m.type === '0' ? 'f' : '?';
            if (!e || name !== prefix + e.path || kind !== e.type || (kind === 'l' && m.link !== e.link) || (kind === 'f' && m.size !== e.size)) {
              throw new OpsError(`code: the stored tree does not match its index at ${JSON.stringify(name.slice(prefix.length))}${e ? ` (index: ${JSON.stringify(e.path)})` : ''}`);
            }
            const linkTo = links.get(e.path);
            parts.push(entryHeader(e, linkTo));
            if (kind === 'f') cur = { e, hash: new FileHash(), link: linkTo !== undefined };
          } else if (ev.kind === 'data' && cur) {
            cur.hash.update(ev.data);
            if (!cur.link) parts.push(Buffer.from(ev.data));
          } else if (ev.kind === 'member-end' && cur) {
            const sha = cur.hash.digest();
            if (sha !== cur.e.sha256) throw new OpsError(`code: ${JSON.stringify(cur.e.path)} has sha256 ${sha} stored, ${cur.e.sha256} recorded`);
            if (!cur.link) parts.push(padding(cur.e.size));
            cur = undefined;
          }
        }
        await send(parts);
      })().then(
        () => cb(),
        (err: Error) => cb(err),
      );
    },
    final: (cb) => {
      void (async () => {
        if (!started) await send([entryHeader(entries[0])]);
        if (!reader.complete || next !== entries.length) throw new OpsError(`code: the stored tree holds ${next - 1} of the ${entries.length - 1} entries its index lists`);
        await send([END_OF_ARCHIVE]);
      })().then(
        () => cb(),
        (err: Error) => cb(err),
      );
    },
  });
  await store.dump(code.snapshot, code.file, rebuild, signal);
  // As a dump into `out` would: it ends once the rebuilt tar is whole (a reader that waits for its end, a read-ahead, goes on).
  await finished(rebuild);
  // And returns once `out` has taken every byte (a Meter's hash is complete: export checks it next).
  out.end();
  await finished(out, { readable: false });
}

const mirrored = new WeakMap<Store, boolean>();
/**
 * Whether this store's backups send code trees through mirrors: the setting treeMirrors (opsdeck
 * settings treeMirrors on), read from the home's settings.json once per store. Read here, below the
 * app's settings module in the layers, so every way a Store is opened (CLI, console, bench) agrees.
 */
export function treeMirrorsOn(store: Store): boolean {
  let on = mirrored.get(store);
  if (on === undefined) {
    try {
      on = (JSON.parse(readFileSync(join(store.home, 'settings.json'), 'utf8')) as { treeMirrors?: unknown }).treeMirrors === true;
    } catch {
      on = false;
    }
    mirrored.set(store, on);
  }
  return on;
}

/** Reads a backup's stored tree as one tar into `out`, whichever way it was stored. */
export async function dumpTree(store: Store, code: { snapshot: string }, file: string, out: Writable, signal?: AbortSignal): Promise<void> {
  if (isMirrored(code)) await dumpMirrored(store, code, out, signal);
  else await store.dump(code.snapshot, file, out, signal);
}

/**
 * What a read of a stored tree (`got`, as a Meter measured it) shows against the manifest: a tar
 * stream by its length and sha256; a mirrored tree was checked file by file on the way (its sha256
 * is the index's), so by the length of the tar rebuilt.
 */
export function treeMismatch(code: { bytes: number; sha256: string }, got: { bytes: number; sha256: string }): string[] {
  const out: string[] = [];
  if (got.bytes !== code.bytes) out.push(`code: ${got.bytes} bytes stored, ${code.bytes} recorded`);
  if (!isMirrored(code) && got.sha256 !== code.sha256) out.push(`code: sha256 ${got.sha256} stored, ${code.sha256} recorded`);
  return out;
}
