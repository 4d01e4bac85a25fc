/**
 * The team inventory's schema on PostgreSQL: the same tables as SQLite's (inventory/migrations.ts,
 * columns alike so one set of queries serves both), in a schema of its own, plus what a shared
 * database needs: who ran each run, written by the server; an audit trail operators may append to
 * and never change; the instance locks as session advisory locks (see inventory/locks.ts).
 * Each entry moves the schema one version up (opsdeck.schema_version). Never edit a shipped entry.
 *
 * Roles: `team init` runs as the schema's owner (a role that may create schemas and roles). Every
 * operator logs in as a role of their own that is a member of the inventory's user role, named after
 * its database (GRANT opsdeck_ops_user TO alice, for database ops: teamRoleNames in pg-rights.ts).
 * The SQL names the two group roles by tokens (PG_USER_ROLE, PG_ADMIN_ROLE) that team init replaces
 * with this inventory's names (withRoles): an entry that ran before (with the cluster-wide
 * opsdeck_user and opsdeck_admin of then) is moved over by migration 9. Rights per environment
 * (viewer, operator, admin: row-level security, default deny), secrets per environment and four-eyes
 * change requests are in pg-rights.ts (migrations 3 and 4).
 */
import { PG_CHANGES_MIGRATION, PG_POLICIES_MIGRATION, PG_RELATIONS_MIGRATION, PG_RIGHTS_MIGRATION, PG_STORE_MIGRATION, PG_USER_ROLE } from './pg-rights.js';
import { PG_TEAM_ROLES_MIGRATION } from './pg-team-roles.js';

export const PG_SCHEMA = 'opsdeck';

