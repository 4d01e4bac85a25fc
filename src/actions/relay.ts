import type { Readable } from 'node:stream';
import { Meter } from './meter.js';

/**
 * Moves one stream from a producer to a consumer through a Meter. The consumer's input is ended only
 * after the producer finished cleanly and `beforeEnd` accepted what passed; any failure on either side
 * cancels the other, so a half stream never looks like a whole one.
 */
export async function relay<T>(
  meter: Meter,
  produce: (sink: Meter, signal: AbortSignal) => Promise<void>,
  consume: (src: Readable, signal: AbortSignal) => Promise<T>,
  opts: { signal?: AbortSignal; beforeEnd?: () => void } = {},
): Promise<T> {
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let consumerError: unknown;
  const consumed = consume(meter.out, ac.signal).catch((err) => {
    consumerError = err;
    ac.abort();
    meter.destroy(err);
    throw err;
  });
  try {
    await produce(meter, ac.signal);
    opts.beforeEnd?.();
    meter.out.end();
  } catch (err) {
    meter.out.destroy(err as Error);
    ac.abort();
    await consumed.catch(() => {});
    throw consumerError ?? err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return await consumed;
}
