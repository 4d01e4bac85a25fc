import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backup, DrillReport } from '../../inventory/index.js';
import type { Plan, Step, StepContext } from '../core/plan.js';
import { errorMessage, OpsError, UsageError } from '../core/errors.js';
import { formatBytes, rpoWords } from '../core/format.js';
import { requireHealthy } from './app.js';
import { dbFor, loginShellFor, type Deps } from '../deps/deps.js';
import { leaveCriticalSection, restoreState, pickBackup, restoreSteps, restoreUndoFailed, type RestoreState } from './restore.js';
import { verifyPlan } from './verify.js';

export interface DrillState extends RestoreState {
  backup: Backup;
  source: string;
  startedAt: number;
  restoreStartedAt?: number;
  restoredAt?: number;
  stepTimes: { title: string; ms: number; ok: boolean }[];
  /** Why the step that failed failed, for the report. */
  failure?: string;
  report?: DrillReport;
}

export type { DrillReport };

/**
 * drill SOURCE --target SCRATCH: proves a backup can be restored. Verifies the backup against its
 * manifest, restores it onto a scratch instance (never a protected one), checks the site answers
 * and every table's row count, and reports the recovery time (RTO) and point (RPO).
 */
export function drillPlan(deps: Deps, source: string, opts: { target: string; backup?: string }): Plan<DrillState, DrillReport> {
  deps.inv.requireInstance(source);
  const target = deps.inv.requireInstance(opts.target);
  if (target.name === source)
    throw new UsageError('a drill restores onto a scratch instance, not onto the source', `make one (opsdeck instance make) and run: opsdeck drill ${source} --target SCRATCH`);
  if (deps.inv.requireEnv(target.env).protected)
    throw new UsageError(`${target.name} is in a protected environment: a drill never restores onto one`, 'pick a scratch instance in an unprotected environment');
  const backup = pickBackup(deps, source, opts.backup);
  if (backup.manifest.db && !target.dbUrl) throw new UsageError(`${target.name} has no database to restore into`, 'give the scratch instance a database');
  const verify = verifyPlan(deps, backup.id);
  const state: DrillState = {
    ...restoreState({ backup }, target, { safetyCode: false }),
    backup,
    source,
    startedAt: Date.now(),
    stepTimes: [],
  };
  const timed = (title: string, fn: (ctx: StepContext<DrillState>) => Promise<void>) => async (ctx: StepContext<DrillState>) => {
    const t = Date.now();
    try {
      await fn(ctx);
      ctx.state.stepTimes.push({ title, ms: Date.now() - t, ok: true });
    } catch (err) {
      ctx.state.stepTimes.push({ title, ms: Date.now() - t, ok: false });
      ctx.state.failure = errorMessage(err);
      throw err;
    }
  };
  const ageH = ((Date.now() - Date.parse(backup.createdAt)) / 3_600_000).toFixed(1);
  const r = restoreSteps(deps);
  const time = (s: Step<RestoreState>): Step<DrillState> => ({ ...s, run: timed(s.title, s.run) });
  const check = time(r.check);
  return {
    command: 'drill',
    params: { instance: source, target: target.name, backup: backup.id },
    instance: target.name,
    state,
    steps: [
      {
        name: 'pick',
        title: `Use backup ${backup.id} of ${source}, taken ${ageH} h ago`,
        explain: 'The newest good backup unless one was named; its age is the recovery point (RPO). If it is too old, the backups themselves need attention.',
        run: async (ctx) => ctx.log(`backup ${backup.id}: ${backup.manifest.code?.files ?? 0} files, ${formatBytes((backup.manifest.code?.bytes ?? 0) + (backup.manifest.db?.bytes ?? 0))}`),
      },
      {
        name: 'verify-backup',
        title: 'Verify the backup against its manifest',
        explain: 'Reads every stream back from the store and checks sizes, checksums, file counts and rows per table. If it fails, the store is damaged or tampered with: do not rely on this backup.',
        run: timed('Verify the backup against its manifest', async (ctx) => {
          for (const s of verify.steps) await s.run({ ...ctx, state: verify.state });
        }),
      },
      {
        ...check,
        explain: 'Checks the scratch target and its free disk space. If it fails, free space or pick another scratch instance.',
        run: async (ctx) => {
          ctx.state.restoreStartedAt = Date.now();
          await check.run(ctx);
        },
      },
      time(r.data),
      time(r.swap),
      time(r.cleanup),
      {
        name: 'check-target',
        title: 'Check the restored target answers and matches the backup',
        explain:
          "Asks the scratch instance's health URL and counts every table's rows against the manifest. If it fails, the restore procedure (or the app's config on the scratch host) needs fixing before a real incident.",
        run: timed('Check the restored target answers and matches the backup', async (ctx) => {
          await requireHealthy(deps.inv.requireInstance(target.name), ctx, deps.healthWaitMs);
          const tables = backup.manifest.db?.tables ?? {};
          const names = Object.keys(tables);
          if (names.length) {
            const db = dbFor(deps, target)!;
            const got = await db.engine.countRows(loginShellFor(deps, target), db, names);
            const wrong = names.filter((t) => got.get(t) !== tables[t]);
            if (wrong.length) throw new OpsError(`rows differ from the backup in ${wrong.map((t) => `${t} (${got.get(t)} vs ${tables[t]})`).join(', ')}`);
            ctx.log(`${names.length} tables: every row count matches the backup`);
          }
          ctx.state.restoredAt = Date.now();
        }),
      },
      {
        name: 'report',
        title: 'Write the drill report',
        explain: 'Keeps the result in the inventory (opsdeck drills) and as a Markdown file in the drills directory of the opsdeck home.',
        run: async (ctx) => {
          ctx.state.report = writeDrillReport(deps, ctx.state, null);
          ctx.log(`report written to ${ctx.state.report.file}`);
        },
      },
    ],
    undoFailed: (s) => restoreUndoFailed(deps, s),
    // A drill that failed is a finding too: it is kept and reported like one that passed.
    finally: async (s, status) => {
      leaveCriticalSection(deps, s, status);
      const failed = s.stepTimes.find((x) => !x.ok);
      if (!s.report && failed) s.report = writeDrillReport(deps, s, `${failed.title} failed${s.failure ? `: ${s.failure}` : ''}`);
    },
    result: (s) => s.report!,
  };
}

