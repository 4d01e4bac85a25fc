/**
 * Rights per environment on the team inventory, enforced by PostgreSQL itself (issue 11, items 3-5):
 * a client that skips opsdeck's own checks and sends raw SQL meets the same refusals.
 *
 * - Levels: viewer (1: read), operator (2: backup, watch, drill, restore onto unprotected
 *   instances), admin (3: update, upgrade, clone, restore onto protected instances, change the
 *   inventory). A grant (role, env, level) applies to that role and every role that is a member
 *   of it (a group role `oncall` granted operator on prod gives it to each member).
 * - Team admins: the role that ran `team init` (the schema's owner) and members of the inventory's
 *   admin group role (`GRANT opsdeck_DB_admin TO carol`, see teamRoleNames). They alone write grants
 *   (grant_env/revoke_env), add environments, alert channels, and have admin everywhere.
 * - Row-level security, default deny: a row of an environment the session's role has no grant on is
 *   invisible; writes need the level above. Hosts are shared between environments: a host is seen
 *   by whoever sees one of its instances (and by admins, who add instances to hosts), changed only
 *   by a role that is admin of every environment with an instance on it.
 * - Identity is session_user (the role logged in; SET ROLE does not change it). The checks live in
 *   SECURITY DEFINER functions owned by the schema's owner, so they read grants and instances
 *   whatever the caller may see.
 * - Secrets: each environment's key lives in env_keys, which no operator may read; env_key() hands
 *   it out to a role with a grant on that environment, and appends who, which instance and which run
 *   to secret_uses. A revoked role gets a refusal.
 * - Change requests (four eyes): change_requests, written only through request_change(),
 *   decide_change() and change_ran(); the requester may not approve their own (checked against
 *   session_user inside decide_change, and by a CHECK on the row).
 */

// The name of pg-migrations.ts (which imports this file, so it is not imported from there).
export const PG_SCHEMA = 'opsdeck';

/**
 * The inventory's two group roles, in the SQL below as these tokens: team init puts in the names of
 * this inventory's roles (teamRoleNames), so two inventories on one cluster never share them.
 */
export const PG_USER_ROLE = '@opsdeck_user_role@';
/** Members of this group role are team admins (besides the schema's owner). */
export const PG_ADMIN_ROLE = '@opsdeck_admin_role@';
export const LEVELS = ['viewer', 'operator', 'admin'] as const;
export type Level = (typeof LEVELS)[number];

const NOW = `to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
export const DEFINER = `SECURITY DEFINER SET search_path = ${PG_SCHEMA}, pg_catalog`;

/**
 * grant_env and revoke_env, the only way grants change: `create` is CREATE in the first migration and
 * CREATE OR REPLACE where a later one rewrites them; `who` names the team admin the refusal asks for.
 */
export function grantFunctionsSql(create: 'CREATE' | 'CREATE OR REPLACE', who: string): string {
  return `  ${create} FUNCTION grant_env(p_role TEXT, p_env TEXT, p_level TEXT) RETURNS VOID LANGUAGE plpgsql ${DEFINER} AS $$
  BEGIN
    IF NOT is_team_admin() THEN
      RAISE EXCEPTION 'role % is not ${who}: only the role that ran team init and members of ${PG_ADMIN_ROLE} may grant rights', session_user USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role) THEN
      RAISE EXCEPTION 'no PostgreSQL role named %', p_role USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM envs WHERE name = p_env) THEN
      RAISE EXCEPTION 'no environment named %', p_env USING ERRCODE = '22023';
    END IF;
    INSERT INTO grants (role, env, level, granted_at) VALUES (p_role, p_env, p_level, ${NOW})
      ON CONFLICT (role, env) DO UPDATE SET level = excluded.level, granted_by = session_user, granted_at = excluded.granted_at;
  END $$;
  ${create} FUNCTION revoke_env(p_role TEXT, p_env TEXT) RETURNS BOOLEAN LANGUAGE plpgsql ${DEFINER} AS $$
  BEGIN
    IF NOT is_team_admin() THEN
      RAISE EXCEPTION 'role % is not ${who}: only the role that ran team init and members of ${PG_ADMIN_ROLE} may revoke rights', session_user USING ERRCODE = '42501';
    END IF;
    DELETE FROM grants WHERE role = p_role AND env = p_env;
    RETURN FOUND;
  END $$;
