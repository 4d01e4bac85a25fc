import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What the store says while it waits (a lock another restic holds): far below the run that caused
 * it, so the sink travels with the async context, as the command log's does. A run's step turns it
 * into a log line of that step (audited); outside a run it goes to stderr.
 */
const sinks = new AsyncLocalStorage<(line: string) => void>();

/** Runs fn with `sink` receiving every notice of the store inside it. */
export function withStoreNotices<T>(sink: (line: string) => void, fn: () => T): T {
  return sinks.run(sink, fn);
}

export function storeNotice(line: string): void {
  const sink = sinks.getStore();
  if (sink) sink(line);
  else process.stderr.write(`opsdeck: ${line}\n`);
}
