import { describeHalfRestored, type Backup, type HalfRestored, type Instance } from '../../inventory/index.js';
import type { Plan, StepContext } from '../core/plan.js';
import { run } from '../remote/shell.js';
import { OpsError, UsageError } from '../core/errors.js';
import { dbFor, loginShellFor, shellFor, type Deps } from '../deps/deps.js';
import { loadDatabase } from './restore.js';
import { removeLater } from './restore-tree.js';
import { rebaselineStep } from './watch.js';
import { liveRelease, restoredSince } from './releases.js';
import { restoreLeftovers, settleRestoredRelease, type RestoreLeftover } from './release-restore.js';
import { readConversionJournal, undoConversion, type Conversion } from './release-conversion.js';

export interface RecoverState {
  /** The interrupted restore (or clone, drill) recorded in the inventory; undefined: only the host had something to put right. */
  record?: HalfRestored;
  inst: Instance;
  action: 'finish' | 'undo';
  /** Where the database came back from: what the load kept aside, the safety backup, or nowhere (unchanged, or finished). */
  databaseFrom: 'kept' | 'safety' | null;
  /** A conversion to release mode a killed run left half-done (its journal on the host). */
  conversion?: Conversion;
  /** Release-mode restores cut short, as found beside shared/ on the host, each with what recover does to it. */
  restored: { left: RestoreLeftover; action: 'finish' | 'undo' }[];
}

export interface RecoverResult {
  instance: string;
  /** The recorded run put right (null: none was recorded, only the host had leftovers). */
  run: number | null;
  action: 'finish' | 'undo' | null;
  safetyBackup: string | null;
  databaseFrom: 'kept' | 'safety' | null;
  /** The release of a cut-short conversion to release mode that was undone (the instance is a directory again). */
  conversionUndone: string | null;
  /** Release-mode restores cut short, finished or undone from what was on the host. */
  restoredReleases: { id: string; action: 'finish' | 'undo' }[];
}

