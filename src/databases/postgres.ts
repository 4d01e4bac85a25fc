import type { QueryArrayConfig } from 'pg';
import { isIPv6 } from 'node:net';
import type { Duplex } from 'node:stream';
import { withSecretFromStdin } from '../remote/quote.js';
import { UsageError } from '../core/errors.js';
import { metricSqlProblem } from '../core/metricsql.js';

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
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`invalid database URL ${JSON.stringify(url)}`, 'write it as postgres://USER@HOST:PORT/DBNAME');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new UsageError(`unsupported database kind ${JSON.stringify(u.protocol.replace(/:$/, ''))}`, 'opsdeck supports postgres://USER@HOST:PORT/DBNAME');
  }
  if (u.password) {
    throw new UsageError(
      'the database URL holds a password, which would be visible in the process list and shell history',
      'drop it from the URL and give it in OPSDECK_DB_PASSWORD, with --db-password-file FILE, or at the prompt',
    );
  }
  // Connection parameters (?options=, ?sslmode=, #...) would be dropped on the way to psql and pg_dump:
  // refused rather than silently ignored.
  if (u.search || u.hash || /[?#]/.test(url)) {
    throw new UsageError(
      `the database URL ${JSON.stringify(url)} holds connection parameters (${u.search || u.hash || '?'}), which opsdeck does not pass on`,
      'drop them and write postgres://ROLE@HOST:PORT/DB; a setting such as search_path can be set for the role instead: ALTER ROLE ROLE SET search_path = ...',
    );
  }
  const user = decodeURIComponent(u.username);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  // An IPv6 literal comes bracketed ([::1]); it reaches psql bare.
  const v6 = /^\[(.*)\]$/.exec(u.hostname);
  const host = v6 ? v6[1] : u.hostname || '127.0.0.1';
  if (!IDENT.test(user)) throw new UsageError(`invalid database user ${JSON.stringify(user)} in ${url}`, 'give the role name as postgres://ROLE@HOST/DB');
  if (!IDENT.test(database)) throw new UsageError(`invalid database name ${JSON.stringify(database)} in ${url}`, 'give the database name as postgres://ROLE@HOST/DB');
  if (v6 ? !isIPv6(host) : !/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(host))
    throw new UsageError(`invalid database host ${JSON.stringify(host)}`, 'give a host name, an IPv4 address, or an IPv6 address in brackets: postgres://ROLE@[::1]:5432/DB');
  const port = u.port ? Number(u.port) : 5432;
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

const ROLE = String.raw`("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const OWNER_RE = new RegExp(String.raw`^(ALTER .+ OWNER TO )${ROLE};$`);
const GRANT_RE = new RegExp(String.raw`^((?:ALTER DEFAULT PRIVILEGES .+ )?GRANT .+ TO )${ROLE}( WITH GRANT OPTION)?;$`);
const REVOKE_RE = new RegExp(String.raw`^((?:ALTER DEFAULT PRIVILEGES .+ )?REVOKE .+ FROM )${ROLE};$`);
const FOR_ROLE_RE = new RegExp(String.raw`^(ALTER DEFAULT PRIVILEGES FOR ROLE )${ROLE}( .*)$`);
const lit = (q: string) => `'${q.replace(/'/g, "''")}'`;
const unquoteRole = (r: string) => (r.startsWith('"') ? r.slice(1, -1).replace(/""/g, '"') : r);

type Lex = { k: 'top' } | { k: 'sq'; esc: boolean } | { k: 'dq' } | { k: 'dollar'; tag: string };

/**
 * Rewrites a plain pg_dump as it streams into psql, line by line, never touching COPY data or the
 * inside of a quoted string or function body (it follows SQL's quoting):
 * - drops the BEGIN; / COMMIT; that pg_dump puts around large objects' data, which would commit the
 *   load's one transaction half-way;
 * - maps the role the dump was taken as (`from`) to the loading role, and whatever else the loading
 *   side cannot give: an owner the loading role cannot act as becomes the loading role (its grants
 *   too: another instance's role gets nothing here), a grant to a role that does not exist there is left out, SET SESSION AUTHORIZATION (superusers only) is left
 *   out. Each is counted in notes(), for the run log;
 * - leaves out COMMENT ON EXTENSION for an extension that stays as another role's (not ours to comment).
 * The bytes hashed against the manifest are the dump's own: this runs after the Meter hashed them.
 */
