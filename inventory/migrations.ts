// Each entry moves the schema one version up (PRAGMA user_version). Never edit a shipped entry: add one.
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE envs (
    name TEXT PRIMARY KEY,
    protected INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
  );
  CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    port INTEGER NOT NULL DEFAULT 22,
    user TEXT NOT NULL,
    key_file TEXT,
    jump TEXT REFERENCES hosts(name),
    host_key TEXT,
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
    UNIQUE (host, path)
  );
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
  CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    os_user TEXT NOT NULL,
    origin TEXT NOT NULL,
    command TEXT NOT NULL,
    params TEXT NOT NULL,
    instance TEXT,
    status TEXT NOT NULL,
    error TEXT,
    failed_step TEXT,
    duration_ms INTEGER
  );
  CREATE TABLE run_steps (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    error TEXT
  );
  -- The audit trail is append-only: rows are never deleted, and a run is updated once, when it ends.
  CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
  CREATE TRIGGER run_steps_no_delete BEFORE DELETE ON run_steps BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
  CREATE TRIGGER run_steps_no_update BEFORE UPDATE ON run_steps BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
  CREATE TRIGGER runs_finish_once BEFORE UPDATE ON runs WHEN OLD.finished_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
  CREATE TABLE locks (
    instance TEXT PRIMARY KEY,
    run_id INTEGER,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    user TEXT NOT NULL,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL
  );
  `,
  `
  -- A code tree's stat fingerprint and the backup whose code snapshot holds exactly that tree: written
  -- after a restore unpacked a checked backup, so the next safety backup need not stream it again.
  CREATE TABLE tree_keys (
    key TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    backup_id TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  `,
  `
  -- Per-instance app hooks (argv arrays), health check, files that belong to this instance alone,
  -- the deployed revision, and when opsdeck put it in maintenance.
  ALTER TABLE instances ADD COLUMN hooks TEXT NOT NULL DEFAULT '{}';
  ALTER TABLE instances ADD COLUMN health TEXT;
  ALTER TABLE instances ADD COLUMN local_paths TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE instances ADD COLUMN revision TEXT;
  ALTER TABLE instances ADD COLUMN maintenance_since TEXT;
  `,
  `
  -- Retention per environment: {"daily":3,"weekly":2,"monthly":6,"yearly":1}; NULL means the defaults.
  ALTER TABLE envs ADD COLUMN retention TEXT;
  `,
  `
  -- Where alerts go: one row per channel (email, webhook); secrets (SMTP password, webhook key) sealed.
  CREATE TABLE notify (
    kind TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    secret TEXT
  );
  `,
  `
  -- watch: per-instance excludes (JSON array; NULL means the defaults) and the file baseline,
  -- gzipped JSON of [path, {type, mode, size, sum}] pairs.
  ALTER TABLE instances ADD COLUMN watch_excludes TEXT;
  CREATE TABLE watch_baselines (
    instance TEXT PRIMARY KEY,
    taken_at TEXT NOT NULL,
    data BLOB NOT NULL
  );
  `,
  `
  -- How old an environment's newest good backup may get before backups check alerts (e.g. 26h).
  ALTER TABLE envs ADD COLUMN max_backup_age TEXT;
  `,
  `
  -- Restore drills: what was restored where, how long it took (RTO), how old the data was (RPO).
  CREATE TABLE drills (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    backup_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    report TEXT NOT NULL
  );
  `,
  `
  -- App metrics an instance's owners watch: JSON array of {name, kind: sql|cmd, source}.
  ALTER TABLE instances ADD COLUMN metrics TEXT;
  `,
  `
  -- The last watch check: when, and how many files it found added, changed or removed (the panels show it).
  ALTER TABLE watch_baselines ADD COLUMN checked_at TEXT;
  ALTER TABLE watch_baselines ADD COLUMN changes INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- When the lock holder's process started (boot id and start time): a pid reused by another
  -- process no longer keeps a lock forever.
  ALTER TABLE locks ADD COLUMN proc_start TEXT;
  `,
  `
  -- An instance inside a restore's critical section (its database committed or being committed, its
  -- code tree not yet swapped): set before the COMMIT, cleared when the run ends done or undone. A
  -- row left by a crashed run marks the instance half-restored until opsdeck recover puts it right.
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
  `,
  `
  -- The user commands on an instance's tree run as on this host (sudo -n -u USER), when the login
  -- user is not the tree's owner (a deploy user reaching www-data's tree); NULL: the login user.
  ALTER TABLE hosts ADD COLUMN become TEXT;
  `,
  `
  -- Who ran it, beside the Unix user: the machine (jump box) it ran on, and the database role
  -- (set by PostgreSQL itself on a team inventory; always NULL here, where there is none).
  ALTER TABLE runs ADD COLUMN host TEXT;
  ALTER TABLE runs ADD COLUMN db_role TEXT;
  `,
  `
  -- The command log: every command a run ran (where, the line to type it again with secrets as ***,
  -- how it ended), so any step can be redone by hand; append-only like the rest of the audit trail.
  CREATE TABLE run_commands (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER,
    at TEXT NOT NULL,
    place TEXT NOT NULL,
    line TEXT NOT NULL,
    code INTEGER,
    signal TEXT,
    ms INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL
  );
  CREATE INDEX run_commands_run ON run_commands (run_id);
  CREATE TRIGGER run_commands_no_delete BEFORE DELETE ON run_commands BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
  CREATE TRIGGER run_commands_no_update BEFORE UPDATE ON run_commands BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
  `,
  `
  -- The backup store beyond one snapshot at a time. Pinned backups: prune never drops them.
  -- Integrity checks of the store (restic check, a rotating part of the data at a time): each check's
  -- part of its cycle and result; a cycle whose every part passed gives the full-cycle date.
  -- A shared store's password (team inventories keep it sealed with an environment's key).
  CREATE TABLE backup_pins (
    backup_id TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    pinned_at TEXT NOT NULL,
    why TEXT
  );
  CREATE TABLE store_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repository TEXT NOT NULL,
    at TEXT NOT NULL,
    part INTEGER NOT NULL,
    parts INTEGER NOT NULL,
    cycle_start TEXT NOT NULL,
    ok INTEGER NOT NULL,
    ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    full_cycle_at TEXT
  );
  CREATE INDEX store_checks_repo ON store_checks (repository, id);
  CREATE TABLE store_secrets (
    repository TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    sealed TEXT NOT NULL,
    set_at TEXT NOT NULL
  );
  `,
  `
  -- Release mode (update builds a release beside the live one and switches a link): how many
  -- releases to keep (0: in place), and the directories that live across releases.
  ALTER TABLE instances ADD COLUMN releases INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE instances ADD COLUMN shared_paths TEXT;
  `,
  `
  -- How instances relate (issue 13; inventory/relations.ts): the staging or dev copy of another
  -- (refresh, promote) or a delayed mirror of it (mirror sync), the redaction rules refresh applies,
  -- the hold promote puts on the old production, and a mirror's last sync.
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
  `,
  `
  -- What a restore's database load kept aside for its undo (an engine that swaps tables in keeps
  -- the old ones), recorded with its critical section: recover swaps them back after a crash.
  ALTER TABLE half_restored ADD COLUMN db_kept TEXT;
  `,
  `
  -- A backup the store's retention dropped while a copy store keeps it by its own (backups prune):
  -- still restorable from the copies, so recorded with its manifest; since when only the copies hold it.
  ALTER TABLE backups ADD COLUMN copies_only_since TEXT;
  `,
];
