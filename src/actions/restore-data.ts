/** How a restore gets its data in: the tree staged beside the live one, the database loaded so that it commits only once checked. */
import { PassThrough, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Backup, Instance } from '../../inventory/index.js';
import { parseDbUrl, type Db, type DbLoader } from '../databases/index.js';
import type { StepIO } from '../core/plan.js';
import { CommandError, type Shell } from '../remote/shell.js';
import { OpsError, UsageError } from '../core/errors.js';
import { storedStream } from './backup.js';
import { dbFor, loginShellFor, shellFor, type Deps } from '../deps/deps.js';
import { Meter, TarScanner } from './meter.js';
import { relay } from './relay.js';
import { codeTarArgv, hasSharedDir } from './releases.js';
import { dumpTree, isMirrored } from '../store/tree-readback.js';

/**
 * Unpacks a tar from stdin into a fresh directory $1, modes kept (-p). As root (a host's --become
 * root) every entry also gets back its owner and group, by number as the backup stored them; any
 * other user can only create files it owns, so there they belong to that user (checkTreeUser says
 * so, or refuses, before anything changes).
 */
export const UNPACK_SCRIPT =
  'rm -rf -- "$1" && mkdir -- "$1" && if [ "$(id -u)" = 0 ]; then exec tar -x -p --same-owner --numeric-owner -f - -C "$1"; else exec tar -x -p --no-same-owner -f - -C "$1"; fi';

/**
 * A stored stream read ahead: its restic starts at once, so that opening the store's key (a
 * deliberately costly key derivation, about half a second of CPU) and reading its index happen while
 * the run does other things (the checks' round trips to the host), not on the way of the step that
 * takes the stream. What restic writes waits in a pipe (a few KB) until then; taken, it is the same
 * stream as a dump started there, checked the same way.
 */
export class ReadAhead {
  private readonly ac = new AbortController();
  private readonly pass: PassThrough;
  private readonly done: Promise<void>;
  private taken = false;

  /** `whole`: the stream's size, held in memory whole, so that restic ends (its lock gone) before anyone takes it. */
  constructor(produce: (sink: Writable, signal: AbortSignal) => Promise<void>, whole?: number) {
    this.pass = new PassThrough(whole === undefined ? undefined : { highWaterMark: whole + 1 });
    this.done = produce(this.pass, this.ac.signal);
    // Judged by whoever takes the stream; one that is dropped has nothing to say.
    this.done.catch(() => {});
  }

