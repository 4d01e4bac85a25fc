/**
 * What a redaction rule may reach, by engine: the copy it redacts and nothing else. The engines'
 * redactionProblem() (postgres-engine.ts, mysql-engine.ts) are these functions; clone and refresh
 * ask before a run starts, `instance set --redact` before it stores rules. The rules' text was
 * already read by src/actions/redact.ts (statements split, client commands and spellings the two
 * clients read differently refused), so what reaches here is one statement of plain SQL.
 */
import type { RedactionProblem } from './engine.js';

/** Databases every MariaDB/MySQL server has. */
const SYSTEM_DATABASES = ['mysql', 'information_schema', 'performance_schema', 'sys'];

/** Statements (first words) that act outside the copied data: the server's users and rights, files, other databases. */
const OUTSIDE: Record<'mysql' | 'postgres' | 'any', RegExp> = {
  any: /^(grant|revoke|copy|call|execute|load|handler|lock|unlock|flush|kill|shutdown|install|uninstall|checkpoint|listen|notify|(create|drop|alter)\s+(database|schema|user|role|server|tablespace|extension|subscription|publication)\b|alter\s+system\b|set\s+(global|persist|password|role|default\s+role|session\s+authorization|@@global)\b|rename\s+user\b)/i,
  // A DO block or dynamic SQL says in a string what it runs: nothing here could check it.
  postgres: /^do\b/i,
  mysql: /^rename\b/i,
};

/**
 * Function calls that reach outside the copied data: another database's connection, the server's
 * files and processes, settings of the session (set_config('role', ...)), SQL given as a string
 * (query_to_xml runs it). Matched on the statement's whole text, quoted names too ("pg_read_file"(...)):
 * a string that merely mentions one is refused as well, which costs a rewording at worst.
 */
const OUTSIDE_CALLS =
  /["`]?\b(dblink\w*|lo_\w+|pg_file_\w+|pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|pg_logdir_ls|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|pg_promote|set_config|query_to_xml\w*|cursor_to_xml\w*|load_file|sys_exec|sys_eval)["`]?\s*\(/i;

/**
 * What a redaction statement may begin with: changes to the copied rows, and the session settings a
 * load may need. Anything else (CREATE FUNCTION or TRIGGER, whose body is SQL in a string; SELECT of a
 * function with side effects; EVENT, PREPARE, ...) is refused rather than judged.
 */
const ALLOWED_START = /^(update|delete|insert|replace|truncate|with)\b|^set\s+((local|session)\s+)?(search_path|foreign_key_checks|unique_checks)\b/i;

/** The one assignment a SET rule may be, as its tokens read (joined by spaces): a check or a schema list. */
const ONE_SETTING =
  /^set ((local|session) )?((foreign_key_checks|unique_checks) = (0|1|on|off|default|true|false)|search_path (=|to) [A-Za-z0-9_$\u0080-\uffff]+( , [A-Za-z0-9_$\u0080-\uffff]+)*)( ;)?$/i;

interface Token {
  t: 'ident' | 'dot' | 'other';
  text: string;
  /** A name in quotes (`x` or "x"): never a keyword. */
  quoted?: boolean;
}

/**
 * The statement's tokens outside strings and comments: identifiers (bare, `quoted` or "quoted":
 * a name to PostgreSQL, and to MariaDB under sql_mode ANSI_QUOTES, which a server may have), dots,
 * the rest. A MariaDB executable comment (/*! ... * /) is code the server runs: refused by the caller.
 */
function tokens(stmt: string): { list: Token[]; executableComment: boolean } {
  const list: Token[] = [];
  let executableComment = false;
  for (let i = 0; i < stmt.length;) {
    const c = stmt[i];
    if (/\s/.test(c)) i++;
    else if (c === "'") {
      // A string: doubled quotes stay inside (backslashes were refused when the rules were read).
      for (i++; i < stmt.length; i++) {
        if (stmt[i] === '\\') i++;
        else if (stmt[i] === c) {
          if (stmt[i + 1] === c) i++;
          else break;
        }
      }
      i++;
      list.push({ t: 'other', text: 'string' });
    } else if (c === '`' || c === '"') {
      let name = '';
      for (i++; i < stmt.length; i++) {
        if (stmt[i] === c) {
          if (stmt[i + 1] === c) {
            name += c;
            i++;
          } else break;
        } else name += stmt[i];
      }
      i++;
      list.push({ t: 'ident', text: name, quoted: true });
    } else if ((c === '-' && stmt[i + 1] === '-') || c === '#') {
      while (i < stmt.length && stmt[i] !== '\n') i++;
    } else if (c === '/' && stmt[i + 1] === '*') {
      if (/^\/\*M?!/.test(stmt.slice(i, i + 4))) executableComment = true;
      const end = stmt.indexOf('*/', i + 2);
      i = end < 0 ? stmt.length : end + 2;
    } else if (c === '$' && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(stmt.slice(i))) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(stmt.slice(i))![0];
      const end = stmt.indexOf(tag, i + tag.length);
      i = end < 0 ? stmt.length : end + tag.length;
      list.push({ t: 'other', text: 'string' });
    } else if (c === '.') {
      list.push({ t: 'dot', text: '.' });
      i++;
    } else if (/[A-Za-z0-9_$\u0080-\uffff]/.test(c)) {
      // MariaDB takes letters beyond ASCII in bare names (ötherapp.users): part of the name here too.
      const m = /^[A-Za-z0-9_$\u0080-\uffff]+/.exec(stmt.slice(i))![0];
      i += m.length;
      // A number (1, 2.5) is no name.
      list.push({ t: /^\d+$/.test(m) ? 'other' : 'ident', text: m });
    } else {
      list.push({ t: 'other', text: c });
      i++;
    }
  }
  // Digits next to a dot are a name, not a number, when the other side is a name (db.123, 123.users):
  // MariaDB reads them so. 1.5 stays a number.
  list.forEach((tok, n) => {
    if (tok.t !== 'other' || !/^\d+$/.test(tok.text)) return;
    const nameAfter = list[n + 1]?.t === 'dot' && list[n + 2]?.t === 'ident';
    const nameBefore = list[n - 1]?.t === 'dot' && list[n - 2]?.t === 'ident';
    if (nameAfter || nameBefore) tok.t = 'ident';
  });
  return { list, executableComment };
}

