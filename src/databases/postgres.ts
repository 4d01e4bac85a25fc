import { withSecretFromStdin } from '../remote/quote.js';
import { UsageError } from '../core/errors.js';
import { splitDbUrl, validHost } from './url.js';

export interface PgTarget {
  kind: 'postgres';
  user: string;
  host: string;
  port: number;
  database: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/;

/**
 * Parses postgres://USER@HOST:PORT/DB. A password in the URL is refused: it would sit in this
 * process's argv and in shell history. It goes in OPSDECK_DB_PASSWORD, --db-password-file or the prompt.
 */
export function parsePgUrl(url: string): PgTarget {
  const p = splitDbUrl(url, {
    schemes: ['postgres', 'postgresql'],
    form: 'postgres://USER@HOST:PORT/DBNAME',
    schemeHint: 'opsdeck supports postgres://USER@HOST:PORT/DBNAME',
    paramsHint: 'drop them and write postgres://ROLE@HOST:PORT/DB; a setting such as search_path can be set for the role instead: ALTER ROLE ROLE SET search_path = ...',
  });
  const { user, database, host } = p;
  if (!IDENT.test(user)) throw new UsageError(`invalid database user ${JSON.stringify(user)} in ${url}`, 'give the role name as postgres://ROLE@HOST/DB');
  if (!IDENT.test(database)) throw new UsageError(`invalid database name ${JSON.stringify(database)} in ${url}`, 'give the database name as postgres://ROLE@HOST/DB');
  if (!validHost(p)) throw new UsageError(`invalid database host ${JSON.stringify(host)}`, 'give a host name, an IPv4 address, or an IPv6 address in brackets: postgres://ROLE@[::1]:5432/DB');
  const port = p.port ?? 5432;
  return { kind: 'postgres', user, host, port, database };
}

export function formatPgUrl(t: PgTarget): string {
  return `postgres://${encodeURIComponent(t.user)}@${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}/${encodeURIComponent(t.database)}`;
}

function connArgs(t: PgTarget): string[] {
  return ['--host', t.host, '--port', String(t.port), '--username', t.user, '--no-password'];
}

/**
 * pg_dump of the whole database as plain SQL: restic deduplicates it well, psql loads it in one
 * transaction. With owners and privileges, so a restore gives back who owns and who may read what
 * (DumpRewriter maps them where the dump loads into another instance).
 */
export function dumpArgv(t: PgTarget): string[] {
  return withSecretFromStdin('PGPASSWORD', ['pg_dump', ...connArgs(t), '--dbname', t.database]);
}

/** pg_dump of the schema only, for comparing two databases' structure. */
export function withSchemaOnly(t: PgTarget): string[] {
  return withSecretFromStdin('PGPASSWORD', ['pg_dump', ...connArgs(t), '--schema-only', '--no-owner', '--no-privileges', '--dbname', t.database]);
}

export function psqlArgv(t: PgTarget, extra: string[]): string[] {
  return withSecretFromStdin('PGPASSWORD', ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...connArgs(t), '--dbname', t.database, ...extra]);
}

/**
 * Loading is one transaction that first empties what the loading role may replace, so objects
 * created since the backup are gone too, and that only commits when the suffix arrives, after the
 * dump's checksum matched. A dump cut short reaches EOF without COMMIT and psql's session ends: the
 * database is untouched.
 *
 * The prefix runs as the instance's role, never a superuser. It drops, in this database only, what
 * belongs to the role and to the roles it is a member of: their schemas with all they hold, their extensions, their objects elsewhere (public),
 * their large objects and default privileges. Not DROP OWNED: that also revokes the roles' grants on
 * other databases, and drops `public` when the role owns it (pg_dump never creates `public` again).
 * Objects of roles it cannot act as are left alone; if dropping its own would take one along (in its
 * schema, or depending on its objects), the load fails there, before anything is committed.
 * `public` stays; when it is the role's, its owner goes back to what PostgreSQL made, and the dump
 * sets it if it differed. Its privileges are set last (DumpRewriter.flush): a role owning objects in
 * it needs its CREATE there while the dump loads, and pg_dump grants it only at the end.
 */
