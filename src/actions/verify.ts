import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Backup } from '../../inventory/index.js';
import type { Plan, StepIO } from '../core/plan.js';
import { OpsError, UsageError, errorMessage } from '../core/errors.js';
import { storedStream } from './backup.js';
import type { Deps } from '../deps/deps.js';
import { Meter, TarScanner } from './meter.js';
import { engineOf } from '../databases/index.js';
import { relay } from './relay.js';
import { dumpTree, treeMismatch } from '../store/tree-readback.js';

export interface VerifyState {
  backup: Backup;
  problems: string[];
}

const sinkNull = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

/** Reads one stored stream back and compares it with what the manifest recorded at backup time. */
async function readBack(deps: Deps, b: Backup, stream: 'code' | 'db', ctx: StepIO): Promise<string[]> {
  const m = stream === 'code' ? b.manifest.code! : b.manifest.db!;
  const tar = stream === 'code' ? new TarScanner() : undefined;
  const sql = stream === 'db' && b.manifest.db ? engineOf(b.manifest.db.kind).rowCounter() : undefined;
  const meter = new Meter({ tar, sql, onBytes: (n) => ctx.progress(n, m.bytes) });
  await relay(
    meter,
    (sink, signal) => (stream === 'code' ? dumpTree(deps.store, m, storedStream(b, stream).file, sink, signal) : deps.store.dump(m.snapshot, storedStream(b, stream).file, sink, signal)),
    (src) => pipeline(src, sinkNull()),
    { signal: ctx.signal },
  );
  const d = meter.digest();
  const problems: string[] = [];
  if (stream === 'code') problems.push(...treeMismatch(m, d));
  else {
    if (d.bytes !== m.bytes) problems.push(`${stream}: ${d.bytes} bytes stored, ${m.bytes} recorded`);
    if (d.sha256 !== m.sha256) problems.push(`${stream}: sha256 ${d.sha256} stored, ${m.sha256} recorded`);
  }
  if (tar && b.manifest.code && tar.files !== b.manifest.code.files) problems.push(`code: ${tar.files} files stored, ${b.manifest.code.files} recorded`);
  if (sql && b.manifest.db) {
    for (const [t, n] of Object.entries(b.manifest.db.tables)) {
      if (sql.tables[t] !== n) problems.push(`db: table ${t} has ${sql.tables[t] ?? 'no'} rows stored, ${n} recorded`);
    }
  }
  return problems;
}

export function verifyPlan(deps: Deps, id: string): Plan<VerifyState, { id: string; verified: boolean; problems: string[] }> {
  const backup = deps.inv.requireBackup(id);
  const state: VerifyState = { backup, problems: [] };
  const steps: Plan<VerifyState>['steps'] = [];
  for (const stream of ['code', 'db'] as const) {
    if (!(stream === 'code' ? backup.manifest.code : backup.manifest.db)) continue;
    steps.push({
      name: stream,
      title: `Read the ${stream === 'code' ? 'code tree' : 'database dump'} back and check it`,
      run: async (ctx) => {
        let p: string[];
        try {
          p = await readBack(deps, ctx.state.backup, stream, ctx);
        } catch (err) {
          // Cancelled is no verdict; a stream that cannot be read back (snapshot gone, store damaged)
          // is a failed verification, recorded like a mismatch so no restore picks it by default.
          if (ctx.signal.aborted) throw err;
          p = [`${stream}: cannot be read back from the store: ${errorMessage(err)}`];
        }
        ctx.state.problems.push(...p);
        for (const line of p) ctx.log(line, 'error');
      },
    });
  }
  steps.push({
    name: 'record',
    title: 'Record the verdict',
    run: async (ctx) => {
      const ok = ctx.state.problems.length === 0;
      deps.inv.markVerified(id, ok);
      if (!ok)
        throw new OpsError(
          `backup ${id} does NOT match its manifest: ${ctx.state.problems.join('; ')}`,
          1,
          `recorded: restores now pass it over (see opsdeck backups ${ctx.state.backup.instance}); take a new backup and check the store with restic check`,
        );
    },
  });
  return {
    command: 'backups verify',
    params: { backup: id },
    instance: null,
    state,
    steps,
    result: (s) => ({ id, verified: s.problems.length === 0, problems: s.problems }),
  };
}

/** A ustar header for one member of the export archive. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write(
    Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0') + '\0',
    136,
  );
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

/**
 * Writes a backup as one portable tar: manifest.json, code.tar and db.sql. Anyone can unpack it
 * without opsdeck or restic; each stream is checked against the manifest on the way out.
 */
export function exportPlan(deps: Deps, id: string, file: string): Plan<{ backup: Backup }, { id: string; file: string }> {
  const backup = deps.inv.requireBackup(id);
  if (!file) throw new UsageError('export needs a file name', 'run: opsdeck backups export ID FILE');
  return {
    command: 'backups export',
    params: { backup: id, file },
    instance: null,
    state: { backup },
    steps: [
      {
        name: 'export',
        title: `Write ${file}`,
        run: async (ctx) => {
          const tmp = `${file}.partial`;
          const out = createWriteStream(tmp, { mode: 0o600 });
          const write = (b: Buffer) => new Promise<void>((res, rej) => out.write(b, (e) => (e ? rej(e) : res())));
          try {
            const manifest = Buffer.from(JSON.stringify({ id: backup.id, instance: backup.instance, createdAt: backup.createdAt, manifest: backup.manifest }, null, 2) + '\n');
            await write(tarHeader('manifest.json', manifest.length));
            await write(Buffer.concat([manifest, Buffer.alloc((512 - (manifest.length % 512)) % 512)]));
            for (const stream of ['code', 'db'] as const) {
              const m = stream === 'code' ? backup.manifest.code : backup.manifest.db;
              if (!m) continue;
              await write(tarHeader(stream === 'code' ? 'code.tar' : 'db.sql', m.bytes));
              const meter = new Meter({ onBytes: (n) => ctx.progress(n, m.bytes) });
              await relay(
                meter,
                (sink, signal) =>
                  stream === 'code' ? dumpTree(deps.store, m, storedStream(backup, stream).file, sink, signal) : deps.store.dump(m.snapshot, storedStream(backup, stream).file, sink, signal),
                async (src) => {
                  for await (const chunk of src) await write(chunk as Buffer);
                },
                {
                  signal: ctx.signal,
                  beforeEnd: () => {
                    const d = meter.digest();
                    if (stream === 'code' ? treeMismatch(m, d).length : d.sha256 !== m.sha256) throw new OpsError(`stored ${stream} of backup ${id} does not match its manifest`);
                  },
                },
              );
              await write(Buffer.alloc((512 - (m.bytes % 512)) % 512));
            }
            await write(Buffer.alloc(1024));
            await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
            await rename(tmp, file);
          } catch (err) {
            out.destroy();
            await rm(tmp, { force: true });
            throw err;
          }
        },
      },
    ],
    result: () => ({ id, file }),
  };
}
