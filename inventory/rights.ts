import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { OpsError, UsageError } from '../src/core/errors.js';
import type { SqlDriver } from './driver.js';
import { LEVELS, type Level } from './pg-rights.js';

export { LEVELS, type Level } from './pg-rights.js';

/**
 * Which level an operation needs on its instance's environment. Restores (and what finishes or
 * marks one) onto a protected instance need admin; anything not named here changes the inventory,
 * which is admin's.
 */
const NEEDS: Record<string, Level | { protectedEnv: Level; otherwise: Level }> = {
  health: 'viewer',
  compare: 'viewer',
  runs: 'viewer',
  backup: 'operator',
  'backups verify': 'operator',
  'backups export': 'operator',
  'backups prune': 'operator',
  'backups pin': 'operator',
  'backups unpin': 'operator',
  watch: 'operator',
  drill: 'operator',
  unlock: 'operator',
  restore: { protectedEnv: 'admin', otherwise: 'operator' },
  recover: { protectedEnv: 'admin', otherwise: 'operator' },
  maintenance: { protectedEnv: 'admin', otherwise: 'operator' },
  update: 'admin',
  upgrade: 'admin',
  clone: 'admin',
  // Onto an unprotected copy only (mirror add refuses a protected one): an operator's restore.
  'mirror sync': 'operator',
};

export function levelNeeded(action: string, protectedEnv: boolean): Level {
  const n = NEEDS[action] ?? 'admin';
  return typeof n === 'string' ? n : protectedEnv ? n.protectedEnv : n.otherwise;
}

const rank = (l: Level | null) => (l ? LEVELS.indexOf(l) + 1 : 0);

export interface GrantRecord {
  role: string;
  env: string;
  level: Level;
  grantedBy: string;
  grantedAt: string;
}

/** Whether an action may run on an instance, and if not who may. */
export type Verdict = { ok: true } | { ok: false; need: Level; env: string; reason: string; who: string[] };

/**
 * Rights per environment as the client sees them, to refuse before starting and to grey the
 * console's keys. The database enforces the same rules (pg-rights.ts); on SQLite (one operator)
 * everything is allowed.
 */
export class Rights {
  private levels: Map<string, number> | undefined;

  constructor(private readonly db: SqlDriver) {}

  get team(): boolean {
    return this.db.dialect.name === 'postgres';
  }

  /** Forgets what was read (a grant changed; the console re-reads now and then). */
  refresh(): void {
    this.levels = undefined;
    this.who.clear();
  }
  /** whoMay's answers: the console asks for each greyed key at each frame. */
  private readonly who = new Map<string, string[]>();

  /** The session's role's level on each environment it has a right on (team admins: admin on all). */
  private levelMap(): Map<string, number> {
    if (!this.levels) {
      const rows = this.db.prepare('SELECT name, level_on(name) AS level FROM envs').all() as { name: string; level: number }[];
      this.levels = new Map(rows.map((r) => [r.name, Number(r.level)]));
    }
    return this.levels;
  }

  levelOn(env: string): Level | null {
    if (!this.team) return 'admin';
    const n = this.levelMap().get(env) ?? 0;
    return n ? LEVELS[n - 1] : null;
  }

  isTeamAdmin(): boolean {
    if (!this.team) return true;
    return !!(this.db.prepare('SELECT is_team_admin() AS ok').get() as { ok: boolean }).ok;
  }

  /** Whether `action` may run on an instance of `env` (protected or not). */
  mayOn(action: string, env: string, protectedEnv: boolean): Verdict {
    if (!this.team) return { ok: true };
    const need = levelNeeded(action, protectedEnv);
    const have = this.levelOn(env);
    if (rank(have) >= rank(need)) return { ok: true };
    return {
      ok: false,
      need,
      env,
      reason: `${action} on ${env}${protectedEnv ? ' (protected)' : ''} needs ${need}${have ? `; you are ${have}` : '; you have no right there'}`,
      who: this.whoMay(env, need),
    };
  }

