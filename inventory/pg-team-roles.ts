/**
 * The team inventory's own group roles (issue 11): their names per inventory (teamRoleNames), the
 * tokens of the rights SQL replaced by them (withRoles), and the migration that moved an inventory of
 * before off the cluster's shared roles (PG_TEAM_ROLES_MIGRATION).
 */
import { UsageError } from '../src/core/errors.js';
import { DEFINER, grantFunctionsSql, PG_ADMIN_ROLE, PG_SCHEMA, PG_USER_ROLE } from './pg-rights.js';

/** The roles of every inventory made before they were per inventory: the cluster's, shared by all. */
export const LEGACY_ROLES: TeamRoles = { user: 'opsdeck_user', admin: 'opsdeck_admin' };

export interface TeamRoles {
  user: string;
  admin: string;
}

/**
 * An inventory's group roles, named after its database (roles are the cluster's, databases share
 * them): opsdeck_<db>_user, whose members are its operators, and opsdeck_<db>_admin, its team admins.
 * Only lower-case letters, digits and _ (others become _), so the names need no quoting anywhere;
 * PostgreSQL would cut a name past 63 bytes, and two long names could then meet: refused.
 */
export function teamRoleNames(database: string): TeamRoles {
  const base = database.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const roles = { user: `opsdeck_${base}_user`, admin: `opsdeck_${base}_admin` };
  if (roles.admin.length > 63)
    throw new UsageError(
      `the database name ${JSON.stringify(database)} is too long for the inventory's roles (${roles.admin} is over PostgreSQL's 63 bytes)`,
      'keep the team inventory in a database whose name has at most 49 characters',
    );
  return roles;
}

/** Names that go into SQL unquoted: plain identifiers only (a team_roles row is read back, not trusted). */
export function checkRoleNames(roles: TeamRoles): void {
  for (const r of [roles.user, roles.admin]) if (!/^[a-z_][a-z0-9_]{0,62}$/.test(r)) throw new UsageError(`invalid role name ${JSON.stringify(r)}`);
}

/** SQL of the migrations and grants with this inventory's role names in place of the tokens. */
export function withRoles(sql: string, roles: TeamRoles): string {
  checkRoleNames(roles);
  return sql.replaceAll(PG_USER_ROLE, roles.user).replaceAll(PG_ADMIN_ROLE, roles.admin);
}

/**
 * The group roles per inventory (team init makes them: teamRoleNames). An inventory made before
 * this had its operators and admins in the cluster's opsdeck_user and opsdeck_admin, which every
 * inventory on the cluster shared (an admin of one was an admin of all): their members become
 * members of this inventory's roles, grants named after them are renamed, and the cluster's roles
 * lose every right on this schema (other inventories keep theirs until their own upgrade). Who was
 * a member before keeps what they had here; `team who` shows it, for a team admin to prune. Group
 * roles of opsdeck's own (the cluster's two, other inventories' own) are not carried over: through
 * them, whoever is added to another inventory later would reach this one too.
 */
export const PG_TEAM_ROLES_MIGRATION = `
  CREATE TABLE team_roles (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    user_role TEXT NOT NULL,
    admin_role TEXT NOT NULL
  );
  INSERT INTO team_roles (user_role, admin_role) VALUES ('${PG_USER_ROLE}', '${PG_ADMIN_ROLE}');
  DO $$
  DECLARE m RECORD;
  BEGIN
    -- The schema's rights were granted to the cluster's role: an inventory of before.
    -- (Nested: has_schema_privilege fails on a role that does not exist, as on a cluster that never had it.)
    IF to_regrole('${LEGACY_ROLES.user}') IS NOT NULL THEN IF has_schema_privilege('${LEGACY_ROLES.user}', '${PG_SCHEMA}', 'USAGE') THEN
      FOR m IN SELECT a.member::regrole::text AS member FROM pg_auth_members a WHERE a.roleid = to_regrole('${LEGACY_ROLES.user}') AND left(a.member::regrole::text, 8) <> 'opsdeck_' LOOP
        EXECUTE format('GRANT %I TO %s', '${PG_USER_ROLE}', m.member);
      END LOOP;
      DELETE FROM grants g WHERE g.role = '${LEGACY_ROLES.user}' AND EXISTS (SELECT 1 FROM grants o WHERE o.role = '${PG_USER_ROLE}' AND o.env = g.env);
      UPDATE grants SET role = '${PG_USER_ROLE}' WHERE role = '${LEGACY_ROLES.user}';
      EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', '${PG_SCHEMA}', '${LEGACY_ROLES.user}');
      EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I', '${PG_SCHEMA}', '${LEGACY_ROLES.user}');
      EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM %I', '${PG_SCHEMA}', '${LEGACY_ROLES.user}');
      EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', '${PG_SCHEMA}', '${LEGACY_ROLES.user}');
    END IF; END IF;
    -- Team admins were the members of the cluster's admin role when is_team_admin() named it.
    IF to_regrole('${LEGACY_ROLES.admin}') IS NOT NULL AND strpos((SELECT prosrc FROM pg_proc WHERE oid = '${PG_SCHEMA}.is_team_admin'::regproc), '''${LEGACY_ROLES.admin}''') > 0 THEN
      FOR m IN SELECT a.member::regrole::text AS member FROM pg_auth_members a WHERE a.roleid = to_regrole('${LEGACY_ROLES.admin}') AND left(a.member::regrole::text, 8) <> 'opsdeck_' LOOP
        EXECUTE format('GRANT %I TO %s', '${PG_ADMIN_ROLE}', m.member);
      END LOOP;
      DELETE FROM grants g WHERE g.role = '${LEGACY_ROLES.admin}' AND EXISTS (SELECT 1 FROM grants o WHERE o.role = '${PG_ADMIN_ROLE}' AND o.env = g.env);
      UPDATE grants SET role = '${PG_ADMIN_ROLE}' WHERE role = '${LEGACY_ROLES.admin}';
    END IF;
  END $$;
  -- What named the admin role: this inventory's own from now on.
  CREATE OR REPLACE FUNCTION is_team_admin() RETURNS BOOLEAN LANGUAGE sql STABLE ${DEFINER} AS $$
    SELECT session_user::text = (SELECT r.rolname::text FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = '${PG_SCHEMA}')
        OR pg_has_role(session_user, '${PG_ADMIN_ROLE}', 'MEMBER')
  $$;
${grantFunctionsSql('CREATE OR REPLACE', 'a team admin of this inventory')}`;

/** Run by every team init after the other grants. */
export const PG_TEAM_ROLES_GRANTS = `
  GRANT SELECT ON team_roles TO ${PG_USER_ROLE};
`;
