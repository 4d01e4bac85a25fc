/**
 * What an sql: metric may be: one SELECT (or WITH/VALUES/TABLE) statement that calls no function
 * able to change anything outside its read-only transaction. The same check runs when the metric
 * is set (instance set, inventory import) and before each probe runs it, so what `set` accepts the
 * probe runs, and what the probe would refuse `set` refuses first.
 *
 * A READ ONLY transaction stops writes to tables and sequences but not these (checked on
 * PostgreSQL 15): signalling other sessions (pg_terminate_backend killed the app's sessions),
 * session settings (set_config), session advisory locks (outlive the rollback), large objects,
 * dblink (a second connection that is not read-only), server files, WAL and replication functions,
 * stats resets, and functions that run SQL text given as a string (query_to_xml). COPY ... TO
 * PROGRAM is a statement (refused here) and, for a superuser, runs even in READ ONLY: the probe
 * refuses sql: metrics for superuser roles altogether.
 */

/** Refused by exact name. */
const REFUSED = new Set([
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_signal_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_log_backend_memory_contexts',
  'set_config',
  'pg_notify',
  'loread',
  'lowrite',
  'pg_read_file',
  'pg_read_binary_file',
  'pg_stat_file',
  'pg_switch_wal',
  'pg_promote',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_drop_replication_slot',
  'pg_import_system_collations',
  'pg_wal_replay_pause',
  'pg_wal_replay_resume',
  'pg_sleep',
  'pg_sleep_for',
  'pg_sleep_until',
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
]);
/** Refused by prefix: families of functions. */
const REFUSED_PREFIX = ['lo_', 'dblink', 'pg_advisory', 'pg_try_advisory', 'pg_ls_', 'pg_file_', 'pg_logical_', 'pg_replication_', 'pg_create_', 'pg_copy_', 'pg_stat_reset'];
/** What a metric may start with: statements that read. */
const READING = new Set(['select', 'with', 'values', 'table']);

export const METRIC_SQL_RULES =
  'one SELECT (or WITH, VALUES, TABLE) statement, with no ; inside, no transaction control, and none of the functions that act outside the query (pg_terminate_backend, set_config, pg_advisory_lock, lo_*, dblink*, pg_read_file...)';

interface Token {
  kind: 'word' | 'quoted' | 'semicolon' | 'other';
  text: string;
}

/** The statement's words, quoted identifiers and semicolons, skipping strings and comments. */
function tokens(sql: string): Token[] | string {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && next === '-') {
      const e = sql.indexOf('\n', i);
      i = e < 0 ? n : e + 1;
    } else if (c === '/' && next === '*') {
      // Comments nest in PostgreSQL.
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      if (depth > 0) return 'an unterminated /* comment';
    } else if (c === "'" || ((c === 'e' || c === 'E') && next === "'")) {
      // A string; E'...' strings also take backslash escapes.
      const backslash = c !== "'";
      i += backslash ? 2 : 1;
      for (;;) {
        if (i >= n) return 'an unterminated string';
        if (backslash && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i++;
      }
      i++;
      out.push({ kind: 'other', text: 'string' });
    } else if ((c === 'u' || c === 'U') && next === '&') {
      // U&"..." spells a name in escapes, which a list of names cannot see through.
      return 'a U& escaped name or string (write names and strings plainly)';
    } else if (c === '"') {
      let j = i + 1;
      let name = '';
      for (;;) {
        if (j >= n) return 'an unterminated quoted name';
        if (sql[j] === '"' && sql[j + 1] === '"') {
          name += '"';
          j += 2;
        } else if (sql[j] === '"') break;
        else name += sql[j++];
      }
      out.push({ kind: 'quoted', text: name });
      i = j + 1;
    } else if (c === '$' && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(sql.slice(i))) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))![0];
      const e = sql.indexOf(tag, i + tag.length);
      if (e < 0) return 'an unterminated $$ string';
      i = e + tag.length;
      out.push({ kind: 'other', text: 'string' });
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j])) j++;
      out.push({ kind: 'word', text: sql.slice(i, j).toLowerCase() });
      i = j;
    } else if (c === ';') {
      out.push({ kind: 'semicolon', text: ';' });
      i++;
    } else {
      out.push({ kind: 'other', text: c });
      i++;
    }
  }
  return out;
}

const refusedName = (name: string) => REFUSED.has(name) || REFUSED_PREFIX.some((p) => name.startsWith(p));

/** Why this sql: metric is refused, or null when it may run. */
export function metricSqlProblem(sql: string): string | null {
  const t = tokens(sql);
  if (typeof t === 'string') return `it holds ${t}`;
  // One trailing semicolon is harmless: drop it.
  while (t.length && t[t.length - 1].kind === 'semicolon') t.pop();
  if (!t.length) return 'it is empty';
  if (t.some((x) => x.kind === 'semicolon')) return 'it holds more than one statement (a ; inside)';
  const first = t.find((x) => x.text !== '(');
  if (!first || first.kind !== 'word' || !READING.has(first.text)) {
    return `it starts with ${first ? JSON.stringify(first.text.toUpperCase()) : 'nothing'}: only a SELECT, WITH, VALUES or TABLE query may run (no transaction control, no SET, no COPY)`;
  }
  for (const x of t) {
    if ((x.kind === 'word' || x.kind === 'quoted') && refusedName(x.text)) return `it calls ${x.text}(), which acts outside a read-only query`;
  }
  return null;
}
