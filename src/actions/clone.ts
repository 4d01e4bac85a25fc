import type { Backup } from '../../inventory/index.js';
import type { Plan } from '../core/plan.js';
import { UsageError } from '../core/errors.js';
import { parseAge } from '../core/format.js';
export { parseAge };
import { maintenanceOff, maintenanceOn } from './app.js';
import type { Deps } from '../deps/deps.js';
import { leaveCriticalSection, restoreState, restoreSteps, restoreUndoFailed, type RestoreResult, type RestoreState } from './restore.js';
import { rebaselineStep } from './watch.js';
import { checkRedactionScope, readRedaction, redactionDigest, type Redaction } from './redact.js';

export interface CloneOptions {
  dataOnly?: boolean;
  codeOnly?: boolean;
  /** Clone from the newest backup instead of the live source. */
  fromBackup?: boolean;
  /** Clone from the newest backup at least this old (7d, 12h, 30m, 2w). */
  asOf?: string;
  /** This backup of the source (its id), instead of the live source or the newest (mirror sync). */
  backup?: string;
  /** A file of redaction rules run on the copied database before it replaces the target's (--redact FILE). */
  redact?: string;
  /** Rules already read (refresh: the target's stored ones); wins over `redact`. */
  redaction?: Redaction;
}

/**
 * clone SOURCE TARGET: the target becomes a copy of the source (its live state, or a backup), in
 * maintenance while it happens, keeping its own settings: its URL, database credentials, hooks and
 * local files. The restore steps do the work, so the target is never left half-copied.
 */
export function clonePlan(deps: Deps, sourceName: string, targetName: string, opts: CloneOptions = {}): Plan<RestoreState, Omit<RestoreResult, 'backup'> & { source: string; backup: string | null }> {
  const source = deps.inv.requireInstance(sourceName);
  const target = deps.inv.requireInstance(targetName);
  if (source.name === target.name) throw new UsageError('source and target are the same instance', 'to go back to a backup of it, use: opsdeck restore');
  if (opts.dataOnly && opts.codeOnly) throw new UsageError('--data-only and --code-only exclude each other', 'give one of them, or neither for both');
  const parts = { code: !opts.dataOnly, db: !opts.codeOnly };
  if (parts.db && source.dbUrl && !target.dbUrl) throw new UsageError(`${target.name} has no database to copy ${source.name}'s into`, 'give it one, or clone with --code-only');
  const held = deps.inv.relations.get(target.name).held;
  if (held) throw new UsageError(`${target.name} is held: ${held}`, `nothing is copied onto it until it is released: opsdeck instance set ${target.name} --release-hold`);
  // Read and checked before anything changes: a mistake names its line.
  const redaction = opts.redaction ?? (opts.redact !== undefined ? readRedaction(opts.redact) : undefined);
  if (redaction && !parts.db) throw new UsageError('--redact applies to the database, and --code-only copies none', 'drop one of them');
  if (redaction && !source.dbUrl) throw new UsageError(`${source.name} has no database to redact`, 'drop --redact');
  // Rules that could reach outside the copy (another database, the server) are refused here, before anything runs.
  if (redaction) checkRedactionScope(redaction, target, deps.inv.listInstances());

  let chosen: Backup | undefined;
  if (opts.backup !== undefined) {
    chosen = deps.inv.requireBackup(opts.backup);
    if (chosen.instance !== source.name) throw new UsageError(`backup ${chosen.id} belongs to ${chosen.instance}, not ${source.name}`, `list ${source.name}'s with: opsdeck backups ${source.name}`);
  } else if (opts.asOf !== undefined || opts.fromBackup) {
    const cutoff = opts.asOf !== undefined ? Date.now() - parseAge(opts.asOf) : Infinity;
    // Never one whose last verification failed (restore's rule too).
    chosen = deps.inv.listBackups(source.name).find((b) => b.kind === 'manual' && !b.verifyFailed && Date.parse(b.createdAt) <= cutoff);
    if (!chosen) {
      throw new UsageError(`${source.name} has no backup${opts.asOf ? ` at least ${opts.asOf} old` : ''}`, `list them with: opsdeck backups ${source.name}`);
    }
  }

  // Live: straight from host to host, no detour through the store.
  const state: RestoreState = restoreState(chosen ? { backup: chosen } : { live: source }, target, { parts, safetyCode: deps.inv.requireEnv(target.env).protected });
  state.redact = redaction?.statements;
  const { redaction: _rules, ...given } = opts;
  const restore = restoreSteps(deps);
  return {
    command: 'clone',
    // The rules' digest too: an approval (four eyes) is for these rules, not whatever the file holds later.
    params: { source: source.name, target: target.name, ...given, ...(redaction ? { redact: redaction.source, redactDigest: redactionDigest(redaction) } : {}) },
    instance: target.name,
    // A live copy reads the source's tree and database: locked for the clone's duration.
    reads: chosen ? [] : [source.name],
    state,
    steps: [
      chosen
        ? { name: 'source', title: `Use backup ${chosen.id} of ${source.name} (taken ${chosen.createdAt})`, run: async () => {} }
        : { name: 'source', title: `Copy ${source.name} as it is now, host to host`, run: async () => {} },
      ...(redaction
        ? [
            {
              name: 'redact',
              title: `Redact the copy with ${redaction.statements.length} rule${redaction.statements.length === 1 ? '' : 's'} from ${redaction.source} before it commits`,
              explain: "The rules run on the copied database inside its load, before it replaces the target's: if one fails, the target's database is not changed.",
              run: async (ctx: { log: (l: string) => void }) => {
                for (const st of redaction.statements) ctx.log(`redaction: ${st.length > 160 ? `${st.slice(0, 157)}...` : st}`);
              },
            },
          ]
        : []),
      restore.check,
      {
        name: 'maintenance-on',
        title: `Put ${target.name} in maintenance`,
        run: async (ctx) => maintenanceOn(deps, target, ctx),
        undo: async (ctx) => maintenanceOff(deps, target, ctx),
      },
      restore.data,
      restore.swap,
      restore.cleanup,
      {
        name: 'maintenance-off',
        title: `Take ${target.name} out of maintenance`,
        run: async (ctx) => maintenanceOff(deps, target, ctx),
      },
      rebaselineStep<RestoreState>(deps, target.name),
    ],
    undoFailed: (s) => restoreUndoFailed(deps, s),
    finally: async (s, status) => leaveCriticalSection(deps, s, status),
    result: (s) => ({ source: source.name, backup: s.from.backup?.id ?? null, instance: source.name, target: target.name, safetyBackup: s.safety?.id ?? null }),
    preview: async () => [
      `would copy ${parts.code && parts.db ? 'the code tree and the database' : parts.code ? 'the code tree' : 'the database'} of ${source.name} ${chosen ? `as backed up at ${chosen.createdAt} (${chosen.id})` : 'as it is now'} onto ${target.name} (${target.host}:${target.path})`,
      ...(redaction ? [`the copied database is redacted with ${redaction.statements.length} statement(s) from ${redaction.source} before it replaces ${target.name}'s`] : []),
      `${target.name} keeps its URL, database credentials and hooks${target.localPaths.length ? ` and its own ${target.localPaths.join(', ')}` : ''}; its current state is saved first as a safety backup`,
    ],
  };
}
