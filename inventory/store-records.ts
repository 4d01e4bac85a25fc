import type { SqlDriver } from './driver.js';
import { LIST_SQL } from './list-sql.js';
import type { Rights } from './rights.js';

/** One integrity check of the store: which part of its cycle it read, and how it ended. */
export interface StoreCheck {
  id: number;
  repository: string;
  at: string;
  /** restic check --read-data-subset part/parts. */
  part: number;
  parts: number;
  /** When the cycle this check belongs to began (its part 1). */
  cycleStart: string;
  ok: boolean;
  ms: number;
  /** Bytes of pack data the check read (the part's share of the store). */
  bytes: number;
  error: string | null;
  /** Set on the check that ended a cycle whose every part passed. */
  fullCycleAt: string | null;
}

interface CheckRow {
  id: number;
  repository: string;
  at: string;
  part: number;
  parts: number;
  cycle_start: string;
  ok: number;
  ms: number;
  bytes: number | string;
  error: string | null;
  full_cycle_at: string | null;
}

const now = () => new Date().toISOString();

/** The backup store's records in the inventory: pins, integrity checks, a shared store's password. */
export class StoreRecords {
  constructor(
    private readonly db: SqlDriver,
    private readonly rights: Rights,
  ) {}

  // ---- pins: prune never drops a pinned backup
  pin(backupId: string, instance: string, why: string | null): void {
    this.db.prepare('INSERT INTO backup_pins (backup_id, instance, pinned_at, why) VALUES (?, ?, ?, ?) ON CONFLICT (backup_id) DO UPDATE SET why = excluded.why').run(backupId, instance, now(), why);
  }
  unpin(backupId: string): boolean {
    return this.db.prepare('DELETE FROM backup_pins WHERE backup_id = ?').run(backupId).changes > 0;
  }
  pins(): Map<string, { pinnedAt: string; why: string | null }> {
    const rows = this.db.prepare('SELECT backup_id, pinned_at, why FROM backup_pins').all() as { backup_id: string; pinned_at: string; why: string | null }[];
    return new Map(rows.map((r) => [r.backup_id, { pinnedAt: r.pinned_at, why: r.why }]));
  }

  // ---- integrity checks
  addCheck(c: Omit<StoreCheck, 'id' | 'at'>): void {
    this.db
      .prepare('INSERT INTO store_checks (repository, at, part, parts, cycle_start, ok, ms, bytes, error, full_cycle_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(c.repository, now(), c.part, c.parts, c.cycleStart, c.ok ? 1 : 0, c.ms, c.bytes, c.error, c.fullCycleAt);
  }
  /** The checks of a store, newest first. */
  checks(repository: string, limit = 100): StoreCheck[] {
    const rows = this.db.prepare(`SELECT * FROM store_checks WHERE repository = ? ORDER BY id DESC LIMIT ${Math.floor(limit)}`).all(repository) as CheckRow[];
    return rows.map((r) => ({
      id: Number(r.id),
      repository: r.repository,
      at: r.at,
      part: Number(r.part),
      parts: Number(r.parts),
      cycleStart: r.cycle_start,
      ok: !!Number(r.ok),
      ms: Number(r.ms),
      bytes: Number(r.bytes),
      error: r.error,
      fullCycleAt: r.full_cycle_at,
    }));
  }
  /** When the store was last read whole: the end of the newest cycle whose every part passed. */
  lastFullCycle(repository: string): string | null {
    const r = this.db.prepare(LIST_SQL.storeFullCycle).get(repository) as { full_cycle_at: string } | undefined;
    return r?.full_cycle_at ?? null;
  }

  // ---- a shared store's password (team inventory: sealed with an environment's key)
  storePassword(repository: string): { env: string; password: string } | undefined {
    const r = this.db.prepare('SELECT env, sealed FROM store_secrets WHERE repository = ?').get(repository) as { env: string; sealed: string } | undefined;
    return r && { env: r.env, password: this.rights.open(r.env, null, r.sealed) };
  }
  /** The environment whose key seals the store's password, if one is kept (without opening it). */
  storePasswordEnv(repository: string): string | undefined {
    return (this.db.prepare('SELECT env FROM store_secrets WHERE repository = ?').get(repository) as { env: string } | undefined)?.env;
  }
  setStorePassword(repository: string, env: string, password: string): void {
    const sealed = this.rights.seal(env, null, password);
    this.db
      .prepare(
        'INSERT INTO store_secrets (repository, env, sealed, set_at) VALUES (?, ?, ?, ?) ON CONFLICT (repository) DO UPDATE SET env = excluded.env, sealed = excluded.sealed, set_at = excluded.set_at',
      )
      .run(repository, env, sealed, now());
  }
}

const cache = new WeakMap<SqlDriver, StoreRecords>();

/** The store records of an inventory (one per connection). */
export function storeRecords(inv: { db: SqlDriver; rights: Rights }): StoreRecords {
  let r = cache.get(inv.db);
  if (!r) cache.set(inv.db, (r = new StoreRecords(inv.db, inv.rights)));
  return r;
}