  /** Refuses (exit 2) an action this role may not run, naming who may. */
  check(action: string, instance: string, env: string, protectedEnv: boolean): void {
    const v = this.mayOn(action, env, protectedEnv);
    if (v.ok) return;
    throw new UsageError(
      `not allowed: ${v.reason} (instance ${instance})`,
      v.who.length ? `ask one who may: ${v.who.join(', ')}` : `ask a team admin to grant it: opsdeck team grant ROLE --env ${env} --as ${v.need}`,
    );
  }

  /** The roles that hold at least `need` on env, team admins included. */
  whoMay(env: string, need: Level): string[] {
    const key = `${env}\n${need}`;
    const known = this.who.get(key);
    if (known) return known;
    const levels = LEVELS.slice(LEVELS.indexOf(need));
    const granted = (this.db.prepare('SELECT role, level FROM grants WHERE env = ? ORDER BY role').all(env) as { role: string; level: Level }[])
      .filter((g) => levels.includes(g.level))
      .map((g) => `${g.role} (${g.level})`);
    const who = [...granted, ...this.teamAdmins().map((r) => `${r} (team admin)`)];
    this.who.set(key, who);
    return who;
  }

  /** The schema's owner and the members of this inventory's admin role (superusers left out: they are everything). */
  teamAdmins(): string[] {
    const rows = this.db
      .prepare(
        `SELECT r.rolname AS name FROM pg_roles r, team_roles t
          WHERE NOT r.rolsuper AND r.rolname <> t.admin_role
            AND (r.oid = (SELECT nspowner FROM pg_namespace WHERE nspname = current_schema())
                 OR (r.rolcanlogin AND pg_has_role(r.oid, t.admin_role, 'MEMBER')))
          ORDER BY 1`,
      )
      .all() as { name: string }[];
    return rows.map((r) => r.name);
  }

  grant(role: string, env: string, level: Level): void {
    this.db.prepare('SELECT grant_env(?, ?, ?)').get(role, env, level);
    this.refresh();
  }
  revoke(role: string, env: string): boolean {
    const r = this.db.prepare('SELECT revoke_env(?, ?) AS gone').get(role, env) as { gone: boolean };
    this.refresh();
    return !!r.gone;
  }
  listGrants(env?: string): GrantRecord[] {
    const rows = (env ? this.db.prepare('SELECT * FROM grants WHERE env = ? ORDER BY env, role').all(env) : this.db.prepare('SELECT * FROM grants ORDER BY env, role').all()) as {
      role: string;
      env: string;
      level: Level;
      granted_by: string;
      granted_at: string;
    }[];
    return rows.map((r) => ({ role: r.role, env: r.env, level: r.level, grantedBy: r.granted_by, grantedAt: r.granted_at }));
  }

  // ---- secrets per environment (team inventory): sealed with the environment's key, which only
  // env_key() hands out, to a role with a right there, recording each use.

  private envKey(env: string, instance: string | null, purpose: 'seal' | 'open'): Buffer {
    const offer = purpose === 'seal' ? randomBytes(32) : null;
    const r = this.db.prepare('SELECT env_key(?, ?, ?, ?) AS key').get(env, instance, purpose, offer) as { key: Buffer | null };
    if (!r.key) throw new OpsError(`environment ${env} has no secret key yet: no password was ever set there`);
    return Buffer.from(r.key);
  }

  seal(env: string, instance: string | null, plain: string): string {
    const key = this.envKey(env, instance, 'seal');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    // The environment is bound in: a sealed value moved to another environment's row does not open.
    cipher.setAAD(Buffer.from(env));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return 'e1:' + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
  }

  open(env: string, instance: string | null, sealed: string): string {
    const key = this.envKey(env, instance, 'open');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(env));
    decipher.setAuthTag(raw.subarray(12, 28));
    try {
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      throw new OpsError(
        `cannot decrypt the secret of ${instance ?? env}: it was not sealed with environment ${env}'s key`,
        1,
        `set it again: opsdeck instance set ${instance ?? 'NAME'} --db-password`,
      );
    }
  }
}
