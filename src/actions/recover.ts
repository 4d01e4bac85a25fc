import { describeHalfRestored, type Backup, type HalfRestored, type Instance } from '../../inventory/index.js';
import type { Plan, StepContext } from '../core/plan.js';
import { run } from '../remote/shell.js';
import { OpsError, UsageError } from '../core/errors.js';
import { dbFor, loginShellFor, shellFor, type Deps } from '../deps/deps.js';
import { loadDatabase, removeLater } from './restore.js';
import { rebaselineStep } from './watch.js';

export interface RecoverState {
  record: HalfRestored;
  inst: Instance;
  action: 'finish' | 'undo';
  /** Where the database came back from: what the load kept aside, the safety backup, or nowhere (unchanged, or finished). */
  databaseFrom: 'kept' | 'safety' | null;
}

export interface RecoverResult {
  instance: string;
  run: number;
  action: 'finish' | 'undo';
  safetyBackup: string | null;
  databaseFrom: 'kept' | 'safety' | null;
}

/**
 * Puts the code tree back from wherever the interrupted swap left it: the staged tree still there
 * means the swap did not finish (the tree in place, or the one renamed aside, is the previous one);
 * in phase "swapping" with no staged tree, the tree aside is the previous one and the one in place
 * the new one. Safe to run again after it was cut short itself.
 */
const CODE_BACK = [
  'T=$1; O=$2; S=$3; phase=$4',
  'if [ -e "$S" ]; then',
  '  if [ ! -e "$T" ] && [ -e "$O" ]; then mv -- "$O" "$T" || exit 1; fi',
  '  rm -rf -- "$S"',
  'elif [ "$phase" = swapping ] && [ -e "$O" ]; then',
  '  rm -rf -- "$T" && mv -- "$O" "$T"',
  'fi',
].join('\n');

/** Drops what the interrupted run's load kept aside for its undo, if anything is left of it. */
async function dropKept(deps: Deps, inst: Instance, record: HalfRestored): Promise<void> {
  const db = record.dbKept ? dbFor(deps, inst) : undefined;
  if (db && record.dbKept) await db.engine.dropKept(loginShellFor(deps, inst), db, record.dbKept);
}

/** An interrupted clone leaves its target in maintenance: said, not changed (the site may need a look first). */
function stillInMaintenance(deps: Deps, name: string, ctx: StepContext<RecoverState>): void {
  const now = deps.inv.requireInstance(name);
  if (now.maintenanceSince) ctx.log(`${name} is still in maintenance (since ${now.maintenanceSince}); when it is fine, run: opsdeck maintenance ${name} off`, 'warn');
}

/**
 * recover INSTANCE: a restore (or clone, drill) was stopped inside its critical section (kill -9, a
 * crash, an undo that could not reach the host) and left a record of where it stood. A run that had
 * swapped its code tree in is finished (only the previous tree's delete, and the drop of what its
 * load kept aside, were left); any other is undone: the code tree as it was, and, when its COMMIT may
 * have gone out, the database from what the load kept aside (an engine that swaps tables in keeps the
 * old ones) when that is there whole, else from the run's safety backup. Audited as its own run; the
 * record goes only when it succeeded.
 */