/** recover's one line for a person. */
export function recoverSummary(r: RecoverResult): string {
  const parts: string[] = [];
  if (r.run !== null)
    parts.push(
      r.action === 'finish'
        ? `run ${r.run} finished (its restored code tree and database are in place)`
        : `run ${r.run} undone, ${r.instance} is as it was before it${
            r.databaseFrom === 'kept' ? ' (database put back from what the run kept aside)' : r.safetyBackup ? ` (database from safety backup ${r.safetyBackup})` : ''
          }`,
    );
  if (r.conversionUndone) parts.push(`the conversion to release mode cut short (release ${r.conversionUndone}) undone, ${r.instance} is a directory again`);
  for (const x of r.restoredReleases)
    if (r.run === null) parts.push(`the restore as release ${x.id} cut short ${x.action === 'finish' ? "finished: shared/ is the backup's" : 'undone: shared/ and the link as before it'}`);
  return `${r.instance} recovered: ${parts.join('; ')}`;
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
 *
 * Release mode leaves things on the host that no record covers, so the host is asked first (read
 * only): a conversion's journal (undone as the next update would), and a restore's renamed shared/
 * (finished when the link was switched to its release, else undone). With neither a record nor
 * anything on the host, it refuses: there is nothing to do.
 */
export async function recoverPlan(deps: Deps, name: string): Promise<Plan<RecoverState, RecoverResult>> {
  const inst = deps.inv.requireInstance(name);
  const record = deps.inv.getHalfRestored(name);
  const [conversion, leftovers] = await Promise.all([readConversionJournal(deps, inst), restoreLeftovers(deps, inst)]);
  if (!record && !conversion && !leftovers.length)
    throw new UsageError(
      `${name} is not half-restored: no interrupted restore of it is recorded, and nothing on ${inst.host} is left of a conversion to release mode or a restore cut short`,
      `see its runs with: opsdeck runs --instance ${name}`,
    );
  // A release-mode restore killed between its switch and the record saying so: code and database are
  // both the new ones (its database load ended before the switch), so it is finished, not undone.
  // "swapped" in release mode is finished only while the link points at the release that run made:
  // an undo killed after moving the link back (an older build recorded no "swapping" first) is undone.
  const live = record?.phase === 'swapped' ? await liveRelease(deps, inst, false).catch(() => undefined) : undefined;
  const swappedDone = record?.phase === 'swapped' && (live === undefined || restoredSince(live, record.since));
  const action = swappedDone || (record?.phase === 'swapping' && leftovers.some((l) => l.switched)) ? 'finish' : 'undo';
  // Each leftover as the disk says: switched is finished (unless the recorded run is undone, database
  // and all), not switched is undone.
  const restored = leftovers.map((left) => ({ left, action: left.switched && (!record || action === 'finish') ? ('finish' as const) : ('undo' as const) }));
  const hostSteps = hostRepairSteps(deps, inst, conversion, restored);
  const state: RecoverState = { record, inst, action, databaseFrom: null, conversion, restored };
  const result = (s: RecoverState): RecoverResult => ({
    instance: name,
    run: s.record?.runId ?? null,
    action: s.record ? s.action : null,
    safetyBackup: s.record?.safetyBackup ?? null,
    databaseFrom: s.databaseFrom,
    conversionUndone: s.conversion?.id ?? null,
    restoredReleases: s.restored.map((x) => ({ id: x.left.id, action: x.action })),
  });
  const hostPreview = [
    ...(conversion
      ? [`would undo the conversion to release mode cut short (release ${conversion.id}): everything in shared/ back into the tree, ${inst.path} a directory again; nothing deleted`]
      : []),
    ...restored.map((x) =>
      x.action === 'finish'
        ? `would finish the restore as release ${x.left.id} cut short after its switch: shared/ the backup's, the one it replaced removed`
        : `would undo the restore as release ${x.left.id} cut short: shared/ as it was before it, ${x.left.switched ? 'the link back to the release live before, ' : ''}release ${x.left.id} removed`,
    ),
  ];
  if (!record)
    return {
      command: 'recover',
      params: { instance: name, run: null, conversion: conversion?.id ?? null, restored: restored.map((x) => `${x.left.id}:${x.action}`) },
      instance: name,
      whileHalfRestored: true,
      state,
      steps: [
        { name: 'assess', title: `Put right what a run cut short left on ${inst.host}`, run: async (ctx) => ctx.log(hostPreview.map((l) => l.replace(/^would /, 'to ')).join('; ')) },
        ...hostSteps,
        rebaselineStep<RecoverState>(deps, name),
      ],
      result,
      preview: async () => hostPreview,
    };
  return recordPlan(deps, inst, record, action, state, hostSteps, result, hostPreview);
}

/** The steps that put right what release mode left on the host: a conversion's undo, each restore's finish or undo. */
function hostRepairSteps(deps: Deps, inst: Instance, conversion: Conversion | undefined, restored: RecoverState['restored']): Plan<RecoverState>['steps'] {
  return [
    ...(conversion
      ? [
          {
            name: 'conversion',
            title: `Undo the conversion to release mode cut short (release ${conversion.id})`,
            explain: 'Moves everything in shared/ back into the tree and the tree back to the path, deleting nothing; refuses, saying what to do, when the link moved on since.',
            run: async (ctx: StepContext<RecoverState>) => {
              ctx.log(`a conversion to release mode was cut short (release ${conversion.id}): undoing it`, 'warn');
              await undoConversion(deps, inst, conversion, ctx);
            },
          },
        ]
      : []),
    ...restored.map((x) => ({
      name: 'release',
      title: x.action === 'finish' ? `Finish the restore as release ${x.left.id}: remove the shared/ it replaced` : `Undo the restore as release ${x.left.id}: shared/ and the link as before it`,
      run: async (ctx: StepContext<RecoverState>) => settleRestoredRelease(deps, inst, x.left, x.action, ctx),
    })),
  ];
}

function recordPlan(
  deps: Deps,
  inst: Instance,
  record: HalfRestored,
  action: 'finish' | 'undo',
  state: RecoverState,
  hostSteps: Plan<RecoverState>['steps'],
  result: (s: RecoverState) => RecoverResult,
  hostPreview: string[],
): Plan<RecoverState, RecoverResult> {
  const name = inst.name;
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
          ...hostSteps,
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
              // Release mode swaps no tree (the path stays a link; the release step puts the link and
              // shared/ right): only a staged tree not yet moved into the releases is left to remove.
              if (await liveRelease(deps, inst, false)) await run(shellFor(deps, inst), ['rm', '-rf', '--', record.staging]);
              else await run(shellFor(deps, inst), ['sh', '-c', CODE_BACK, 'sh', inst.path, record.old, record.staging, record.phase]);
            },
          },
          ...hostSteps,
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
    params: { instance: name, run: record.runId, phase: record.phase, action, conversion: state.conversion?.id ?? null, restored: state.restored.map((x) => `${x.left.id}:${x.action}`) },
    instance: name,
    whileHalfRestored: true,
    state,
    steps,
    result,
    preview: async () => [
      ...hostPreview,
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