export class DumpRewriter {
  private lex: Lex = { k: 'top' };
  private copy = false;
  private copyHead = '';
  private copyLen = 0;
  private rest: Buffer[] = [];
  private readonly counts = new Map<string, number>();
  private started = false;
  /** Owners of the dump the loading role cannot act as: their objects are its own here, and so are their grants. */
  private readonly ownersMapped = new Set<string>();
  /** Schemas whose privileges are set at the end (public, and those the dump creates), with the dump's GRANT/REVOKE on each. */
  private readonly schemaAcl = new Map<string, string[]>([['public', []]]);

  constructor(
    private readonly target: LoadTarget,
    private readonly from?: string,
  ) {}

  feed(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      out.push(Buffer.from(this.createInSchema('public', true)));
    }
    let i = 0;
    while (i < chunk.length) {
      if (this.copy) {
        let j = i;
        while (j < chunk.length) {
          const nl = chunk.indexOf(10, j);
          const end = nl === -1 ? chunk.length : nl;
          if (this.copyLen < 3) this.copyHead += chunk.toString('latin1', j, Math.min(end, j + 3 - this.copyLen));
          this.copyLen += end - j;
          if (nl === -1) {
            j = chunk.length;
            break;
          }
          const last = this.copyLen === 2 && this.copyHead === '\\.';
          this.copyHead = '';
          this.copyLen = 0;
          j = nl + 1;
          if (last) {
            this.copy = false;
            break;
          }
        }
        out.push(chunk.subarray(i, j));
        i = j;
        continue;
      }
      const nl = chunk.indexOf(10, i);
      if (nl === -1) {
        this.rest.push(Buffer.from(chunk.subarray(i)));
        break;
      }
      const line = this.rest.length ? Buffer.concat([...this.rest, chunk.subarray(i, nl)]) : chunk.subarray(i, nl);
      this.rest = [];
      i = nl + 1;
      const text = line.toString('utf8');
      const atTop = this.lex.k === 'top';
      this.scan(text);
      const whole = atTop && this.lex.k === 'top';
      const replaced = whole ? this.rewrite(text) : undefined;
      if (whole && /^COPY .+ FROM stdin;$/.test(text)) this.copy = true;
      if (replaced === undefined) out.push(line, NL);
      else if (replaced !== null) out.push(Buffer.from(replaced + '\n'));
      const loaded = replaced === undefined ? text : replaced;
      if (whole && loaded) this.schemaStatement(loaded, out);
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /**
   * What is held of an unfinished last line (a dump ends with a newline: normally nothing), then the
   * privileges of each schema the load set up made exactly the dump's, where the schema is ours:
   * back to PostgreSQL's (the owner's, and everyone's USAGE on public), then the dump's own
   * GRANT/REVOKE on it once more.
   */
  flush(): Buffer {
    const b = Buffer.concat(this.rest);
    this.rest = [];
    const fix = [...this.schemaAcl].map(
      ([schema, acl]) => `
DO $opsdeck$
DECLARE
  o record;
  own oid := (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = ${lit(schema.startsWith('"') ? schema.slice(1, -1).replace(/""/g, '"') : schema)});
BEGIN
  IF own IS NULL OR NOT pg_catalog.pg_has_role(current_user, own, 'USAGE') THEN RETURN; END IF;
  FOR o IN SELECT DISTINCT a.grantee FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) a
    WHERE n.oid = ${lit(schema)}::pg_catalog.regnamespace AND a.grantee <> n.nspowner
  LOOP
    EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA %s FROM %s', ${lit(schema)}, CASE WHEN o.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(o.grantee)) END);
  END LOOP;
  EXECUTE pg_catalog.format('GRANT ALL ON SCHEMA %s TO %I', ${lit(schema)}, pg_catalog.pg_get_userbyid(own));
${schema === 'public' ? '  GRANT USAGE ON SCHEMA public TO PUBLIC;\n' : ''}${acl.map((q) => `  EXECUTE ${lit(q)};\n`).join('')}END
$opsdeck$;
`,
    );
    return Buffer.concat([b, Buffer.from(fix.join(''))]);
  }

  /**
   * pg_dump sets owners early and grants last: a table of `owner2` in a schema of the app role needs
   * owner2's CREATE there while it loads. So every role the loading role acts as gets CREATE on each
   * schema the dump sets up (public: when it is ours) for the load, and flush() puts each schema's
   * privileges back to exactly the dump's.
   */
  private createInSchema(schema: string, ifOurs: boolean): string {
    const roles = [...this.target.roles].filter(([r, member]) => member && r !== this.target.role && !r.startsWith('pg_')).map(([r]) => quoteIdent(r));
    if (!roles.length) return '';
    const grant = `GRANT CREATE ON SCHEMA ${schema} TO ${roles.join(', ')}`;
    return ifOurs
      ? `DO $opsdeck$ BEGIN IF pg_catalog.pg_has_role(current_user, (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = ${lit(schema)}), 'USAGE') THEN EXECUTE ${lit(grant)}; END IF; END $opsdeck$;\n`
      : `${grant};\n`;
  }

  private schemaStatement(line: string, out: Buffer[]): void {
    let m = /^CREATE SCHEMA ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*);$/.exec(line);
    if (m) {
      this.schemaAcl.set(m[1], []);
      return;
    }
    if ((m = /^ALTER SCHEMA ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) OWNER TO /.exec(line)) && m[1] !== 'public' && this.schemaAcl.has(m[1])) {
      out.push(Buffer.from(this.createInSchema(m[1], false)));
      return;
    }
    if ((m = /^(?:GRANT|REVOKE) .* ON SCHEMA ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) (?:TO|FROM) /.exec(line)) && this.schemaAcl.has(m[1])) this.schemaAcl.get(m[1])!.push(line);
  }

  /** What the load could not give back as it was, one line per kind and role. */
  notes(): string[] {
    return [...this.counts].map(([k, n]) => k.replace('{n}', String(n)).replace(/\{s\}/g, n === 1 ? '' : 's'));
  }

  private note(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** A replacement line, null to leave the line out, undefined to keep it. */
  private rewrite(line: string): string | null | undefined {
    if (line === 'BEGIN;' || line === 'COMMIT;') return null;
    if (/^(RE)?SET SESSION AUTHORIZATION\b/.test(line)) {
      const who = line.replace(/^SET SESSION AUTHORIZATION (.*);$/, '$1').replace(/^'(.*)'$/, (_, q: string) => q.replace(/''/g, "'"));
      if (line.startsWith('SET')) this.note(`privileges granted by ${unquoteRole(who)} in the backup granted by ${this.target.role} here, {n} time{s} (only a superuser may act as another role)`);
      return null;
    }
    const ext = /^COMMENT ON EXTENSION ("(?:[^"]|"")+"|[a-z_][a-z0-9_]*) IS /.exec(line);
    if (ext) return this.target.keptExtensions.has(unquoteRole(ext[1])) ? null : undefined;
    let changed = false;
    let m = FOR_ROLE_RE.exec(line);
    if (m) {
      const name = unquoteRole(m[2]);
      const mapped = name === this.from || this.ownersMapped.has(name) ? this.target.role : name;
      if (!this.target.roles.get(mapped)) {
        this.note(`{n} default privilege{s} of role ${name} not restored: ${this.why(name)}`);
        return null;
      }
      if (mapped !== name) [line, changed] = [m[1] + quoteIdent(mapped) + m[3], true];
    }
    if ((m = OWNER_RE.exec(line))) {
      const name = unquoteRole(m[2]);
      const to = this.owner(name);
      if (to !== name && name !== this.from) this.ownersMapped.add(name);
      if (to !== name && name !== this.from) this.note(`{n} object{s} owned by ${name} in the backup, by ${to} here: ${this.why(name)}`);
      return to === name ? undefined : m[1] + quoteIdent(to) + ';';
    }
    if ((m = GRANT_RE.exec(line) ?? REVOKE_RE.exec(line))) {
      if (m[2] === 'PUBLIC') return changed ? line : undefined;
      const name = unquoteRole(m[2]);
      const to = name === this.from || this.ownersMapped.has(name) ? this.target.role : name;
      if (!this.target.roles.has(to)) {
        this.note(`{n} grant{s} to role ${name} not restored: no such role here`);
        return null;
      }
      return to === name && !changed ? undefined : m[1] + (to === name ? m[2] : quoteIdent(to)) + (m[3] ?? '') + ';';
    }
    return changed ? line : undefined;
  }

  /** Who owns, here, what `name` owned in the dump. */
  private owner(name: string): string {
    const mapped = name === this.from ? this.target.role : name;
    return this.target.roles.get(mapped) ? mapped : this.target.role;
  }

  private why(name: string): string {
    return this.target.roles.has(name) ? `${this.target.role} is not a member of ${name}` : 'no such role here';
  }

  /** Follows quotes, dollar quotes and comments through one line, from the state the last left. */
  private scan(line: string): void {
    let i = 0;
    const n = line.length;
    while (i < n) {
      const s = this.lex;
      if (s.k === 'top') {
        const re = /--|['"$]/g;
        re.lastIndex = i;
        const m = re.exec(line);
        if (!m) return;
        i = m.index;
        if (m[0] === '--') return;
        if (m[0] === "'") {
          this.lex = { k: 'sq', esc: i > 0 && /[eE]/.test(line[i - 1]) && !(i > 1 && /[A-Za-z0-9_$]/.test(line[i - 2])) };
          i++;
        } else if (m[0] === '"') {
          this.lex = { k: 'dq' };
          i++;
        } else {
          const d = i > 0 && /[A-Za-z0-9_$]/.test(line[i - 1]) ? null : /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(line.slice(i, i + 66));
          if (d) {
            this.lex = { k: 'dollar', tag: d[0] };
            i += d[0].length;
          } else i++;
        }
      } else if (s.k === 'sq') {
        if (s.esc) {
          const re = /\\[\s\S]|'/g;
          re.lastIndex = i;
          let m: RegExpExecArray | null;
          while ((m = re.exec(line)) && m[0] !== "'");
          if (!m) return;
          i = m.index + 1;
        } else {
          const j = line.indexOf("'", i);
          if (j === -1) return;
          i = j + 1;
        }
        if (line[i] === "'") i++;
        else this.lex = { k: 'top' };
      } else if (s.k === 'dq') {
        const j = line.indexOf('"', i);
        if (j === -1) return;
        i = j + 1;
        if (line[i] === '"') i++;
        else this.lex = { k: 'top' };
      } else {
        const j = line.indexOf(s.tag, i);
        if (j === -1) return;
        i = j + s.tag.length;
        this.lex = { k: 'top' };
      }
    }
  }
}

