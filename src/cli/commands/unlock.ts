import { hostname } from 'node:os';
import type { Command } from 'commander';
import { describeLock, lockIsStale } from '../../../inventory/index.js';
import { EXIT, OpsError } from '../../core/errors.js';
import type { Act } from '../action.js';
import { confirm } from '../prompt.js';
import { examples } from './help.js';

/** unlock: release a lock whose run is gone, recorded in the audit trail. */
export function register(program: Command, act: Act): void {
  program
    .command('unlock <instance>')
    .description("release an instance's lock whose run is gone (killed on another machine, or its machine rebooted); says who held it, asks first, and is recorded in the audit trail")
    .addHelpText('after', examples('opsdeck unlock shop-prod   # says who held it, asks first', 'opsdeck runs --instance shop-prod   # what that run did'))
    .action(
      act(async (app, g, name: string) => {
        app.inv.requireInstance(name);
        const held = app.inv.getLock(name);
        if (!held) return { json: { instance: name, locked: false }, text: `instance ${name} is not locked` };
        const who = describeLock(held);
        // A run still going on this machine is not stale: releasing its lock would let a second run in beside it.
        if (held.host === hostname() && !lockIsStale(held)) {
          throw new OpsError(
            `instance ${name} is locked by a run still going on this machine: ${who}`,
            EXIT.LOCKED,
            `wait for it to finish, or stop it first (kill ${held.pid}); unlock is for locks whose run is gone`,
          );
        }
        if (g.dryRun) return { json: { instance: name, locked: true, heldBy: held, dryRun: true }, text: `would release the lock on ${name} held by ${who}` };
        await confirm(`release the lock on ${name} held by ${who}? Do it only if that run is gone: two runs at once on one instance can break it.`, { yes: g.yes });
        // Recorded by hand, not through the engine: the engine would take the very lock this releases.
        const runId = app.inv.startRun('unlock', { instance: name, heldBy: who }, name, false);
        const t0 = Date.now();
        const startedAt = new Date().toISOString();
        // Only that very lock: had its run ended and another taken the lock meanwhile, that one stays.
        const released = app.inv.breakLock(held);
        const error = released ? null : 'the lock changed hands meanwhile: nothing was released';
        app.inv.addStep({ runId, seq: 0, name: 'unlock', title: `Release the lock held by ${who}`, status: released ? 'done' : 'failed', startedAt, finishedAt: new Date().toISOString(), error });
        app.inv.finishRun(runId, released ? 'ok' : 'failed', error, released ? null : 'unlock', Date.now() - t0);
        if (!released) throw new OpsError(`instance ${name}: ${error}`, EXIT.LOCKED, `see who holds it now with: opsdeck unlock ${name}`);
        return { json: { instance: name, locked: false, released: true, heldBy: held, runId }, text: `released the lock on ${name} held by ${who} (run ${runId} in the audit trail)` };
      }),
    );
}
