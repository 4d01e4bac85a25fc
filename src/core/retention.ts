/** Retention policies: which backups a policy keeps. Pure; the prune plan in actions/ applies it. */
import { UsageError } from './errors.js';

/** What retention needs of a backup. */
type Dated = { id: string; createdAt: string };

export interface Policy {
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

export const DEFAULT_POLICY: Policy = { daily: 3, weekly: 2, monthly: 6, yearly: 1 };
/** Safety backups (taken before a restore or clone) are kept this long, and the newest always. */
export const SAFETY_DAYS = 7;

const TIERS = ['daily', 'weekly', 'monthly', 'yearly'] as const;

/** ISO 8601 week of a date, in UTC: "2026-W47". */
function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day); // the Thursday of this week decides its year
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

function bucket(tier: (typeof TIERS)[number], iso: string): string {
  const d = new Date(iso);
  if (tier === 'daily') return iso.slice(0, 10);
  if (tier === 'weekly') return isoWeek(d);
  if (tier === 'monthly') return iso.slice(0, 7);
  return iso.slice(0, 4);
}

/**
 * Which backups a policy keeps. Each tier keeps the newest backup of its N most recent periods
 * that hold no backup kept already: daily 3 keeps the last three days with a backup; weekly 2 then
 * the two weeks before those; monthly 6 the six months before; yearly 1 the year before. So the
 * defaults reach back about a month, six months and a year. The newest backup is always kept.
 */
export function selectKept(backups: Dated[], policy: Policy): Set<string> {
  const sorted = [...backups].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  const kept = new Set<string>();
  const covered = Object.fromEntries(TIERS.map((t) => [t, new Set<string>()])) as Record<(typeof TIERS)[number], Set<string>>;
  const keep = (b: Dated) => {
    kept.add(b.id);
    for (const t of TIERS) covered[t].add(bucket(t, b.createdAt));
  };
  for (const tier of TIERS) {
    let n = 0;
    for (const b of sorted) {
      if (n >= policy[tier]) break;
      if (covered[tier].has(bucket(tier, b.createdAt))) continue;
      keep(b);
      n++;
    }
  }
  if (sorted[0]) kept.add(sorted[0].id);
  return kept;
}

export function checkPolicy(p: Partial<Record<keyof Policy, unknown>>, base: Policy = DEFAULT_POLICY): Policy {
  const out = { ...base };
  for (const t of TIERS) {
    const v = p[t];
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 10_000) throw new UsageError(`invalid --keep-${t} ${JSON.stringify(v)}`, 'give a whole number of periods, e.g. --keep-daily 7');
    out[t] = n;
  }
  return out;
}