/** The checks both engines make: statements and calls that act outside the copied rows. */
function commonProblem(stmt: string, list: Token[], outside: RegExp, executableComment: boolean): RedactionProblem | null {
  const words = list
    .filter((t) => t.t === 'ident')
    .slice(0, 3)
    .map((t) => t.text)
    .join(' ');
  const copiedOnly = 'keep to statements on the copied tables: UPDATE, DELETE, INSERT, TRUNCATE, and table.column = expression rules';
  if (OUTSIDE.any.test(words) || outside.test(words))
    return { why: 'acts outside the copied data (on the server, its users and rights, files or other databases), which redaction rules must not', fix: copiedOnly };
  if (/\binto\s+(outfile|dumpfile)\b/i.test(list.map((t) => t.text).join(' '))) return { why: 'writes a file on the database server', fix: 'keep to statements on the copied tables' };
  // A comment between a function's name and its "(" is still a call (dblink_exec/**/(...)): the text
  // is read again without comments (and as it is: a string holding "/*" must not hide one either).
  const call = OUTSIDE_CALLS.exec(stmt) ?? OUTSIDE_CALLS.exec(stmt.replace(/\/\*[\s\S]*?\*\/|--[^\n]*/g, ' '));
  if (call) return { why: `calls ${call[1]}, which reaches outside the copied data`, fix: 'keep to statements on the copied tables' };
  if (executableComment) return { why: 'holds a MariaDB executable comment (/*! ... */), which the server runs as code', fix: 'write it as plain SQL, or drop the comment' };
  // A SET sets the one setting it names and nothing else: MariaDB takes a list (SET foreign_key_checks=0,
  // GLOBAL general_log=1), so the whole statement must be that one assignment.
  if (/^set\b/i.test(words) && !ONE_SETTING.test(list.map((t) => t.text).join(' ')))
    return {
      why: 'sets something other than one allowed setting (foreign_key_checks or unique_checks to 0/1, or search_path), which redaction rules must not',
      fix: 'one SET per setting, each on its own',
    };
  if (words && !ALLOWED_START.test(words))
    return {
      why: `starts with ${words.split(' ')[0].toUpperCase()}, and redaction rules may only change the copied rows`,
      fix: 'keep to UPDATE, DELETE, INSERT, TRUNCATE (or WITH ... UPDATE) statements and table.column = expression rules',
    };
  return null;
}

/**
 * PostgreSQL runs the rules in the load's transaction on the target database, and a name there cannot
 * leave it (schema.table is in this database; another database's name is refused by the server). What
 * could reach out is refused: statements on roles, databases, the server or files (GRANT, CREATE
 * DATABASE, ALTER SYSTEM, COPY, SET ROLE), dblink and file functions, DO blocks (their SQL is a string
 * nothing can check). SET search_path is let be: it changes which schema of this database the later
 * rules' unqualified names mean, inside the load's transaction and session, which end with the load.
 */