/** The time as the inventory writes it everywhere (ISO 8601, UTC, milliseconds), from the server's clock. */
const NOW = `to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export const PG_MIGRATIONS: string[] = [
  `
  CREATE TABLE envs (
    name TEXT PRIMARY KEY,
    protected INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    retention TEXT,
    max_backup_age TEXT
  );
  CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    port INTEGER NOT NULL DEFAULT 22,
    "user" TEXT NOT NULL,
    key_file TEXT,
    jump TEXT REFERENCES hosts(name),
    host_key TEXT,
    become TEXT,
    created_at TEXT NOT NULL
  );
  CREATE TABLE instances (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL REFERENCES hosts(name),
    path TEXT NOT NULL,
    env TEXT NOT NULL REFERENCES envs(name),
    url TEXT,
    db_url TEXT,
    db_secret TEXT,
    branch TEXT,
    created_at TEXT NOT NULL,
    hooks TEXT NOT NULL DEFAULT '{}',
    health TEXT,
    local_paths TEXT NOT NULL DEFAULT '[]',
    revision TEXT,
    maintenance_since TEXT,
    watch_excludes TEXT,
    metrics TEXT,
    UNIQUE (host, path)
  );
  CREATE INDEX instances_env ON instances (env, name);
  CREATE TABLE backups (
    id TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    manifest TEXT NOT NULL,
    verified_at TEXT,
    verify_failed INTEGER NOT NULL DEFAULT 0,
    run_id INTEGER
  );
  CREATE INDEX backups_instance ON backups (instance, created_at);
  CREATE TABLE tree_keys (
    key TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    backup_id TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE notify (
    kind TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    secret TEXT
  );
  CREATE TABLE watch_baselines (
    instance TEXT PRIMARY KEY,
    taken_at TEXT NOT NULL,
    data BYTEA NOT NULL,
    checked_at TEXT,
    changes INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE drills (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    backup_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    report TEXT NOT NULL
  );
  CREATE TABLE half_restored (
    instance TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL,
    command TEXT NOT NULL,
    phase TEXT NOT NULL,
    safety_backup TEXT,
    staging TEXT NOT NULL,
    old TEXT NOT NULL,
    db_touched INTEGER NOT NULL DEFAULT 0,
    since TEXT NOT NULL
  );
  -- Who holds an instance's lock, for people. The lock itself is a session advisory lock on
  -- (LOCK_SPACE, hashtext(instance)): the server drops it with the session of a killed holder.
  CREATE TABLE locks (
    instance TEXT PRIMARY KEY,
    run_id INTEGER,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    "user" TEXT NOT NULL,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    proc_start TEXT,
    db_role TEXT NOT NULL DEFAULT session_user
  );

  -- The audit trail. db_role (the role logged in: session_user, which SET ROLE does not change),
  -- client_addr and started_at are written by the server; os_user and host (the jump box) are what
  -- the client says. Operators may insert and read, never update or delete (no grant, and triggers
  -- for everyone else); a run's end is written through finish_run(), for runs of one's own role only.
  CREATE TABLE runs (
    id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    os_user TEXT NOT NULL,
    origin TEXT NOT NULL,
    host TEXT,
    db_role TEXT NOT NULL DEFAULT session_user,
    client_addr TEXT,
    command TEXT NOT NULL,
    params TEXT NOT NULL,
    instance TEXT,
    status TEXT NOT NULL,
    error TEXT,
    failed_step TEXT,
    duration_ms INTEGER
  );
  CREATE INDEX runs_instance ON runs (instance, id);
  CREATE TABLE run_steps (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT,
    db_role TEXT NOT NULL DEFAULT session_user
  );
  CREATE INDEX run_steps_run ON run_steps (run_id, id);

  CREATE FUNCTION runs_identity() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF NEW.db_role IS DISTINCT FROM session_user::text THEN
      RAISE EXCEPTION 'the audit trail records the role logged in (%), not %', session_user, NEW.db_role USING ERRCODE = '42501';
    END IF;
    NEW.client_addr := host(inet_client_addr());
    NEW.started_at := ${NOW};
    NEW.finished_at := NULL;
    NEW.duration_ms := NULL;
    RETURN NEW;
  END $$;
  CREATE TRIGGER runs_identity BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION runs_identity();

  -- Steps go only into a run of one's own role, under one's own role.
  CREATE FUNCTION run_steps_identity() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${PG_SCHEMA}, pg_catalog AS $$
  BEGIN
    IF NEW.db_role IS DISTINCT FROM session_user::text THEN
      RAISE EXCEPTION 'the audit trail records the role logged in (%), not %', session_user, NEW.db_role USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM runs WHERE id = NEW.run_id AND db_role = session_user::text) THEN
      RAISE EXCEPTION 'run % is not a run of role %', NEW.run_id, session_user USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
  END $$;
  CREATE TRIGGER run_steps_identity BEFORE INSERT ON run_steps FOR EACH ROW EXECUTE FUNCTION run_steps_identity();

  CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    RAISE EXCEPTION 'the audit trail is append-only' USING ERRCODE = '42501';
  END $$;
  CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER runs_finish_once BEFORE UPDATE ON runs FOR EACH ROW WHEN (OLD.finished_at IS NOT NULL) EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER run_steps_no_delete BEFORE DELETE ON run_steps FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER run_steps_no_update BEFORE UPDATE ON run_steps FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER runs_no_truncate BEFORE TRUNCATE ON runs FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER run_steps_no_truncate BEFORE TRUNCATE ON run_steps FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

  -- The one way a run's end is written: once, by the role that started it, the time from the server.
  CREATE FUNCTION finish_run(p_id INTEGER, p_status TEXT, p_error TEXT, p_failed_step TEXT, p_duration_ms INTEGER) RETURNS BOOLEAN
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${PG_SCHEMA}, pg_catalog AS $$
  BEGIN
    IF p_status NOT IN ('ok', 'failed', 'rolled-back', 'undo-failed') THEN
      RAISE EXCEPTION 'a run cannot end as %', p_status USING ERRCODE = '22023';
    END IF;
    UPDATE runs SET finished_at = ${NOW}, status = p_status, error = p_error, failed_step = p_failed_step, duration_ms = p_duration_ms
      WHERE id = p_id AND db_role = session_user::text AND finished_at IS NULL;
    RETURN FOUND;
  END $$;
  REVOKE ALL ON FUNCTION finish_run(INTEGER, TEXT, TEXT, TEXT, INTEGER) FROM PUBLIC;
  `,
  `
  -- The command log (see the SQLite migration): into a run of one's own role only, append-only.
  CREATE TABLE run_commands (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER,
    at TEXT NOT NULL,
    place TEXT NOT NULL,
    line TEXT NOT NULL,
    code INTEGER,
    signal TEXT,
    ms INTEGER NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    db_role TEXT NOT NULL DEFAULT session_user
  );
  CREATE INDEX run_commands_run ON run_commands (run_id, id);
  CREATE TRIGGER run_commands_identity BEFORE INSERT ON run_commands FOR EACH ROW EXECUTE FUNCTION run_steps_identity();
  CREATE TRIGGER run_commands_no_delete BEFORE DELETE ON run_commands FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER run_commands_no_update BEFORE UPDATE ON run_commands FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER run_commands_no_truncate BEFORE TRUNCATE ON run_commands FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
  `,
  // Rights per environment, secrets per environment (pg-rights.ts).
  PG_RIGHTS_MIGRATION,
  // Four-eyes change requests on protected environments (pg-rights.ts).
  PG_CHANGES_MIGRATION,
  // Pinned backups, store integrity checks, a shared store's password (pg-rights.ts).
  PG_STORE_MIGRATION,
  // Release mode: how many releases to keep (0: in place), and the directories that live across releases.
  `
  ALTER TABLE instances ADD COLUMN releases INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE instances ADD COLUMN shared_paths TEXT;
  `,
  // How instances relate: staging, dev copy, delayed mirror; redaction rules; holds (pg-rights.ts).
  PG_RELATIONS_MIGRATION,
  // What a restore's database load kept aside for its undo, recorded with its critical section.
  `
  ALTER TABLE half_restored ADD COLUMN db_kept TEXT;
  `,
  // The group roles per inventory instead of the cluster's (pg-rights.ts).
  PG_TEAM_ROLES_MIGRATION,
  // Row-level security evaluated once per query where it was once per row (pg-rights.ts).
  PG_POLICIES_MIGRATION,
  // A backup the store dropped that a copy store keeps: since when only the copies hold it. The
  // policies on backups (rows by their instance) cover the new column as they are.
  `
  ALTER TABLE backups ADD COLUMN copies_only_since TEXT;
  `,
];

/**
 * What operators (members of the inventory's user role) may do; run by every team init, so tables a migration
 * adds get their grants too. The inventory tables: read and write (rights per environment will narrow
 * this with row-level security). The audit trail: read and append only.
 */
export const PG_GRANTS = `
  REVOKE ALL ON SCHEMA ${PG_SCHEMA} FROM PUBLIC;
  GRANT USAGE ON SCHEMA ${PG_SCHEMA} TO ${PG_USER_ROLE};
  GRANT SELECT ON schema_version TO ${PG_USER_ROLE};
  GRANT SELECT, INSERT, UPDATE, DELETE ON envs, hosts, instances, backups, tree_keys, notify, watch_baselines, drills, half_restored, locks TO ${PG_USER_ROLE};
  REVOKE UPDATE, DELETE, TRUNCATE ON runs, run_steps, run_commands FROM ${PG_USER_ROLE};
  GRANT SELECT, INSERT ON runs, run_steps, run_commands TO ${PG_USER_ROLE};
  GRANT EXECUTE ON FUNCTION finish_run(INTEGER, TEXT, TEXT, TEXT, INTEGER) TO ${PG_USER_ROLE};
`;