export const LOAD_PREFIX = `BEGIN;
SET LOCAL client_min_messages = warning;
SET LOCAL search_path = pg_catalog, pg_temp;
DO $opsdeck$
DECLARE
  o record;
  bad text;
  kind text;
  ident text;
  own oid;
  others_cls regclass[];
  others_oid oid[];
  others_what text[];
  db oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
BEGIN
  IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
    RAISE EXCEPTION 'opsdeck: role % is a superuser: a restore loads as the instance''s own role, never as a superuser', current_user
      USING HINT = 'give the instance a role of its own without SUPERUSER (the owner of its database); nothing was changed';
  END IF;
  -- What roles it is not a member of own here: left alone, and the load fails (nothing changed) if
  -- dropping its own would take any of them along (in its schemas, or depending on its objects).
  SELECT array_agg(x.cls), array_agg(x.oid), array_agg(format('%s %s (owned by %s)', i.type, i.identity, pg_get_userbyid(x.owner)))
    INTO others_cls, others_oid, others_what
  FROM (
    SELECT 'pg_namespace'::regclass AS cls, n.oid, n.nspowner AS owner, n.oid AS nsp FROM pg_namespace n WHERE n.nspname <> 'public'
    UNION ALL SELECT 'pg_class'::regclass, c.oid, c.relowner, c.relnamespace FROM pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
    UNION ALL SELECT 'pg_proc'::regclass, p.oid, p.proowner, p.pronamespace FROM pg_proc p
    UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typowner, t.typnamespace FROM pg_type t
      WHERE t.typrelid = 0 AND t.typtype <> 'm' AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
  ) x
  JOIN pg_namespace n ON n.oid = x.nsp
  CROSS JOIN LATERAL pg_identify_object(x.cls, x.oid, 0) i
  WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    AND NOT pg_has_role(current_user, x.owner, 'USAGE')
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = x.cls AND d.objid = x.oid AND d.objsubid = 0 AND d.deptype = 'e');
  SELECT string_agg(format('extension %s (owned by %s, in schema %s)', e.extname, pg_get_userbyid(e.extowner), n.nspname), ', ') INTO bad
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
  WHERE NOT pg_has_role(current_user, e.extowner, 'USAGE') AND pg_has_role(current_user, n.nspowner, 'USAGE')
    AND n.nspname <> 'public' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    AND NOT coalesce((SELECT v.trusted FROM pg_available_extension_versions v WHERE v.name = e.extname AND v.version = e.extversion), false);
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'opsdeck: role % could not create again, after dropping its schema: %', current_user, bad
      USING HINT = 'have a superuser move the extension to public (ALTER EXTENSION ... SET SCHEMA public); nothing was changed';
  END IF;

  FOR o IN SELECT e.extname FROM pg_extension e WHERE pg_has_role(current_user, e.extowner, 'USAGE') LOOP
    EXECUTE format('DROP EXTENSION IF EXISTS %I CASCADE', o.extname);
  END LOOP;
  FOR o IN SELECT n.nspname FROM pg_namespace n
    WHERE n.nspname <> 'public' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND pg_has_role(current_user, n.nspowner, 'USAGE')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', o.nspname);
  END LOOP;
  -- What is left of theirs sits in schemas they do not own (public): one by one. Objects that go
  -- with another (implicit types, serial sequences) go with it.
  FOR o IN SELECT s.classid, s.objid FROM pg_shdepend s
    WHERE s.dbid = db AND s.deptype = 'o' AND pg_has_role(current_user, s.refobjid, 'USAGE')
      AND s.classid NOT IN ('pg_namespace'::regclass, 'pg_extension'::regclass, 'pg_default_acl'::regclass, 'pg_largeobject'::regclass)
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = s.classid AND d.objid = s.objid AND d.objsubid = 0 AND d.deptype IN ('i', 'e', 'a'))
  LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_shdepend s WHERE s.dbid = db AND s.classid = o.classid AND s.objid = o.objid AND s.deptype = 'o');
    SELECT i.type, i.identity INTO kind, ident FROM pg_identify_object(o.classid, o.objid, 0) i;
    kind := CASE
      WHEN o.classid = 'pg_type'::regclass AND (SELECT t.typtype FROM pg_type t WHERE t.oid = o.objid) = 'd' THEN 'domain'
      WHEN kind = 'composite type' THEN 'type'
      WHEN kind = 'statistics object' THEN 'statistics'
      WHEN kind = 'foreign-data wrapper' THEN 'foreign data wrapper'
      ELSE kind END;
    EXECUTE format('DROP %s %s CASCADE', kind, ident);
  END LOOP;
  SELECT string_agg(u.what, ', ' ORDER BY u.what) INTO bad FROM unnest(others_cls, others_oid, others_what) AS u(cls, oid, what)
  WHERE NOT CASE u.cls
    WHEN 'pg_namespace'::regclass THEN EXISTS (SELECT 1 FROM pg_namespace n WHERE n.oid = u.oid)
    WHEN 'pg_class'::regclass THEN EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = u.oid)
    WHEN 'pg_proc'::regclass THEN EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = u.oid)
    ELSE EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = u.oid) END;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'opsdeck: replacing what role % owns in database % would drop what roles it is not a member of own: %', current_user, current_database(), left(bad, 600)
      USING HINT = 'they sit in its schemas or depend on its objects: grant the role their owners (GRANT owner TO role), or move them; nothing was changed';
  END IF;
  PERFORM lo_unlink(l.oid) FROM pg_largeobject_metadata l WHERE pg_has_role(current_user, l.lomowner, 'USAGE');
  FOR o IN SELECT d.defaclrole, d.defaclnamespace, d.defaclobjtype, a.grantee FROM pg_default_acl d CROSS JOIN LATERAL aclexplode(d.defaclacl) a
    WHERE pg_has_role(current_user, d.defaclrole, 'USAGE')
  LOOP
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I %s REVOKE ALL ON %s FROM %s', pg_get_userbyid(o.defaclrole),
      CASE WHEN o.defaclnamespace = 0 THEN '' ELSE format('IN SCHEMA %I', (SELECT n.nspname FROM pg_namespace n WHERE n.oid = o.defaclnamespace)) END,
      CASE o.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END,
      CASE WHEN o.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(o.grantee)) END);
  END LOOP;
  -- Revoking everything leaves a role-wide entry empty; PostgreSQL's defaults put back remove it.
  FOR o IN SELECT d.defaclrole, d.defaclobjtype FROM pg_default_acl d WHERE d.defaclnamespace = 0 AND pg_has_role(current_user, d.defaclrole, 'USAGE') LOOP
    kind := CASE o.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END;
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT ALL ON %s TO %I', pg_get_userbyid(o.defaclrole), kind, pg_get_userbyid(o.defaclrole));
    IF o.defaclobjtype IN ('f', 'T') THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT %s ON %s TO PUBLIC', pg_get_userbyid(o.defaclrole), CASE o.defaclobjtype WHEN 'f' THEN 'EXECUTE' ELSE 'USAGE' END, kind);
    END IF;
  END LOOP;
  SELECT n.nspowner INTO own FROM pg_namespace n WHERE n.nspname = 'public';
  IF NOT FOUND THEN
    CREATE SCHEMA public;
    GRANT USAGE ON SCHEMA public TO PUBLIC;
  ELSIF own <> 'pg_database_owner'::regrole AND pg_has_role(current_user, own, 'USAGE') AND pg_has_role(current_user, 'pg_database_owner', 'MEMBER') THEN
    ALTER SCHEMA public OWNER TO pg_database_owner;
  END IF;
END
$opsdeck$;
`;
export const LOAD_SUFFIX = '\nCOMMIT;\n';