`;
}

export const PG_RIGHTS_MIGRATION = `
  CREATE TABLE grants (
    role TEXT NOT NULL,
    env TEXT NOT NULL REFERENCES envs(name) ON DELETE CASCADE,
    level TEXT NOT NULL CHECK (level IN ('viewer', 'operator', 'admin')),
    granted_by TEXT NOT NULL DEFAULT session_user,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (role, env)
  );

  CREATE FUNCTION is_team_admin() RETURNS BOOLEAN LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT session_user::text = (SELECT r.rolname::text FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = '${PG_SCHEMA}')
        OR pg_has_role(session_user, '${PG_ADMIN_ROLE}', 'MEMBER')
  $$;
  -- 0 none, 1 viewer, 2 operator, 3 admin: the session's role's level on an environment.
  CREATE FUNCTION level_on(p_env TEXT) RETURNS INTEGER LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT CASE WHEN is_team_admin() THEN 3 ELSE COALESCE((
      SELECT max(CASE g.level WHEN 'viewer' THEN 1 WHEN 'operator' THEN 2 WHEN 'admin' THEN 3 END)
        FROM grants g JOIN pg_roles r ON r.rolname = g.role
       WHERE g.env = p_env AND pg_has_role(session_user, r.oid, 'MEMBER')), 0) END
  $$;
  -- The environments the session's role has at least this level on (evaluated once per query: see the policies).
  CREATE FUNCTION envs_at(p_min INTEGER) RETURNS TEXT[] LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT COALESCE(array_agg(name), '{}') FROM envs WHERE level_on(name) >= p_min
  $$;
  CREATE FUNCTION max_level() RETURNS INTEGER LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT CASE WHEN is_team_admin() THEN 3 ELSE COALESCE((SELECT max(level_on(name)) FROM envs), 0) END
  $$;
  -- Whether the session's role may change what belongs to an instance at this level (2: operations, 3: settings).
  CREATE FUNCTION instance_allows(p_instance TEXT, p_min INTEGER) RETURNS BOOLEAN LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT is_team_admin() OR COALESCE((SELECT level_on(env) >= p_min FROM instances WHERE name = p_instance), false)
  $$;
  CREATE FUNCTION env_protected(p_env TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT COALESCE((SELECT protected = 1 FROM envs WHERE name = p_env), false)
  $$;
  CREATE FUNCTION host_allows(p_host TEXT, p_min INTEGER) RETURNS BOOLEAN LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT is_team_admin() OR EXISTS (SELECT 1 FROM instances WHERE host = p_host AND level_on(env) >= p_min)
  $$;
  CREATE FUNCTION host_all_admin(p_host TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT is_team_admin() OR (max_level() >= 3 AND NOT EXISTS (SELECT 1 FROM instances WHERE host = p_host AND level_on(env) < 3))
  $$;

  -- Below admin, an instance's row changes only where operations write (its revision, its maintenance mark).
  CREATE FUNCTION instances_settings_guard() RETURNS trigger LANGUAGE plpgsql ${DEFINER} AS $$
  BEGIN
    IF level_on(OLD.env) < 3 AND (to_jsonb(NEW) - 'revision' - 'maintenance_since') IS DISTINCT FROM (to_jsonb(OLD) - 'revision' - 'maintenance_since') THEN
      RAISE EXCEPTION 'role % may not change the settings of instance % (needs admin on environment %)', session_user, OLD.name, OLD.env USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
  END $$;
  CREATE TRIGGER instances_settings_guard BEFORE UPDATE ON instances FOR EACH ROW EXECUTE FUNCTION instances_settings_guard();

  ALTER TABLE envs ENABLE ROW LEVEL SECURITY;
  CREATE POLICY envs_read ON envs FOR SELECT USING (name = ANY ((SELECT envs_at(1))::text[]));
  CREATE POLICY envs_add ON envs FOR INSERT WITH CHECK (is_team_admin());
  CREATE POLICY envs_set ON envs FOR UPDATE USING (level_on(name) >= 3);
  CREATE POLICY envs_remove ON envs FOR DELETE USING (is_team_admin());

  ALTER TABLE instances ENABLE ROW LEVEL SECURITY;
  CREATE POLICY instances_read ON instances FOR SELECT USING (env = ANY ((SELECT envs_at(1))::text[]));
  CREATE POLICY instances_add ON instances FOR INSERT WITH CHECK (level_on(env) >= 3);
  CREATE POLICY instances_set ON instances FOR UPDATE USING (level_on(env) >= 3 OR (level_on(env) >= 2 AND NOT env_protected(env))) WITH CHECK (level_on(env) >= 2);
  CREATE POLICY instances_remove ON instances FOR DELETE USING (level_on(env) >= 3);

  ALTER TABLE hosts ENABLE ROW LEVEL SECURITY;
  CREATE POLICY hosts_read ON hosts FOR SELECT USING ((SELECT max_level()) >= 3 OR host_allows(name, 1));
  CREATE POLICY hosts_add ON hosts FOR INSERT WITH CHECK (max_level() >= 3);
  CREATE POLICY hosts_set ON hosts FOR UPDATE USING (host_all_admin(name));
  CREATE POLICY hosts_remove ON hosts FOR DELETE USING (host_all_admin(name));

  -- What belongs to an instance: seen with its instance, written by an operator of its environment.
  ALTER TABLE backups ENABLE ROW LEVEL SECURITY;
  CREATE POLICY backups_read ON backups FOR SELECT USING (EXISTS (SELECT 1 FROM instances i WHERE i.name = backups.instance));
  CREATE POLICY backups_write ON backups FOR ALL USING (instance_allows(instance, 2)) WITH CHECK (instance_allows(instance, 2));
  ALTER TABLE tree_keys ENABLE ROW LEVEL SECURITY;
  CREATE POLICY tree_keys_read ON tree_keys FOR SELECT USING (EXISTS (SELECT 1 FROM instances i WHERE i.name = tree_keys.instance));
  CREATE POLICY tree_keys_write ON tree_keys FOR ALL USING (instance_allows(instance, 2)) WITH CHECK (instance_allows(instance, 2));
  ALTER TABLE watch_baselines ENABLE ROW LEVEL SECURITY;
  CREATE POLICY watch_read ON watch_baselines FOR SELECT USING (EXISTS (SELECT 1 FROM instances i WHERE i.name = watch_baselines.instance));
  CREATE POLICY watch_write ON watch_baselines FOR ALL USING (instance_allows(instance, 2)) WITH CHECK (instance_allows(instance, 2));
  ALTER TABLE half_restored ENABLE ROW LEVEL SECURITY;
  CREATE POLICY half_read ON half_restored FOR SELECT USING (EXISTS (SELECT 1 FROM instances i WHERE i.name = half_restored.instance));
  CREATE POLICY half_write ON half_restored FOR ALL USING (instance_allows(instance, 2)) WITH CHECK (instance_allows(instance, 2));
  ALTER TABLE locks ENABLE ROW LEVEL SECURITY;
  CREATE POLICY locks_read ON locks FOR SELECT USING (EXISTS (SELECT 1 FROM instances i WHERE i.name = locks.instance));
  CREATE POLICY locks_write ON locks FOR ALL USING (instance_allows(instance, 2)) WITH CHECK (instance_allows(instance, 2));
  ALTER TABLE drills ENABLE ROW LEVEL SECURITY;
  CREATE POLICY drills_read ON drills FOR SELECT USING (EXISTS (SELECT 1 FROM instances i WHERE i.name IN (drills.source, drills.target)));
  CREATE POLICY drills_write ON drills FOR ALL USING (instance_allows(target, 2)) WITH CHECK (instance_allows(target, 2));

  -- Alert channels are the team's: everyone's failures alert through them; team admins set them.
  ALTER TABLE notify ENABLE ROW LEVEL SECURITY;
  CREATE POLICY notify_read ON notify FOR SELECT USING (true);
  CREATE POLICY notify_write ON notify FOR ALL USING (is_team_admin()) WITH CHECK (is_team_admin());

  -- The audit trail: one's own runs, inventory-wide runs, and runs on instances one may see.
  ALTER TABLE runs ENABLE ROW LEVEL SECURITY;
  CREATE POLICY runs_read ON runs FOR SELECT USING (db_role = session_user::text OR instance IS NULL OR EXISTS (SELECT 1 FROM instances i WHERE i.name = runs.instance));
  CREATE POLICY runs_append ON runs FOR INSERT WITH CHECK (true);
  ALTER TABLE run_steps ENABLE ROW LEVEL SECURITY;
  CREATE POLICY run_steps_read ON run_steps FOR SELECT USING (EXISTS (SELECT 1 FROM runs r WHERE r.id = run_steps.run_id));
  CREATE POLICY run_steps_append ON run_steps FOR INSERT WITH CHECK (true);
  DO $$ BEGIN
    IF to_regclass('${PG_SCHEMA}.run_commands') IS NOT NULL THEN
      ALTER TABLE run_commands ENABLE ROW LEVEL SECURITY;
      CREATE POLICY run_commands_read ON run_commands FOR SELECT USING (EXISTS (SELECT 1 FROM runs r WHERE r.id = run_commands.run_id));
      CREATE POLICY run_commands_append ON run_commands FOR INSERT WITH CHECK (true);
    END IF;
  END $$;

  ALTER TABLE grants ENABLE ROW LEVEL SECURITY;
  CREATE POLICY grants_read ON grants FOR SELECT USING (true);

  -- The only way grants change: by a team admin.
${grantFunctionsSql('CREATE', 'a team admin')}
  -- Secrets per environment: the key is never readable as a table; env_key() checks the grant and
  -- records the use. p_new: a fresh random key the caller offers, kept when the environment has none.
  CREATE TABLE env_keys (
    env TEXT PRIMARY KEY REFERENCES envs(name) ON DELETE CASCADE,
    key BYTEA NOT NULL CHECK (length(key) = 32),
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT session_user
  );
  CREATE TABLE secret_uses (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT NOT NULL,
    db_role TEXT NOT NULL DEFAULT session_user,
    env TEXT NOT NULL,
    instance TEXT,
    run_id INTEGER,
    purpose TEXT NOT NULL
  );
  CREATE TRIGGER secret_uses_no_delete BEFORE DELETE ON secret_uses FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER secret_uses_no_update BEFORE UPDATE ON secret_uses FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER secret_uses_no_truncate BEFORE TRUNCATE ON secret_uses FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
  ALTER TABLE secret_uses ENABLE ROW LEVEL SECURITY;
  CREATE POLICY secret_uses_read ON secret_uses FOR SELECT USING (db_role = session_user::text OR level_on(env) >= 3);
  CREATE INDEX secret_uses_recent ON secret_uses (db_role, instance, id);

  CREATE FUNCTION env_key(p_env TEXT, p_instance TEXT, p_purpose TEXT, p_new BYTEA) RETURNS BYTEA LANGUAGE plpgsql ${DEFINER} AS $$
  DECLARE
    need INTEGER := CASE WHEN p_purpose = 'seal' THEN 3 ELSE 1 END;
    k BYTEA;
    v_run INTEGER;
  BEGIN
    IF p_purpose NOT IN ('seal', 'open') THEN
      RAISE EXCEPTION 'a secret is used to seal or to open, not %', p_purpose USING ERRCODE = '22023';
    END IF;
    IF level_on(p_env) < need THEN
      RAISE EXCEPTION 'role % has no right to % the secrets of environment %', session_user, p_purpose, p_env USING ERRCODE = '42501';
    END IF;
    IF p_new IS NOT NULL AND p_purpose = 'seal' THEN
      INSERT INTO env_keys (env, key, created_at) VALUES (p_env, p_new, ${NOW}) ON CONFLICT (env) DO NOTHING;
    END IF;
    SELECT key INTO k FROM env_keys WHERE env = p_env;
    -- The run: this role's newest unfinished run on the instance, as the server knows it (not the client's word).
    SELECT id INTO v_run FROM runs WHERE db_role = session_user::text AND instance = p_instance AND finished_at IS NULL ORDER BY id DESC LIMIT 1;
    -- Every use in a run is recorded; outside runs (the health panels probe every few seconds) once an hour per role and instance.
    IF v_run IS NOT NULL OR NOT EXISTS (SELECT 1 FROM secret_uses WHERE db_role = session_user::text AND instance IS NOT DISTINCT FROM p_instance AND run_id IS NULL
        AND purpose = p_purpose AND at::timestamptz > clock_timestamp() - interval '1 hour') THEN
      INSERT INTO secret_uses (at, env, instance, run_id, purpose) VALUES (${NOW}, p_env, p_instance, v_run, p_purpose);
    END IF;
    RETURN k;
  END $$;
  REVOKE ALL ON FUNCTION env_key(TEXT, TEXT, TEXT, BYTEA) FROM PUBLIC;
  REVOKE ALL ON FUNCTION grant_env(TEXT, TEXT, TEXT) FROM PUBLIC;
  REVOKE ALL ON FUNCTION revoke_env(TEXT, TEXT) FROM PUBLIC;
`;

/** Grants the rights tables and functions need; run by every team init after PG_GRANTS. */
export const PG_RIGHTS_GRANTS = `
  GRANT SELECT ON grants TO ${PG_USER_ROLE};
  REVOKE ALL ON env_keys FROM ${PG_USER_ROLE};
  GRANT SELECT ON secret_uses TO ${PG_USER_ROLE};
  GRANT EXECUTE ON FUNCTION is_team_admin(), level_on(TEXT), envs_at(INTEGER), max_level(), instance_allows(TEXT, INTEGER), env_protected(TEXT), host_allows(TEXT, INTEGER), host_all_admin(TEXT) TO ${PG_USER_ROLE};
  GRANT EXECUTE ON FUNCTION grant_env(TEXT, TEXT, TEXT), revoke_env(TEXT, TEXT), env_key(TEXT, TEXT, TEXT, BYTEA) TO ${PG_USER_ROLE};
`;

/**
 * Four-eyes changes on protected environments: a change request (the operation, its parameters, its
 * plan, its back-out, who asked and why) that another admin of the environment approves; a run then
 * uses the approval once, within the window (change_settings, default 24 hours). A standing change
 * (instance NULL) approves one command on every instance of an environment until it is rejected.
 * Rows change only through the functions below; the CHECK keeps requester and decider apart even
 * for the schema's owner.
 */
export const PG_CHANGES_MIGRATION = `
  CREATE TABLE change_settings (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    window_hours NUMERIC NOT NULL DEFAULT 24 CHECK (window_hours > 0)
  );
  INSERT INTO change_settings DEFAULT VALUES;
  CREATE TABLE change_requests (
    id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command TEXT NOT NULL,
    instance TEXT,
    env TEXT NOT NULL REFERENCES envs(name),
    params TEXT NOT NULL,
    argv TEXT NOT NULL,
    plan TEXT NOT NULL,
    backout TEXT NOT NULL,
    why TEXT NOT NULL CHECK (length(why) > 0),
    standing INTEGER NOT NULL DEFAULT 0,
    requested_by TEXT NOT NULL DEFAULT session_user,
    requested_at TEXT NOT NULL,
    os_user TEXT NOT NULL,
    host TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'ran')),
    decided_by TEXT,
    decided_at TEXT,
    decision_why TEXT,
    run_id INTEGER REFERENCES runs(id),
    CONSTRAINT four_eyes CHECK (decided_by IS NULL OR decided_by <> requested_by)
  );
  -- Every run made under a change (a standing one has many).
  CREATE TABLE change_runs (
    change_id INTEGER NOT NULL REFERENCES change_requests(id),
    run_id INTEGER NOT NULL REFERENCES runs(id),
    PRIMARY KEY (change_id, run_id)
  );
  ALTER TABLE change_requests ENABLE ROW LEVEL SECURITY;
  CREATE POLICY change_requests_read ON change_requests FOR SELECT USING (level_on(env) >= 1);
  ALTER TABLE change_runs ENABLE ROW LEVEL SECURITY;
  CREATE POLICY change_runs_read ON change_runs FOR SELECT USING (EXISTS (SELECT 1 FROM change_requests c WHERE c.id = change_runs.change_id));

  CREATE FUNCTION change_window_ok(p_decided_at TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT p_decided_at::timestamptz + make_interval(secs => (SELECT window_hours FROM change_settings) * 3600) > clock_timestamp()
  $$;

  CREATE FUNCTION request_change(p_command TEXT, p_instance TEXT, p_env TEXT, p_params TEXT, p_argv TEXT, p_plan TEXT, p_backout TEXT, p_why TEXT, p_standing BOOLEAN, p_os_user TEXT, p_host TEXT)
  RETURNS INTEGER LANGUAGE plpgsql ${DEFINER} AS $$
  DECLARE new_id INTEGER;
  BEGIN
    IF level_on(p_env) < 2 THEN
      RAISE EXCEPTION 'role % may not ask for changes on environment % (needs operator or admin there)', session_user, p_env USING ERRCODE = '42501';
    END IF;
    IF p_instance IS NOT NULL AND NOT EXISTS (SELECT 1 FROM instances WHERE name = p_instance AND env = p_env) THEN
      RAISE EXCEPTION 'no instance % in environment %', p_instance, p_env USING ERRCODE = '22023';
    END IF;
    INSERT INTO change_requests (command, instance, env, params, argv, plan, backout, why, standing, requested_at, os_user, host)
      VALUES (p_command, p_instance, p_env, p_params, p_argv, p_plan, p_backout, p_why, CASE WHEN p_standing THEN 1 ELSE 0 END, ${NOW}, p_os_user, p_host)
      RETURNING id INTO new_id;
    RETURN new_id;
  END $$;

  CREATE FUNCTION decide_change(p_id INTEGER, p_approve BOOLEAN, p_why TEXT) RETURNS TEXT LANGUAGE plpgsql ${DEFINER} AS $$
  DECLARE r change_requests;
  BEGIN
    SELECT * INTO r FROM change_requests WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR level_on(r.env) < 1 THEN
      RAISE EXCEPTION 'no change request %', p_id USING ERRCODE = '22023';
    END IF;
    IF r.requested_by = session_user::text THEN
      RAISE EXCEPTION 'change % was asked for by % itself: another admin of % must decide it (four eyes)', p_id, session_user, r.env USING ERRCODE = '42501';
    END IF;
    IF level_on(r.env) < 3 THEN
      RAISE EXCEPTION 'role % may not decide changes on environment % (needs admin there)', session_user, r.env USING ERRCODE = '42501';
    END IF;
    IF r.status <> 'pending' AND NOT (r.standing = 1 AND r.status = 'approved' AND NOT p_approve) THEN
      RAISE EXCEPTION 'change % is % already', p_id, r.status USING ERRCODE = '22023';
    END IF;
    IF NOT p_approve AND coalesce(p_why, '') = '' THEN
      RAISE EXCEPTION 'a rejection says why' USING ERRCODE = '22023';
    END IF;
    UPDATE change_requests SET status = CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END, decided_by = session_user, decided_at = ${NOW}, decision_why = p_why WHERE id = p_id;
    RETURN CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END;
  END $$;

  -- A run of one's own made under an approved change: used once (a standing change: each run recorded).
  CREATE FUNCTION change_ran(p_id INTEGER, p_run INTEGER) RETURNS VOID LANGUAGE plpgsql ${DEFINER} AS $$
  DECLARE r change_requests;
  BEGIN
    SELECT * INTO r FROM change_requests WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR r.status <> 'approved' OR (r.standing = 0 AND NOT change_window_ok(r.decided_at)) THEN
      RAISE EXCEPTION 'change % is not approved (or its approval expired)', p_id USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM runs WHERE id = p_run AND db_role = session_user::text AND instance IS NOT DISTINCT FROM coalesce(r.instance, runs.instance) AND command = r.command) THEN
      RAISE EXCEPTION 'run % is not a run of % by %', p_run, r.command, session_user USING ERRCODE = '42501';
    END IF;
    INSERT INTO change_runs (change_id, run_id) VALUES (p_id, p_run);
    IF r.standing = 0 THEN
      UPDATE change_requests SET status = 'ran', run_id = p_run WHERE id = p_id;
    END IF;
  END $$;
  REVOKE ALL ON FUNCTION request_change(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BOOLEAN, TEXT, TEXT) FROM PUBLIC;
  REVOKE ALL ON FUNCTION decide_change(INTEGER, BOOLEAN, TEXT) FROM PUBLIC;
  REVOKE ALL ON FUNCTION change_ran(INTEGER, INTEGER) FROM PUBLIC;