export function recoverPlan(deps: Deps, name: string): Plan<RecoverState, RecoverResult> {
  const inst = deps.inv.requireInstance(name);
  const record = deps.inv.getHalfRestored(name);
  if (!record) throw new UsageError(`${name} is not half-restored: no interrupted restore of it is recorded`, `see its runs with: opsdeck runs --instance ${name}`);
  const action = record.phase === 'swapped' ? 'finish' : 'undo';
  let safety: Backup | undefined;
  if (action === 'undo' && record.dbTouched) {
    safety = record.safetyBackup ? deps.inv.getBackup(record.safetyBackup) : undefined;
    // What the load kept aside may do without it; whether it is whole is known only on the host.
    if (!safety?.manifest.db && !record.dbKept) {
      throw new OpsError(
        `${name}'s database may hold what run ${record.runId} loaded, and its safety backup ${record.safetyBackup ?? '(none recorded)'} ${safety ? 'has no database' : 'is not in the inventory'}`,
        1,
        `restore a backup of ${name} by hand (opsdeck backups ${name}); the record stays until then`,
      );
    }
  }
  // Both ways end the same: the record goes, and a site still in maintenance is said.
  const clear: Plan<RecoverState>['steps'][number] = {
    name: 'clear',
    title: `Mark ${name} whole again`,
    run: async (ctx) => {
      deps.inv.clearHalfRestored(name, record.runId);
      stillInMaintenance(deps, name, ctx);
    },
  };
  const steps: Plan<RecoverState>['steps'] =
    action === 'finish'
      ? [
          {
            name: 'assess',
            title: `Finish run ${record.runId}: its code tree and database are both in place`,
            run: async (ctx) => ctx.log(describeHalfRestored(record)),
          },
          rebaselineStep<RecoverState>(deps, name),
          clear,
          {
            name: 'cleanup',
            title: record.dbKept ? 'Remove the previous code tree and the tables the load kept aside' : 'Remove the previous code tree',
            final: true,
            run: async () => {
              await dropKept(deps, inst, record);
              await removeLater(deps, inst, record.old);
            },
          },
        ]
      : [
          {
            name: 'assess',
            title: `Undo run ${record.runId}: put ${name} back as it was before it`,
            run: async (ctx) => ctx.log(describeHalfRestored(record)),
          },
          {
            name: 'code',
            title: 'Put the previous code tree back in place',
            run: async () => {
              await run(shellFor(deps, inst), ['sh', '-c', CODE_BACK, 'sh', inst.path, record.old, record.staging, record.phase]);
            },
          },
          {
            name: 'database',
            title: !record.dbTouched
              ? 'The database was not changed'
              : record.dbKept
                ? `Put the database back from what run ${record.runId} kept aside (else from safety backup ${record.safetyBackup})`
                : `Load the database of safety backup ${record.safetyBackup}`,
            run: async (ctx) => {
              if (!record.dbTouched) return;
              const kept = record.dbKept;
              const db = dbFor(deps, inst);
              if (kept && db) {
                const shell = loginShellFor(deps, inst);
                if (await db.engine.canPutBack(shell, db, kept)) {
                  await db.engine.putBack(shell, db, kept);
                  ctx.state.databaseFrom = 'kept';
                  ctx.log(`database: put back from what run ${record.runId} kept aside`);
                  return;
                }
                ctx.log(`database: what run ${record.runId} kept aside is not whole; loading safety backup ${record.safetyBackup} instead`, 'warn');
              }
              if (!safety?.manifest.db)
                throw new OpsError(
                  `${name}'s database cannot be put back: what run ${record.runId} kept aside is not whole, and there is no safety backup of it`,
                  1,
                  `restore a backup of ${name} by hand (opsdeck backups ${name}); the record stays until then`,
                );
              await loadDatabase(deps, safety, inst, ctx);
              ctx.state.databaseFrom = 'safety';
              // Loaded over: what is left of the kept tables is of no use now.
              await dropKept(deps, inst, record);
            },
          },
          rebaselineStep<RecoverState>(deps, name),
          clear,
        ];
  return {
    command: 'recover',
    params: { instance: name, run: record.runId, phase: record.phase, action },
    instance: name,
    whileHalfRestored: true,
    state: { record, inst, action, databaseFrom: null },
    steps,
    result: (s) => ({ instance: name, run: s.record.runId, action: s.action, safetyBackup: s.record.safetyBackup, databaseFrom: s.databaseFrom }),
    preview: async () => [
      describeHalfRestored(record),
      action === 'finish'
        ? `would finish run ${record.runId}: its new code tree and database are both in place; the previous tree ${record.old} would be removed`
        : `would undo run ${record.runId}: the previous code tree back in place${
            !record.dbTouched
              ? ''
              : record.dbKept
                ? `, and the database put back from what the run kept aside (else from safety backup ${record.safetyBackup})`
                : `, and the database of safety backup ${record.safetyBackup} loaded`
          }`,
    ],
  };
}