const NL = Buffer.from('\n');

/** An SQL identifier, double-quoted: whatever it holds, PostgreSQL reads it as one name. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A schema-qualified name as pg_dump writes it (parts bare or already quoted), quoted for SQL. */
export function quoteQualified(name: string): string {
  return (name.match(/"(?:[^"]|"")*"|[^.]+/g) ?? []).map((p) => (p.startsWith('"') ? p : quoteIdent(p))).join('.');
}

export interface PgHealth {
  ok: boolean;
  reason?: string;
  ms: number;
  sizeBytes?: number;
  /** Client connections to the whole server, against its max_connections. */
  connections?: number;
  maxConnections?: number;
  /** The oldest open transaction of any other session, in seconds; null when none is open. */
  longestTransactionSeconds?: number | null;
  /** On a primary with replicas: their count and worst replay lag; on a replica: how far behind it is. */
  replication?: { role: 'primary' | 'replica'; replicas: number; lagSeconds: number | null };
  /** App metrics by name: the number, or why it could not be read. */
  metrics?: Record<string, number | { error: string }>;
}

const HEALTH_SQL = `SELECT pg_database_size(current_database())::float8 AS size,
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS conns,
  current_setting('max_connections')::int AS max,
  (SELECT extract(epoch FROM max(now() - xact_start)) FROM pg_stat_activity
     WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend')::float8 AS longest,
  pg_is_in_recovery() AS replica,
  CASE WHEN pg_is_in_recovery() THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8 AS replay_lag,
  (SELECT count(*) FROM pg_stat_replication)::int AS replicas,
  (SELECT extract(epoch FROM max(replay_lag)) FROM pg_stat_replication)::float8 AS replica_lag,
  (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`;

