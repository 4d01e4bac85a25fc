import { Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { OpsError } from '../core/errors.js';
import { displayArgv, recordCommand } from './command-log.js';
import { Tail, type ExecOptions, type ExecResult } from './shell.js';

/** What a started command looks like, whether it runs here or on a host. */
export interface Started {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  exited: Promise<{ code: number | null; signal: string | null }>;
  kill(): void;
  /** Called when a cancelled command did not end within the grace period and the run goes on without it. */
  abandon?(): void;
}

const noop = () => {};
const byteLength = (b: Buffer | string) => (typeof b === 'string' ? Buffer.byteLength(b) : b.length);

/** Refuses to start a command for a run that was already cancelled. */
export function checkNotAborted(label: string, signal?: AbortSignal): void {
  if (signal?.aborted) throw new OpsError(`a command on ${label} was cancelled before it started`);
}

/** How long a cancelled command may take to end before the run goes on without it. */
export const KILL_GRACE_MS = Number(process.env.OPSDECK_KILL_GRACE_SECONDS ?? 15) * 1000;

/**
 * Feeds a started command its stdin, routes its stdout and stderr, and waits for both the exit status
 * and the end of stdout. Shared by the local and the SSH shell so both behave alike.
 */
export async function drive(label: string, argv: readonly string[], p: Started, opts: ExecOptions, env: Record<string, string> = {}): Promise<ExecResult> {
  const t0 = Date.now();
  let bytesIn = 0;
  let bytesOut = 0;
  let ended: { code: number | null; signal: string | null } = { code: null, signal: null };
  p.stdout.on('data', (b: Buffer | string) => (bytesOut += byteLength(b)));
  const errTail = new Tail();
  p.stderr.setEncoding('utf8');
  p.stderr.on('data', (s: string) => {
    errTail.push(s);
    opts.onStderr?.(s);
  });

  let collected = '';
  const maxBuffer = opts.maxBuffer ?? 16 * 1024 * 1024;
  // Not pipeline(): on a failure it destroys the command's stdout, and a command writing to a closed
  // pipe dies of SIGPIPE at once, skipping its own clean-up (restic then leaves its lock in the
  // store). The output is let go and drained instead; kill() stops the command, which ends as asked.
  const out = opts.stdout
    ? (async (dst: Writable) => {
        p.stdout.once('error', (e) => dst.destroy(e));
        p.stdout.pipe(dst);
        try {
          await finished(dst);
        } catch (e) {
          p.stdout.unpipe(dst);
          p.stdout.resume();
          throw e;
        }
      })(opts.stdout)
    : new Promise<void>((resolve, reject) => {
        p.stdout.setEncoding('utf8');
        p.stdout.on('data', (s: string) => {
          collected += s;
          if (collected.length > maxBuffer) {
            p.kill();
            reject(new OpsError(`output of a command on ${label} exceeded ${maxBuffer} bytes`));
          }
        });
        p.stdout.on('end', resolve);
        p.stdout.on('error', reject);
      });

  // A command that exits before reading all its input makes our writes fail with EPIPE: its exit
  // status tells what happened, so those write errors are not the story.
  p.stdin.on('error', () => {});
  const feed = (async () => {
    if (opts.secretLine !== undefined) {
      if (opts.secretLine.includes('\n')) throw new OpsError('a secret may not contain a newline');
      p.stdin.write(opts.secretLine + '\n');
    }
    if (opts.stdin === undefined) p.stdin.end();
    else if (typeof opts.stdin === 'string' || Buffer.isBuffer(opts.stdin)) {
      bytesIn += Buffer.byteLength(opts.stdin);
      p.stdin.end(opts.stdin);
    } else {
      const src = opts.stdin;
      src.on('data', (b: Buffer | string) => (bytesIn += byteLength(b)));
      // Not pipeline(): a command may exit as soon as it has what it needs (tar stops at the end-of-
      // archive blocks) and close its stdin; that is judged by its exit status, not as an error here.
      await new Promise<void>((resolve, reject) => {
        // An input destroyed before we got here will not emit again: judge it now.
        if (src.destroyed) return reject(src.errored ?? new OpsError('the input stream was closed before the command started'));
        src.once('error', reject);
        src.once('end', resolve);
        p.stdin.once('close', resolve);
        src.pipe(p.stdin);
      });
    }
  })();

  // Promise.all below reports the first failure; the others must not surface as unhandled rejections.
  out.catch(() => {});
  feed.catch(() => {});
  let timedOut = false;
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        p.kill();
      }, opts.timeoutMs)
    : undefined;
  // A cancelled command whose end never comes (a host that went silent holds the channel's close)
  // must not hold the run: past a grace period the cancel goes on without it, so the undo can run.
  let grace: NodeJS.Timeout | undefined;
  let giveUp!: (err: Error) => void;
  let gaveUp = false;
  const abandoned = new Promise<never>((_, reject) => (giveUp = reject));
  const onAbort = () => {
    p.kill();
    grace ??= setTimeout(() => {
      p.abandon?.();
      gaveUp = true;
      giveUp(new OpsError(`a command on ${label} did not stop within ${KILL_GRACE_MS / 1000} s of being cancelled; going on without it`));
    }, KILL_GRACE_MS);
  };
  // A signal aborted before the command started never fires 'abort' again.
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const [exit] = await Promise.race([Promise.all([p.exited, out, feed]), abandoned]);
    ended = exit;
    if (timedOut) throw new OpsError(`a command on ${label} timed out after ${Math.round(opts.timeoutMs! / 1000)} s`);
    if (opts.signal?.aborted) throw new OpsError(`a command on ${label} was cancelled`);
    return { code: exit.code, signal: exit.signal, stdout: collected, stderr: errTail.toString() };
  } catch (err) {
    p.kill();
    // The command ends before its step does (unless it was given up on): restic stopped with SIGINT
    // removes its lock from the store on its way out, and opsdeck exiting meanwhile would signal it
    // again and cut that short (a failed output or input rejects before the process has ended).
    if (!gaveUp) {
      let wait: NodeJS.Timeout | undefined;
      await Promise.race([p.exited.then(noop, noop), new Promise<void>((r) => (wait = setTimeout(r, KILL_GRACE_MS)))]);
      clearTimeout(wait);
    }
    if (timedOut) throw new OpsError(`a command on ${label} timed out after ${Math.round(opts.timeoutMs! / 1000)} s`);
    throw err;
  } finally {
    recordCommand({ where: label, line: displayArgv(argv, env), code: ended.code, signal: ended.signal, ms: Date.now() - t0, bytesIn, bytesOut, at: t0 });
    if (timer) clearTimeout(timer);
    if (grace) clearTimeout(grace);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
