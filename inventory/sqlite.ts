import Database from 'better-sqlite3';
import type { Dialect, Param, SqlDriver, Statement } from './driver.js';
import { MIGRATIONS } from './migrations.js';

const dialect: Dialect = { name: 'sqlite', insertOrder: 'rowid' };

/** The embedded inventory: one SQLite file in the home (nothing to set up, one operator). */
export class SqliteDriver implements SqlDriver {
  readonly dialect = dialect;
  readonly db: Database.Database;
  private statements = new Map<string, Statement>();

  constructor(readonly where: string) {
    this.db = new Database(where);
    // busy_timeout first: switching to WAL takes a lock another process may hold at that moment.
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
  }

  prepare(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      // better-sqlite3's own statement has all/get/run of this shape: no wrapper in the way of 10,000 rows.
      st = this.db.prepare<Param[]>(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  transaction<T>(fn: () => T, mode?: 'immediate'): () => T {
    const t = this.db.transaction(fn);
    return mode === 'immediate' ? () => t.immediate() : () => t();
  }

  close(): void {
    this.db.close();
  }

  private migrate(): void {
    if ((this.db.pragma('user_version', { simple: true }) as number) >= MIGRATIONS.length) return;
    // The version is read again inside an IMMEDIATE transaction: two processes starting after an
    // upgrade would otherwise both read the old version and both run the same ALTER TABLE (the second
    // failing with "duplicate column"). The second one waits here (busy_timeout) and finds nothing to do.
    this.db
      .transaction(() => {
        const version = this.db.pragma('user_version', { simple: true }) as number;
        for (let v = version; v < MIGRATIONS.length; v++) {
          this.db.exec(MIGRATIONS[v]);
          this.db.pragma(`user_version = ${v + 1}`);
        }
      })
      .immediate();
  }
}