`;

export const PG_CHANGES_GRANTS = `
  GRANT SELECT ON change_settings, change_requests, change_runs TO ${PG_USER_ROLE};
  GRANT EXECUTE ON FUNCTION change_window_ok(TEXT), request_change(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BOOLEAN, TEXT, TEXT), decide_change(INTEGER, BOOLEAN, TEXT), change_ran(INTEGER, INTEGER) TO ${PG_USER_ROLE};
`;

/**
 * The backup store's records (see the SQLite migration): a pin is an operator's on the backup's
 * instance; checks of the store are appended by any operator and never changed (the store is shared,
 * not an environment's); a shared store's password, sealed with an environment's key (env_key: only
 * roles granted there open it), is set by team admins.
 */
export const PG_STORE_MIGRATION = `
  CREATE TABLE backup_pins (
    backup_id TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    pinned_at TEXT NOT NULL,
    why TEXT
  );
  ALTER TABLE backup_pins ENABLE ROW LEVEL SECURITY;
  CREATE POLICY backup_pins_read ON backup_pins FOR SELECT USING (EXISTS (SELECT 1 FROM instances i WHERE i.name = backup_pins.instance));
  CREATE POLICY backup_pins_write ON backup_pins FOR ALL USING (instance_allows(instance, 2)) WITH CHECK (instance_allows(instance, 2));
  CREATE TABLE store_checks (
    id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository TEXT NOT NULL,
    at TEXT NOT NULL,
    part INTEGER NOT NULL,
    parts INTEGER NOT NULL,
    cycle_start TEXT NOT NULL,
    ok INTEGER NOT NULL,
    ms INTEGER NOT NULL,
    bytes BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    full_cycle_at TEXT,
    db_role TEXT NOT NULL DEFAULT session_user
  );
  CREATE INDEX store_checks_repo ON store_checks (repository, id);
  CREATE TRIGGER store_checks_no_delete BEFORE DELETE ON store_checks FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TRIGGER store_checks_no_update BEFORE UPDATE ON store_checks FOR EACH ROW EXECUTE FUNCTION audit_append_only();
  CREATE TABLE store_secrets (
    repository TEXT PRIMARY KEY,
    env TEXT NOT NULL REFERENCES envs(name),
    sealed TEXT NOT NULL,
    set_at TEXT NOT NULL
  );
  ALTER TABLE store_secrets ENABLE ROW LEVEL SECURITY;
  CREATE POLICY store_secrets_read ON store_secrets FOR SELECT USING (true);
  CREATE POLICY store_secrets_write ON store_secrets FOR ALL USING (is_team_admin()) WITH CHECK (is_team_admin());
  GRANT SELECT, INSERT, UPDATE, DELETE ON backup_pins, store_secrets TO ${PG_USER_ROLE};
  GRANT SELECT, INSERT ON store_checks TO ${PG_USER_ROLE};