  /**
   * The stream into `sink` (a relay's producer): settles once restic has ended and `sink` has every
   * byte, as a dump into it would. A failure of either side, or `signal`, stops restic.
   */
  async into(sink: Writable, signal: AbortSignal): Promise<void> {
    if (this.taken) throw new OpsError('internal: a stream read ahead was taken twice');
    this.taken = true;
    const stop = () => this.ac.abort();
    if (signal.aborted) stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      this.pass.pipe(sink);
      const flowed = finished(sink);
      flowed.catch(() => {});
      try {
        await Promise.all([this.done, flowed]);
      } catch (err) {
        stop();
        this.pass.unpipe(sink);
        this.pass.resume();
        await this.done.catch(() => {});
        throw err;
      }
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  /** Stops the stream when no one took it, and resolves once its restic has ended (its lock gone). */
  async drop(): Promise<void> {
    if (!this.taken) {
      this.ac.abort();
      this.pass.resume();
    }
    await this.done.catch(() => {});
  }
}

/** A backup's stored code tar or dump, read ahead (ReadAhead; `whole`: held in memory whole). */
export function readAheadOf(deps: Deps, backup: Backup, part: 'code' | 'db', whole?: boolean): ReadAhead {
  const m = part === 'code' ? backup.manifest.code : backup.manifest.db;
  return new ReadAhead((sink, signal) => readStored(deps, backup, part, sink, signal), whole ? m?.bytes : undefined);
}

/**
 * The largest dump read ahead whole into memory for a load that waits for the safety backup
 * (PostgreSQL): a restic held back on its output would keep its lock on the store, and a failed
 * safety backup's discard waits for that lock. A larger dump is read when the load starts.
 */
export const WHOLE_READ_AHEAD_MAX = 64 * 1024 * 1024;

/** A backup's stored code tar (rebuilt from its mirror when it went through one) or dump into `sink`. */
function readStored(deps: Deps, backup: Backup, part: 'code' | 'db', sink: Writable, signal: AbortSignal): Promise<void> {
  const file = storedStream(backup, part).file;
  // A tree stored through a mirror is rebuilt as the host's tar, each file checked on the way (tree-mirror.ts).
  return part === 'code' ? dumpTree(deps.store, backup.manifest.code!, file, sink, signal) : deps.store.dump(backup.manifest.db!.snapshot, file, sink, signal);
}

/** Streams a stored code tar into a fresh staging directory on the host, checking it against the manifest (`ahead`: its stream, read ahead). */
export async function stageCode(deps: Deps, backup: Backup, target: Instance, staging: string, ctx: StepIO, ahead?: ReadAhead): Promise<void> {
  const m = backup.manifest.code!;
  const shell = shellFor(deps, target);
  const tar = new TarScanner();
  const meter = new Meter({ tar, refuseUnsafe: true, onBytes: (n) => ctx.progress(n, m.bytes) });
  // Modes exactly; owners too when root unpacks (UNPACK_SCRIPT).
  const argv = ['sh', '-c', UNPACK_SCRIPT, 'sh', staging];
  await relay(
    meter,
    (sink, signal) => (ahead ? ahead.into(sink, signal) : readStored(deps, backup, 'code', sink, signal)),
    async (src, signal) => {
      const res = await shell.exec(argv, { stdin: src, signal });
      if (res.code !== 0) throw new CommandError(shell.label, ['tar', '-x'], res);
    },
    { signal: ctx.signal, beforeEnd: () => checkDigest('code tree', meter, m, isMirrored(m)) },
  );
  ctx.log(`code: ${tar.files} files unpacked and checked (sha256 ${m.sha256.slice(0, 12)}…)`);
}

/**
 * Loads a stored dump into the target's database so that it commits only once the dump's checksum
 * matched (how, is its engine's: PostgreSQL loads in one transaction). What the load kept aside for
 * an undo goes to `keep` (as soon as the engine knows it, and before it changes the target: see
 * DbLoader.run); without it, it is dropped at once.
 */
export async function loadDatabase(
  deps: Deps,
  backup: Backup,
  target: Instance,
  ctx: StepIO,
  beforeCommit?: () => Promise<void>,
  keep?: Keep,
  redact?: string[],
  ahead?: ReadAhead,
  /** The load starts only once this settles (the safety backup taken); the loader's questions to the target (read only) go first. */
  after?: Promise<void>,
): Promise<void> {
  const m = backup.manifest.db!;
  const db = dbFor(deps, target);
  if (!db) throw new UsageError(`backup ${backup.id} has a database but ${target.name} has none configured`, `set one with: opsdeck instance add ... --db URL`);
  const shell = loginShellFor(deps, target);
  // The dump's owner: the role it was taken as (older backups: their instance's role today).
  const dumpedAs =
    m.role ??
    (() => {
      const url = deps.inv.getInstance(backup.instance)?.dbUrl;
      return url ? parseDbUrl(url).user : undefined;
    })();
  const loader = await db.engine.loader(shell, db, { kind: m.kind, role: dumpedAs, tables: m.tables, redact }, ctx.signal);
  await after;
  const meter = new Meter({ onBytes: (n) => ctx.progress(n, m.bytes), rewrite: loader });
  await runLoad(
    loader,
    meter,
    (sink, signal) => (ahead ? ahead.into(sink, signal) : readStored(deps, backup, 'db', sink, signal)),
    ctx,
    () => checkDigest('database dump', meter, m),
    beforeCommit,
    keep,
  );
  ctx.log(`database: ${Object.keys(m.tables).length} tables loaded ${loader.how}`);
  logUnmapped(ctx, loader);
  await keptAside(shell, db, loader, keep);
}

/**
 * Drives one load: the loader's head, the dump through the Meter (hashed, then mapped by the loader),
 * and, only once the producer ended cleanly and `check` accepted what passed, the loader's finish,
 * the caller's go-ahead and the commit. Anything short of that never commits.
 */
async function runLoad(
  loader: DbLoader,
  meter: Meter,
  produce: (sink: Meter, signal: AbortSignal) => Promise<void>,
  ctx: StepIO,
  check?: () => void,
  beforeCommit?: () => Promise<void>,
  keep?: Keep,
): Promise<void> {
  for (const line of loader.before) ctx.log(`database: ${line}`);
  meter.out.write(loader.head);
  await relay(meter, produce, (input, signal) => loader.run(input, signal, keep && (async (k) => keep(k))), {
    signal: ctx.signal,
    beforeEnd: async () => {
      check?.();
      meter.out.write(loader.finish());
      // The load's session has been handed the whole dump (written to its channel or pipe, not yet
      // run by the server) before the commit is let go and recorded as going: a dump read ahead is in
      // the Meter before the session has even started.
      await takenUp(meter.out);
      // The load stays uncommitted until the caller lets it (the staged code tree is complete).
      await beforeCommit?.();
      meter.out.write(loader.commit);
    },
  });
}

/**
 * Resolves once the reader of `out` has taken everything written to it; rejects when `out` closed
 * first (the reader failed: the relay says why). Watches 'data' only once a reader made it flow: a
 * listener on a stream no one reads yet would take its bytes for itself.
 */
export function takenUp(out: PassThrough): Promise<void> {
  return new Promise((resolve, reject) => {
    let watching = false;
    const check = () => {
      const closed = out.destroyed;
      if (!closed && out.readableFlowing === null) return;
      if (!closed && !watching) {
        watching = true;
        out.on('data', check);
      }
      if (!closed && out.readableLength + out.writableLength > 0) return;
      out.off('data', check);
      out.off('resume', check);
      out.off('close', check);
      if (closed) reject(new OpsError('the load ended before it took the whole dump'));
      else resolve();
    };
    out.on('resume', check);
    out.on('close', check);
    check();
  });
}

/** What the load could not give back as the source had it: said in the run log, not a failure. */
function logUnmapped(ctx: StepIO, loader: DbLoader): void {
  for (const n of loader.notes()) ctx.log(`database: not as in the source: ${n}`, 'warn');
}

/** Where a load's caller keeps what the load kept aside for an undo (the run's state, the half-restored record). */
export type Keep = (kept: string) => void | Promise<void>;

/** Hands what the load kept for an undo to `keep`, or drops it when the caller has no use for it. */
async function keptAside(shell: Shell, db: Db, loader: DbLoader, keep?: Keep): Promise<void> {
  const kept = loader.kept();
  if (kept === undefined) return;
  if (keep) await keep(kept);
  else await db.engine.dropKept(shell, db, kept);
}

/** Streams a live instance's tree straight into a staging directory on another host. */
export async function stageCodeFrom(deps: Deps, source: Instance, target: Instance, staging: string, ctx: StepIO): Promise<void> {
  const from = shellFor(deps, source);
  const to = shellFor(deps, target);
  const tar = new TarScanner();
  const meter = new Meter({ tar, refuseUnsafe: true, onBytes: (n) => ctx.progress(n) });
  // A release-mode source sends its shared/ too (SHARED_IN_TAR): the swap puts it in place of the links.
  const pack = codeTarArgv(source.path, await hasSharedDir(deps, source, ctx.signal));
  const unpack = ['sh', '-c', UNPACK_SCRIPT, 'sh', staging];
  await relay(
    meter,
    async (sink, signal) => {
      const res = await from.exec(pack, { stdout: sink, signal });
      if (res.code !== 0) throw new CommandError(from.label, pack, res);
    },
    async (src, signal) => {
      const res = await to.exec(unpack, { stdin: src, signal });
      if (res.code !== 0) throw new CommandError(to.label, ['tar', '-x'], res);
    },
    { signal: ctx.signal },
  );
  ctx.log(`code: ${tar.files} files copied from ${source.name}`);
}

/** The dump of a live instance straight into the target's load, which commits only once the dump ended cleanly. */
export async function loadDatabaseFrom(
  deps: Deps,
  source: Instance,
  target: Instance,
  ctx: StepIO,
  beforeCommit?: () => Promise<void>,
  keep?: Keep,
  redact?: string[],
  /** As loadDatabase's. */
  after?: Promise<void>,
): Promise<void> {
  const src = dbFor(deps, source)!;
  const dst = dbFor(deps, target);
  if (!dst) throw new UsageError(`${target.name} has no database configured`);
  const from = loginShellFor(deps, source);
  const to = loginShellFor(deps, target);
  const loader = await dst.engine.loader(to, dst, { kind: src.engine.kind, role: src.target.user, redact }, ctx.signal);
  await after;
  const meter = new Meter({ onBytes: (n) => ctx.progress(n), rewrite: loader });
  const dump = src.engine.dumpArgv(src.target);
  // The commit goes only after the dump exited 0 (a dump cut short never commits) and the caller let it.
  await runLoad(
    loader,
    meter,
    async (sink, signal) => {
      const res = await from.exec(dump, { stdout: sink, secretLine: src.password, signal });
      if (res.code !== 0) throw new CommandError(from.label, dump, res);
    },
    ctx,
    undefined,
    beforeCommit,
    keep,
  );
  ctx.log(`database copied from ${source.name} ${loader.how}`);
  logUnmapped(ctx, loader);
  await keptAside(to, dst, loader, keep);
}

function checkDigest(what: string, meter: Meter, m: { bytes: number; sha256: string }, byLength = false): void {
  const d = meter.digest();
  if ((!byLength && d.sha256 !== m.sha256) || d.bytes !== m.bytes) {
    throw new OpsError(
      `the stored ${what} does not match its manifest (sha256 ${d.sha256.slice(0, 12)}…, ${d.bytes} bytes; expected ${m.sha256.slice(0, 12)}…, ${m.bytes} bytes): the store is damaged or was tampered with`,
      1,
      'run: opsdeck backups verify ID, and restore an older backup',
    );
  }
}
