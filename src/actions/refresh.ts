import type { Plan } from '../core/plan.js';
import { UsageError } from '../core/errors.js';
import type { Deps } from '../deps/deps.js';
import { clonePlan } from './clone.js';
import { readRedaction } from './redact.js';
import type { RestoreState } from './restore.js';

export interface RefreshOptions {
  fromBackup?: boolean;
  asOf?: string;
  /** Other rules than the instance's stored ones, for this run. */
  redact?: string;
  /** No redaction at all (commander's --no-redact sets redact to false). */
  noRedact?: boolean;
}

/**
 * refresh NAME: the data of the instance NAME is the staging or dev copy of (instance set
 * --staging-of / --dev-of) copied onto it, its code kept (clone --data-only), redacted with NAME's
 * stored rules (instance set --redact FILE) unless told otherwise. A clone's guarantees: the target
 * in maintenance, a safety backup, the load committing only whole and redacted, undone on failure.
 */
export function refreshPlan(deps: Deps, name: string, opts: RefreshOptions = {}): Plan<RestoreState, ReturnType<ReturnType<typeof clonePlan>['result']> & { redacted: string | null }> {
  const target = deps.inv.requireInstance(name);
  const rel = deps.inv.relations.get(target.name);
  if (!rel.of || (rel.kind !== 'staging' && rel.kind !== 'dev')) {
    throw new UsageError(`${name} is not the staging or dev copy of another instance`, `say whose: opsdeck instance set ${name} --staging-of SOURCE (or --dev-of SOURCE)`);
  }
  const source = deps.inv.getInstance(rel.of);
  if (!source) throw new UsageError(`${name} is the ${rel.kind} of ${rel.of}, which is no longer in the inventory`, `relate it to another: opsdeck instance set ${name} --${rel.kind}-of SOURCE`);
  const redaction = opts.noRedact ? undefined : opts.redact !== undefined ? readRedaction(opts.redact) : (rel.redact ?? undefined);
  const clone = clonePlan(deps, source.name, target.name, { dataOnly: true, fromBackup: opts.fromBackup, asOf: opts.asOf, redaction });
  const unredactedFromProtected = !redaction && deps.inv.requireEnv(source.env).protected;
  return {
    ...clone,
    command: 'refresh',
    params: { ...clone.params, instance: target.name, relation: rel.kind, noRedact: opts.noRedact || undefined },
    steps: unredactedFromProtected
      ? [
          {
            name: 'unredacted',
            title: `Note: ${source.name} is in protected environment ${source.env} and no redaction rules apply`,
            run: async (ctx) => ctx.log(`${target.name} gets ${source.name}'s data unredacted (store rules with: opsdeck instance set ${target.name} --redact FILE)`, 'warn'),
          },
          ...clone.steps,
        ]
      : clone.steps,
    result: (s) => ({ ...clone.result(s), redacted: redaction?.source ?? null }),
    preview: async () => [`would refresh ${target.name} (the ${rel.kind} of ${source.name}) with its data; its code stays`, ...((await clone.preview?.()) ?? [])],
  };
}