/**
 * Database health over a stream the caller opens (a tunnel on the host's SSH connection), with
 * node-postgres. The session is read-only from its start (default_transaction_read_only, a statement
 * and a lock timeout, as startup options) and everything runs in READ ONLY transactions that are
 * rolled back. Each app metric gets its own transaction, on the extended protocol (one statement),
 * after the same check `instance set` makes (metricSqlProblem): one bad metric fails alone, never
 * hiding the others or making the database look down. A superuser role runs no sql: metric at all:
 * it could write even in READ ONLY (COPY ... TO PROGRAM).
 */
export async function probePostgres(t: PgTarget, password: string, stream: () => Duplex, sqlMetrics: { name: string; query: string }[] = [], timeoutMs = 8000): Promise<PgHealth> {
  const t0 = Date.now();
  const { default: pg } = await import('pg');
  // Each metric gets a share of the time, so a slow one cannot use up the whole probe's.
  const healthMs = Math.max(1000, timeoutMs - 1000);
  const metricMs = Math.max(500, Math.floor(healthMs / (sqlMetrics.length + 1)));
  const client = new pg.Client({
    user: t.user,
    database: t.database,
    password,
    host: t.host,
    port: t.port,
    stream,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: 'opsdeck-health',
    options: `-c default_transaction_read_only=on -c statement_timeout=${healthMs} -c lock_timeout=${metricMs} -c idle_in_transaction_session_timeout=${timeoutMs}`,
  });
  // A connection lost later must not become an unhandled 'error' that ends the process.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('BEGIN READ ONLY');
    const r = (await client.query(HEALTH_SQL)).rows[0];
    await client.query('ROLLBACK');
    const out: PgHealth = {
      ok: true,
      ms: 0,
      sizeBytes: r.size,
      connections: r.conns,
      maxConnections: r.max,
      longestTransactionSeconds: r.longest === null ? null : Math.round(r.longest),
    };
    if (r.replica) out.replication = { role: 'replica', replicas: 0, lagSeconds: r.replay_lag === null ? null : Math.round(r.replay_lag) };
    else if (r.replicas > 0) out.replication = { role: 'primary', replicas: r.replicas, lagSeconds: r.replica_lag === null ? null : Math.round(r.replica_lag) };
    out.ms = Date.now() - t0;
    if (sqlMetrics.length) out.metrics = await sqlMetricValues(client, t, !!r.superuser, sqlMetrics, metricMs);
    return out;
  } catch (err) {
    return { ok: false, reason: (err as Error).message || String(err), ms: Date.now() - t0 };
  } finally {
    void client.end().catch(() => {});
  }
}