`;

/**
 * How instances relate (inventory/relations.ts): seen with the instance, written by an operator of
 * its environment (mirror sync records its sync); what may change a relation or a hold is the
 * command's level (instance set, promote: admin), checked before the run.
 */
export const PG_RELATIONS_MIGRATION = `
  CREATE TABLE relations (
    instance TEXT PRIMARY KEY,
    kind TEXT CHECK (kind IN ('staging', 'dev', 'mirror')),
    related_to TEXT,
    lag_seconds INTEGER,
    redact TEXT,
    held TEXT,
    synced_backup TEXT,
    synced_at TEXT
  );
  CREATE INDEX relations_related_to ON relations (related_to);
  ALTER TABLE relations ENABLE ROW LEVEL SECURITY;
  CREATE POLICY relations_read ON relations FOR SELECT USING (EXISTS (SELECT 1 FROM instances i WHERE i.name = relations.instance));
  CREATE POLICY relations_write ON relations FOR ALL USING (instance_allows(instance, 2)) WITH CHECK (instance_allows(instance, 2));
  GRANT SELECT, INSERT, UPDATE, DELETE ON relations TO ${PG_USER_ROLE};
`;

/**
 * Policies PostgreSQL can plan instead of calling a function per row. A host was visible through
 * host_allows(name, 1) on each row: for a role below admin, its instances scanned and a level
 * computed per instance, for every host (500 hosts of 10,000 instances: seconds for the console's
 * first read). Now a host is visible when one of its instances is (the instances' own policy, an
 * InitPlan of the environments): for the whole table a hashed subplan (one pass over instances),
 * for one host (each health probe looks its host up) the index on instances (host, path).
 * Change requests and secret uses: the environments as one InitPlan, not a level per row.
 */
export const PG_POLICIES_MIGRATION = `
  ALTER POLICY hosts_read ON hosts USING ((SELECT max_level()) >= 3 OR EXISTS (SELECT 1 FROM instances i WHERE i.host = hosts.name));
  ALTER POLICY change_requests_read ON change_requests USING (env = ANY ((SELECT envs_at(1))::text[]));
  ALTER POLICY secret_uses_read ON secret_uses USING (db_role = session_user::text OR env = ANY ((SELECT envs_at(3))::text[]));
`;
