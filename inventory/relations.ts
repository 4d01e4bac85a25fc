/**
 * How instances relate (issue 13): one is the staging or the dev copy of another (refresh copies the
 * data over, promote makes a staging one production), or a delayed mirror of it (mirror sync keeps
 * it a copy of the other as it was `lag` ago). Also an instance's stored redaction rules, and the
 * hold a promote puts on the old production so nothing overwrites or removes it by accident.
 * One row per instance that has any of these (table `relations`).
 */
import type { SqlDriver } from './driver.js';

export type RelationKind = 'staging' | 'dev' | 'mirror';

export interface Relation {
  instance: string;
  kind: RelationKind | null;
  /** The instance it is the staging, dev copy or mirror of. */
  of: string | null;
  /** A mirror's lag, in seconds. */
  lagSeconds: number | null;
  /** Redaction rules refresh applies by default: where they came from and the statements. */
  redact: { source: string; statements: string[] } | null;
  /** Why the instance is held (set by promote on the old production): refused as a target until released. */
  held: string | null;
  /** A mirror's last sync: the backup now on it and when it was put there. */
  syncedBackup: string | null;
  syncedAt: string | null;
}

interface RelationRow {
  instance: string;
  kind: RelationKind | null;
  related_to: string | null;
  lag_seconds: number | null;
  redact: string | null;
  held: string | null;
  synced_backup: string | null;
  synced_at: string | null;
}

const toRelation = (r: RelationRow): Relation => ({
  instance: r.instance,
  kind: r.kind,
  of: r.related_to,
  lagSeconds: r.lag_seconds === null ? null : Number(r.lag_seconds),
  redact: r.redact ? (JSON.parse(r.redact) as Relation['redact']) : null,
  held: r.held,
  syncedBackup: r.synced_backup,
  syncedAt: r.synced_at,
});

const empty = (instance: string): Relation => ({ instance, kind: null, of: null, lagSeconds: null, redact: null, held: null, syncedBackup: null, syncedAt: null });

/** What promote changes of an instance's row in `instances`, kept for its undo. */
export interface InstanceRole {
  name: string;
  env: string;
  url: string | null;
}

export class Relations {
  constructor(private readonly db: SqlDriver) {}

  /** The instance's relations (an empty record when it has none). */
  get(instance: string): Relation {
    const r = this.db.prepare('SELECT * FROM relations WHERE instance = ?').get(instance) as RelationRow | undefined;
    return r ? toRelation(r) : empty(instance);
  }

  /** Every instance with a relation, of the instances this session may see. */
  list(): Relation[] {
    return (this.db.prepare('SELECT r.* FROM relations r JOIN instances i ON i.name = r.instance ORDER BY r.instance').all() as RelationRow[]).map(toRelation);
  }

  /** The instances that are staging, dev copies or mirrors of `instance`. */
  relatedTo(instance: string): Relation[] {
    return (this.db.prepare('SELECT * FROM relations WHERE related_to = ? ORDER BY instance').all(instance) as RelationRow[]).map(toRelation);
  }

  /** Writes the whole record (what is not given stays as it was). */
  set(instance: string, patch: Partial<Omit<Relation, 'instance'>>): Relation {
    const r = { ...this.get(instance), ...patch };
    this.db
      .prepare(
        `INSERT INTO relations (instance, kind, related_to, lag_seconds, redact, held, synced_backup, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (instance) DO UPDATE SET kind = excluded.kind, related_to = excluded.related_to, lag_seconds = excluded.lag_seconds,
           redact = excluded.redact, held = excluded.held, synced_backup = excluded.synced_backup, synced_at = excluded.synced_at`,
      )
      .run(instance, r.kind, r.of, r.lagSeconds, r.redact ? JSON.stringify(r.redact) : null, r.held, r.syncedBackup, r.syncedAt);
    return r;
  }

  /** Puts records back exactly as they were (an undo): one that was empty goes. */
  restore(records: Relation[]): void {
    this.db.transaction(() => {
      for (const r of records) {
        if (!r.kind && !r.redact && !r.held && !r.syncedBackup) this.db.prepare('DELETE FROM relations WHERE instance = ?').run(r.instance);
        else this.set(r.instance, r);
      }
    })();
  }

  /** Forgets an instance (it was removed): its own record, and others' relation to it stays for them to see as gone. */
  forget(instance: string): void {
    this.db.prepare('DELETE FROM relations WHERE instance = ?').run(instance);
  }

  /** Sets environments and URLs of instances in one transaction (promote, and its undo). */
  setRoles(roles: InstanceRole[]): void {
    this.db.transaction(() => {
      for (const r of roles) this.db.prepare('UPDATE instances SET env = ?, url = ? WHERE name = ?').run(r.env, r.url, r.name);
    })();
  }
}
