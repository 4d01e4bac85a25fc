import { once } from 'node:events';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ReadAhead } from '../../src/actions/restore-data.js';

/** Writes `bytes` in pipe-sized chunks as a command's output would, waiting whenever the sink says so, then ends it. */
function producer(bytes: number, ended: { at?: number }) {
  return async (sink: Writable) => {
    for (let sent = 0; sent < bytes; sent += 65536) {
      if (!sink.write(Buffer.alloc(Math.min(65536, bytes - sent), sent / 65536))) await once(sink, 'drain');
    }
    sink.end();
    ended.at = Date.now();
  };
}

describe('ReadAhead', () => {
  it('a stream read ahead whole ends its producer before anyone takes it (restic gone, its lock with it), and gives every byte in order', async () => {
    const bytes = 3 * 1024 * 1024 + 123;
    const ended: { at?: number } = {};
    const ahead = new ReadAhead(producer(bytes, ended), bytes);
    // Nothing takes the stream until the producer has ended on its own (the test's time limit is the hang's).
    while (ended.at === undefined) await new Promise((r) => setImmediate(r));
    const got: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        got.push(chunk);
        cb();
      },
    });
    await ahead.into(sink, new AbortController().signal);
    const all = Buffer.concat(got);
    expect(all.length).toBe(bytes);
    for (let i = 0; i < bytes; i += 65536) expect(all[i]).toBe((i / 65536) & 0xff);
  }, 20_000);
});
