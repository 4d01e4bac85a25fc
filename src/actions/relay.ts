import type { Readable } from 'node:stream';
import { Meter } from './meter.js';

/**
 * Moves one stream from a producer to a consumer through a Meter. The consumer's input is ended only
 * after the producer finished cleanly and `beforeEnd` accepted what passed (and finished whatever it
 * waits for); any failure on either side
 * cancels the other, so a half stream never looks like a whole one.
 */
export async function relay<T>(
  meter: Meter,
  produce: (sink: Meter, signal: AbortSignal) => Promise<void>,
  consume: (src: Readable, signal: AbortSignal) => Promise<T>,
  opts: { signal?: AbortSignal; beforeEnd?: () => void | Promise<void> } = {},
): Promise<T> {
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  // A signal aborted already never fires 'abort' again: without this, a stream started just after a
  // cancel (its step was still in a command that took no signal) ran to its end.
  if (opts.signal?.aborted) ac.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // The first failure is the cause; the other side's cancellation that follows is not news.
  let firstError: unknown;
  const fail = (err: unknown) => {
    if (firstError === undefined) firstError = err;
  };
  const consumed = consume(meter.out, ac.signal).catch((err) => {
    fail(err);
    ac.abort();
    meter.destroy(err);
    // The consumer's end too: a beforeEnd waiting for the consumer to take what is left (a load's
    // commit) would otherwise wait on a stream no one reads, for good.
    meter.out.destroy(err as Error);
    throw firstError;
  });
  // Awaited below once the producer is done; a consumer that fails before that (restic stopped while
  // the host is still sending) must not count as an unhandled rejection meanwhile, which ends the process.
  consumed.catch(() => {});
  try {
    await produce(meter, ac.signal);
    // May wait (a load's COMMIT waits for the staged code tree): the consumer holds its input open meanwhile.
    await opts.beforeEnd?.();
    meter.out.end();
  } catch (err) {
    fail(err);
    meter.out.destroy(err as Error);
    ac.abort();
    await consumed.catch(() => {});
    throw firstError;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return await consumed;
}

/**
 * Runs tasks side by side under one cancellation: when one fails the others are cancelled, all are
 * waited for (so nothing is left running), and the first failure is what is thrown.
 */
export async function together<T extends unknown[]>(signal: AbortSignal, tasks: { [K in keyof T]: (signal: AbortSignal) => Promise<T[K]> }): Promise<T> {
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  if (signal.aborted) ac.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  let first: unknown;
  const settled = await Promise.allSettled(
    tasks.map((t) =>
      t(ac.signal).catch((err) => {
        if (first === undefined) first = err;
        ac.abort();
        throw err;
      }),
    ),
  );
  signal.removeEventListener('abort', onAbort);
  if (first !== undefined) throw first;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as T;
}

/** Adds up the progress of streams that run side by side into one figure for the step. */
export function progressSum(report: (bytes: number, total?: number) => void, total?: number) {
  const parts: number[] = [];
  return (slot: number) => (bytes: number) => {
    parts[slot] = bytes;
    report(
      parts.reduce((a, b) => a + (b ?? 0), 0),
      total,
    );
  };
}