/** Each sql: metric in its own READ ONLY transaction, rolled back; a failure is that metric's alone. */
async function sqlMetricValues(
  client: import('pg').Client,
  t: PgTarget,
  superuser: boolean,
  sqlMetrics: { name: string; query: string }[],
  metricMs: number,
): Promise<Record<string, number | { error: string }>> {
  const out: Record<string, number | { error: string }> = {};
  let lost: string | undefined;
  for (const m of sqlMetrics) {
    if (superuser) {
      out[m.name] = {
        error: `refused: role ${t.user} is a superuser, which can write even in a read-only transaction (COPY ... TO PROGRAM); give the instance a role without SUPERUSER, or use a cmd: metric`,
      };
      continue;
    }
    const problem = metricSqlProblem(m.query);
    if (problem) {
      out[m.name] = { error: `refused: ${problem}` };
      continue;
    }
    if (lost) {
      out[m.name] = { error: `not run: ${lost}` };
      continue;
    }
    try {
      await client.query(`BEGIN READ ONLY; SET LOCAL statement_timeout = ${metricMs}`);
      try {
        // The extended protocol runs exactly one statement: a metric cannot smuggle a second one in.
        // (pg supports queryMode; its types do not name it yet.)
        const query: QueryArrayConfig & { queryMode: 'extended' } = { text: m.query, queryMode: 'extended', rowMode: 'array' };
        const res = await client.query(query);
        const v = Number(res.rows[0]?.[0]);
        out[m.name] = res.rows.length && res.rows[0][0] !== null && Number.isFinite(v) ? v : { error: 'the query did not return one number' };
      } catch (err) {
        out[m.name] = { error: (err as Error).message };
      }
      await client.query('ROLLBACK');
    } catch (err) {
      // The session itself is gone (the metric ended it?): the others cannot run on it.
      lost = `the connection was lost during metric ${m.name}: ${(err as Error).message}`;
      if (!(m.name in out) || typeof out[m.name] === 'number') out[m.name] = { error: lost };
    }
  }
  return out;
}
