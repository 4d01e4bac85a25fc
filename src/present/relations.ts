import { age, duration } from '../core/format.js';
import type { Deps } from '../deps/deps.js';
import { mirrorRows } from '../actions/mirror.js';

/**
 * An instance's relations in one line, for the console's instance panel and instance show: whose
 * staging or dev copy it is, or which mirror and how old its data really is; a hold; its copies.
 */
export function relationWords(deps: Pick<Deps, 'inv'>, name: string, now = Date.now()): string | null {
  const r = deps.inv.relations.get(name);
  const parts: string[] = [];
  if (r.kind === 'mirror') {
    const m = mirrorRows(deps as Deps, now).find((x) => x.mirror === name);
    parts.push(
      `mirror of ${r.of}, ${duration(r.lagSeconds ?? 0)} behind: ${
        m?.realLagSeconds != null ? `data ${duration(m.realLagSeconds)} old (backup ${m.backup}, synced ${age(m.syncedAt, now)})${m.due ? ', sync due' : ''}` : 'never synced'
      }`,
    );
  } else if (r.kind) parts.push(`${r.kind} of ${r.of}${r.redact ? `, refreshed with ${r.redact.statements.length} redaction rule(s)` : ''}`);
  const copies = deps.inv.relations.relatedTo(name);
  if (copies.length) parts.push(`copies: ${copies.map((c) => `${c.instance} (${c.kind})`).join(', ')}`);
  if (r.held) parts.push(`HELD: ${r.held}`);
  return parts.length ? parts.join('; ') : null;
}