/** Keeps a drill's outcome in the inventory and as a Markdown file; `error` null means it passed. */
function writeDrillReport(deps: Deps, s: DrillState, error: string | null): DrillReport {
  // Milliseconds too: a drill that fails at once and its re-run may start in the same second.
  const id = `drill-${new Date(s.startedAt)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.(\d+)Z$/, '-$1')}`;
  const dir = join(deps.inv.home, 'drills');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${id}-${s.source}.md`);
  const rto = s.restoredAt && s.restoreStartedAt ? Math.round((s.restoredAt - s.restoreStartedAt) / 1000) : null;
  const report: DrillReport = {
    id,
    source: s.source,
    target: s.target.name,
    backup: s.backup.id,
    backupTakenAt: s.backup.createdAt,
    rpoSeconds: Math.round((s.startedAt - Date.parse(s.backup.createdAt)) / 1000),
    // A failed drill has no recovery time: nothing was recovered.
    rtoSeconds: rto ?? -1,
    steps: s.stepTimes,
    file,
    ok: error === null,
    ...(error ? { error } : {}),
  };
  writeFileSync(
    file,
    [
      `# Restore drill ${id}: ${s.source} onto ${s.target.name}`,
      '',
      `- Result: **${error ? 'FAILED' : 'passed'}**`,
      ...(error ? [`- What failed: ${error}`] : []),
      `- Backup: ${s.backup.id}, taken ${s.backup.createdAt}`,
      `- RPO (age of the data restored): ${rpoWords(report.rpoSeconds)}`,
      `- RTO (restore to a verified, answering target): ${rto === null ? 'none, the restore did not complete' : `${rto} s`}`,
      `- Run: ${new Date(s.startedAt).toISOString()} by ${process.env.USER ?? 'unknown'}`,
      '',
      '| step | time | result |',
      '|---|---|---|',
      ...report.steps.map((x) => `| ${x.title} | ${(x.ms / 1000).toFixed(1)} s | ${x.ok ? 'ok' : 'FAILED'} |`),
      '',
    ].join('\n'),
  );
  deps.inv.addDrill(report);
  return report;
}
