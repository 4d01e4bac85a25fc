import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Meter } from '../../src/actions/meter.js';
import { relay } from '../../src/actions/relay.js';
import { takenUp } from '../../src/actions/restore-data.js';

describe('relay', () => {
  it('a load that fails before it reads (its session refused, psql exiting at its first statement) fails the relay with its reason, also while the commit waits for it to take the rest', async () => {
    const meter = new Meter();
    // The whole dump is in the Meter before the load reads any of it (a dump read ahead).
    const produce = async (sink: Meter) => {
      await new Promise<void>((resolve) => sink.write(Buffer.alloc(512 * 1024, 'x'), () => resolve()));
    };
    const consume = async () => {
      await sleep(50);
      throw new Error('psql: error: permission denied for schema public');
    };
    // A limit for the hang this guards against, not a speed goal.
    await expect(relay(meter, produce, consume, { beforeEnd: () => takenUp(meter.out) })).rejects.toThrow('permission denied for schema public');
  }, 10_000);

  it('a load that takes everything lets the commit go and returns what the load returns', async () => {
    const meter = new Meter();
    const produce = async (sink: Meter) => {
      await new Promise<void>((resolve) => sink.write(Buffer.from('INSERT 1;\n'), () => resolve()));
    };
    const consume = async (src: NodeJS.ReadableStream) => {
      let text = '';
      for await (const chunk of src) text += String(chunk);
      return text;
    };
    let committed = false;
    const got = await relay(meter, produce, consume, {
      beforeEnd: async () => {
        await takenUp(meter.out);
        committed = true;
        meter.out.write('COMMIT;\n');
      },
    });
    expect(committed).toBe(true);
    expect(got).toBe('INSERT 1;\nCOMMIT;\n');
  });
});