export function postgresRedactionProblem(stmt: string): RedactionProblem | null {
  // PostgreSQL reads /*! as a comment: nothing runs, nothing to refuse.
  return commonProblem(stmt, tokens(stmt).list, OUTSIDE.postgres, false);
}

/** A name chain a.b[.c...] and where it stands. */
interface Chain {
  parts: string[];
  /** Where MariaDB reads a table's name (UPDATE x, FROM x, JOIN x, INTO x, ...): a qualifier there is a database. */
  table: boolean;
  /** Followed by "(": a function of database a. */
  call: boolean;
}

/** Words that may stand where a table's name is awaited without being one (DELETE FROM, INSERT IGNORE INTO, ...). */
const NOT_A_TABLE = new Set([
  'from',
  'ignore',
  'low_priority',
  'high_priority',
  'delayed',
  'quick',
  'into',
  'table',
  'select',
  'with',
  'recursive',
  'values',
  'value',
  'set',
  'where',
  'using',
  'join',
  'straight_join',
  'update',
  'delete',
  'insert',
  'replace',
  'for',
  'lateral',
  'natural',
  'left',
  'right',
  'inner',
  'cross',
  'outer',
  'on',
  'order',
  'group',
  'having',
  'limit',
  'union',
  'all',
  'distinct',
]);

/**
 * Reserved words after which a list of tables has ended (UPDATE a, b SET x = 1, y = 2: the commas
 * after SET part assignments). Only reserved ones: a word a table's alias may be would let an alias
 * end the list early, and a table named after it be read as a column.
 */
const ENDS_TABLES = new Set(['set', 'where', 'order', 'group', 'having', 'limit', 'select', 'values', 'union']);

/** Words before "(" that open a subquery or a list, not a function's arguments. */
const NOT_A_FUNCTION = new Set([
  'in',
  'exists',
  'any',
  'some',
  'all',
  'as',
  'from',
  'join',
  'straight_join',
  'using',
  'update',
  'into',
  'values',
  'value',
  'on',
  'where',
  'and',
  'or',
  'not',
  'select',
  'table',
  'lateral',
  'union',
  'set',
  'having',
]);

/**
 * Every name chain of a MariaDB statement, and whether it stands where a table's name goes. Table
 * positions: after UPDATE (not ON DUPLICATE KEY UPDATE), DELETE (its list of tables), FROM and USING
 * (of a SELECT or DELETE, not TRIM(x FROM y)), JOIN, INTO, TABLE, INSERT/REPLACE/TRUNCATE (the
 * statements, not the functions), NEXT VALUE FOR and NEXTVAL/LASTVAL/SETVAL(...); each comma of a
 * list of tables; inside "(" where a table goes (a parenthesized join). Each "(" is a level of its own.
 * Where it cannot tell, it takes a position for a table's: a refusal of a harmless alias.column is a
 * rewording, a table missed would reach another database.
 */