export function loadArgv(t: PgTarget): string[] {
  return psqlArgv(t, ['-f', '-']);
}

/**
 * What the loading side knows before a load: the roles there (and whether the loading role may own
 * objects as each), and the extensions there that the load keeps as they are (another role's).
 */
export interface LoadTarget {
  /** The loading role. */
  role: string;
  roles: Map<string, boolean>;
  keptExtensions: Set<string>;
}

const LOAD_TARGET_SQL = `SELECT json_build_object('role', current_user,
  'roles', (SELECT json_object_agg(r.rolname, pg_has_role(current_user, r.oid, 'MEMBER')) FROM pg_roles r),
  'kept', (SELECT coalesce(json_agg(e.extname), '[]'::json) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE NOT pg_has_role(current_user, e.extowner, 'USAGE')
      AND NOT (n.nspname <> 'public' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND pg_has_role(current_user, n.nspowner, 'USAGE'))))`;

/** psql reading the LoadTarget of a database (one JSON line). */
export function loadTargetArgv(t: PgTarget): string[] {
  return psqlArgv(t, ['-At', '-c', LOAD_TARGET_SQL]);
}

export function parseLoadTarget(stdout: string): LoadTarget {
  const j = JSON.parse(stdout.trim().split('\n').pop()!) as { role: string; roles: Record<string, boolean>; kept: string[] };
  return { role: j.role, roles: new Map(Object.entries(j.roles ?? {})), keptExtensions: new Set(j.kept) };
}

/** An SQL identifier, double-quoted: whatever it holds, PostgreSQL reads it as one name. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A schema-qualified name as pg_dump writes it (parts bare or already quoted), quoted for SQL. */
export function quoteQualified(name: string): string {
  return (name.match(/"(?:[^"]|"")*"|[^.]+/g) ?? []).map((p) => (p.startsWith('"') ? p : quoteIdent(p))).join('.');
}
