import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { OpsError } from '../core/errors.js';

/**
 * Walks tar headers as the archive streams by, touching only the 512-byte header blocks: counts
 * entries and refuses any whose path would land outside the extraction directory.
 */
export class TarScanner {
  files = 0;
  dirs = 0;
  symlinks = 0;
  others = 0;
  /** Entries per owner, as "uid:gid" (numeric, as tar --numeric-owner stores them). */
  owners = new Map<string, number>();
  private header = Buffer.alloc(512);
  private headerFill = 0;
  private skip = 0; // bytes of entry data (plus padding) still to pass over
  private capture: { kind: 'pax' | 'longname'; buf: Buffer[]; left: number; pad: number } | undefined;
  private pendingPath: string | undefined;
  private ended = false;
  unsafe: string | undefined;

  feed(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.capture) {
        const take = Math.min(this.capture.left, chunk.length - off);
        this.capture.buf.push(chunk.subarray(off, off + take));
        this.capture.left -= take;
        off += take;
        if (this.capture.left === 0) {
          const data = Buffer.concat(this.capture.buf).toString('utf8');
          if (this.capture.kind === 'longname') this.pendingPath = data.replace(/\0.*$/s, '');
          else {
            const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data);
            if (m) this.pendingPath = m[1];
          }
          this.skip = this.capture.pad;
          this.capture = undefined;
        }
        continue;
      }
      if (this.skip > 0) {
        const take = Math.min(this.skip, chunk.length - off);
        this.skip -= take;
        off += take;
        continue;
      }
      const take = Math.min(512 - this.headerFill, chunk.length - off);
      chunk.copy(this.header, this.headerFill, off, off + take);
      this.headerFill += take;
      off += take;
      if (this.headerFill === 512) {
        this.headerFill = 0;
        this.onHeader(this.header);
      }
    }
  }

  private onHeader(h: Buffer): void {
    if (h.every((b) => b === 0)) return; // end-of-archive blocks
    const size = parseSize(h.subarray(124, 136));
    const type = String.fromCharCode(h[156] || 0x30);
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'x' || type === 'L') {
      this.capture = { kind: type === 'x' ? 'pax' : 'longname', buf: [], left: size, pad: padded - size };
      if (size === 0) this.capture = undefined;
      return;
    }
    if (type === 'g' || type === 'K') {
      this.skip = padded;
      return;
    }
    const name = cstr(h.subarray(0, 100));
    const prefix = h.subarray(257, 263).toString('latin1').startsWith('ustar') ? cstr(h.subarray(345, 500)) : '';
    const path = this.pendingPath ?? (prefix ? `${prefix}/${name}` : name);
    this.pendingPath = undefined;
    if (!this.unsafe && isUnsafePath(path)) this.unsafe = path;
    const owner = `${parseSize(h.subarray(108, 116))}:${parseSize(h.subarray(116, 124))}`;
    // A bound: a tree of a million owners is no tree to restore as one user anyway.
    if (this.owners.has(owner) || this.owners.size < 1000) this.owners.set(owner, (this.owners.get(owner) ?? 0) + 1);
    if (type === '0' || type === '\0' || type === '7') this.files++;
    else if (type === '5') this.dirs++;
    else if (type === '2') this.symlinks++;
    else this.others++;
    this.skip = type === '5' || type === '2' || type === '1' ? 0 : padded;
  }
}

function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z === -1 ? b.length : z).toString('utf8');
}

function parseSize(b: Buffer): number {
  if (b[0] & 0x80) {
    // GNU base-256 for entries over 8 GiB
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i];
    return n;
  }
  const s = cstr(b).trim();
  return s ? parseInt(s, 8) : 0;
}

export function isUnsafePath(p: string): boolean {
  return p.startsWith('/') || p.split('/').some((seg) => seg === '..') || p.includes('\0');
}

export interface MeterResult {
  bytes: number;
  sha256: string;
}

/**
 * A sink that hashes and counts what passes, feeds scanners, and forwards the bytes to `out` with
 * backpressure, but does NOT end `out` when its input ends: the caller ends `out` only once the
 * producer's exit status is known to be good (restic would otherwise record a truncated stream).
 */
export class Meter extends Writable {
  bytes = 0;
  private hash: Hash = createHash('sha256');
  readonly out = new PassThrough({ highWaterMark: 1 << 20 });

  /** sql: a dump's row counter (its engine's); rewrite: what goes on to `out` (a dump mapped for where it loads); the hash is of what came in. */
  constructor(private readonly opts: { tar?: TarScanner; sql?: { feed(chunk: Buffer): void }; onBytes?: (n: number) => void; refuseUnsafe?: boolean; rewrite?: { feed(chunk: Buffer): Buffer } } = {}) {
    super({ highWaterMark: 1 << 20 });
    // Failures travel through the relay's promises. A consumer may not be listening yet when the
    // stream is destroyed (restic still starting), and an unheard 'error' event would kill the process.
    this.on('error', () => {});
    this.out.on('error', () => {});
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    this.opts.tar?.feed(chunk);
    this.opts.sql?.feed(chunk);
    this.opts.onBytes?.(this.bytes);
    if (this.opts.refuseUnsafe && this.opts.tar?.unsafe) {
      return cb(new OpsError(`archive entry ${JSON.stringify(this.opts.tar.unsafe)} would land outside the target directory: refused`));
    }
    if (this.out.destroyed) return cb(new OpsError('the receiving end of the stream closed early'));
    if (this.opts.rewrite) chunk = this.opts.rewrite.feed(chunk);
    if (this.out.write(chunk)) return cb();
    const onDrain = () => {
      this.out.off('close', onClose);
      cb();
    };
    const onClose = () => {
      this.out.off('drain', onDrain);
      cb(new OpsError('the receiving end of the stream closed early'));
    };
    this.out.once('drain', onDrain);
    this.out.once('close', onClose);
  }

  digest(): MeterResult {
    return { bytes: this.bytes, sha256: this.hash.copy().digest('hex') };
  }
}