function chains(list: Token[]): { chains: Chain[]; alone: Set<string> } {
  interface Level {
    /** Inside a list of tables: a comma starts another. */
    tables: boolean;
    /** The next name is a table's. */
    expect: boolean;
    /** A SELECT or DELETE at this level: its FROM and USING are followed by tables. */
    select: boolean;
    /** A function's arguments (TRIM(x FROM y)): FROM here is no table's. */
    fn: boolean;
  }
  const out: Chain[] = [];
  const alone = new Set<string>();
  const stack: Level[] = [{ tables: false, expect: false, select: false, fn: false }];
  const kw = (t: Token | undefined) => (t && t.t === 'ident' && !t.quoted ? t.text.toLowerCase() : undefined);
  for (let i = 0; i < list.length; i++) {
    const top = stack[stack.length - 1];
    const tok = list[i];
    if (tok.t === 'ident') {
      const parts = [tok.text];
      let j = i;
      while (list[j + 1]?.t === 'dot' && list[j + 2]?.t === 'ident') {
        parts.push(list[j + 2].text);
        j += 2;
      }
      const call = list[j + 1]?.text === '(';
      const word = parts.length === 1 ? kw(tok) : undefined;
      const prev = kw(list[i - 1]);
      if (top.expect && !(word && NOT_A_TABLE.has(word))) {
        if (parts.length > 1) out.push({ parts, table: true, call });
        alone.add(parts[parts.length - 1].toLowerCase());
        top.expect = false;
        i = j;
        continue;
      }
      i = j;
      if (parts.length > 1) {
        out.push({ parts, table: false, call });
        continue;
      }
      alone.add(tok.text.toLowerCase());
      if (!word) continue;
      if (word === 'update') {
        if (prev === 'key' || prev === 'for') Object.assign(top, { tables: false, expect: false });
        else Object.assign(top, { tables: true, expect: true });
      } else if (word === 'delete') Object.assign(top, { tables: true, expect: true, select: true });
      else if (word === 'from' || word === 'using') {
        if (top.select || !top.fn) Object.assign(top, { tables: true, expect: true });
      } else if (word === 'join' || word === 'straight_join') Object.assign(top, { tables: true, expect: true });
      else if (word === 'into' || word === 'table' || word === 'for') top.expect = true;
      else if ((word === 'insert' || word === 'replace' || word === 'truncate') && !call) top.expect = true;
      else if (ENDS_TABLES.has(word)) Object.assign(top, { tables: false, expect: false, select: word === 'select' || top.select });
    } else if (tok.text === '(') {
      const before = kw(list[i - 1]);
      const next = kw(list[i + 1]);
      const level: Level = { tables: false, expect: false, select: false, fn: list[i - 1]?.t === 'ident' && !(before && NOT_A_FUNCTION.has(before)) };
      if (top.expect) {
        // The parenthesis stands for a table: a subquery, or tables joined inside it.
        top.expect = false;
        if (!(next && ['select', 'with', 'values', 'table'].includes(next))) Object.assign(level, { tables: true, expect: true, fn: false });
      }
      if (before === 'nextval' || before === 'lastval' || before === 'setval') level.expect = true;
      stack.push(level);
    } else if (tok.text === ')') {
      if (stack.length > 1) stack.pop();
    } else if (tok.text === ',') {
      if (top.tables) top.expect = true;
    }
  }
  return { chains: out, alone };
}

/**
 * MariaDB/MySQL runs the rules in the scratch database the copy loaded into, its default database,
 * and there a name qualified by a database reaches that database instead: the live target before its
 * swap, the server's own mysql schema, another application's database the account may write. So no
 * table's name may be qualified (a rule never needs it), whatever aliases the statement declares
 * (UPDATE otherapp.users u, staff otherapp is database otherapp's users, not alias otherapp's); a
 * function may not be (otherapp.f()); a column's qualifier must be a table or alias the statement
 * names and never a database's name (the server's own, or one of the inventory's instances).
 */
export function mysqlRedactionProblem(stmt: string, databases: ReadonlySet<string>): RedactionProblem | null {
  const { list, executableComment } = tokens(stmt);
  const common = commonProblem(stmt, list, OUTSIDE.mysql, executableComment);
  if (common) return common;
  const known = new Set([...SYSTEM_DATABASES, ...[...databases].map((d) => d.toLowerCase())]);
  const found = chains(list);
  for (const { parts, table, call } of found.chains) {
    const [q] = parts;
    const name = parts.join('.');
    const last = parts[parts.length - 1];
    const fix = `name the copy's tables without a database: the rules run in the copy (e.g. ${parts.slice(-2).join('.')} = ... as a rule, or UPDATE ${parts.length > 2 ? parts[parts.length - 2] : parts[1]} ... as a statement)`;
    if (known.has(q.toLowerCase())) return { why: `names ${name}: ${q} is a database on this server, and on MariaDB that reaches it instead of the copy being redacted`, fix };
    if (table)
      return {
        why: `names table ${name}: a table's name qualified by a database reaches database ${q} on MariaDB, not the copy being redacted (an alias named ${q} does not change that)`,
        fix: `write ${last} alone: the rules run with the copy as the default database`,
      };
    if (call)
      return { why: `calls ${name}: that is function ${last} of database ${q}, outside the copy being redacted`, fix: `call functions without a database (${last}(...)), or write the expression out` };
    if (parts.length > 2) return { why: `names ${name}: ${q} is a database, and on MariaDB that reaches database ${q} instead of the copy being redacted`, fix };
    if (!found.alone.has(q.toLowerCase()))
      return {
        why: `names ${name}, and ${q} is no table or alias the statement names: on MariaDB it would be read as a database, outside the copy being redacted`,
        fix: `${fix}; or name ${q} in the statement (UPDATE ${q} ... or an alias)`,
      };
  }
  return null;
}
