import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Instance } from '../../inventory/index.js';
import { UsageError } from '../core/errors.js';
import { parseDbUrl } from '../databases/index.js';

/**
 * Redaction rules for a clone (clone --redact FILE, an instance's stored rules for refresh): run on
 * the copy inside its load, before it replaces anything on the target (PostgreSQL: in the load's one
 * transaction; MariaDB: in the scratch database before the swap). The file holds, line by line:
 *
 *   customer.email = 'user' || customer_id || '@example.invalid'    -- a rule: table.column = SQL expression
 *   UPDATE staff SET password = NULL;                               -- or SQL statements ending with ;
 *
 * Comments (-- or #) and blank lines are skipped. What would leave the load's transaction or the
 * database (BEGIN, COMMIT, ROLLBACK, USE, client commands such as \! or system) is refused, so a
 * redaction can never commit the unredacted copy early or act elsewhere.
 */
export interface Redaction {
  /** Where the rules came from, for the run log and audit ("redact.sql", or "the rules of shop-uat"). */
  source: string;
  /** One SQL statement each, ending with ';'. */
  statements: string[];
  /** The line each statement starts on in the file (rules read from a file; stored ones may lack them). */
  lines?: number[];
}

const IDENT = '[A-Za-z_][A-Za-z0-9_$]*';
const RULE = new RegExp(`^\\s*(${IDENT}(?:\\.${IDENT})?)\\.(${IDENT})\\s*=(?!=)(.*)$`);
/** Statements (first word) that would end the load's transaction, switch database or run client commands. */
const REFUSED = new Set([
  'begin',
  'start',
  'commit',
  'end',
  'rollback',
  'abort',
  'savepoint',
  'release',
  'prepare',
  'use',
  'connect',
  'delimiter',
  'source',
  'system',
  'exit',
  'quit',
  'go',
  'ego',
  'pager',
  'tee',
  'notee',
  'nopager',
  'charset',
  'rehash',
  'status',
  'prompt',
  'edit',
  'print',
  'clear',
  'warnings',
  'nowarning',
  'help',
  'resetconnection',
]);

/**
 * Scans SQL text outside quotes and comments; calls `at` with each character that is code.
 *
 * The rules go to the database's own client (psql, mariadb), which splits them into statements and
 * runs client commands itself, and the two read some text differently: `#` is a comment to MariaDB
 * and an operator to PostgreSQL, `--1` a comment to PostgreSQL only, `$$` a quote to PostgreSQL only,
 * a backslash an escape in MariaDB's strings only (and, outside them, a client command such as \!
 * that runs a shell). Where this scanner and a client could disagree on where a statement ends, a rule
 * could hide a second one from the checks, so `ambiguous` is called for each such spelling and the
 * caller refuses it: what is left means the same to both.
 */
class Scanner {
  private mode: 'code' | "'" | '"' | '`' | 'line' | 'block' = 'code';

  /** Where the last line fed starts its -- comment, or -1. */
  commentAt = -1;

  constructor(private readonly ambiguous: (what: string) => never) {}

  get open(): boolean {
    return this.mode === "'" || this.mode === '"' || this.mode === '`' || this.mode === 'block';
  }

  /** Feeds one line (without its newline); returns the offsets of code characters. */
  line(text: string, at: (i: number, c: string) => void): void {
    if (this.mode === 'line') this.mode = 'code';
    this.commentAt = -1;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === '\\') this.ambiguous('a backslash (a client command such as \\! or \\c outside quotes, an escape inside MariaDB strings only)');
      switch (this.mode) {
        case 'code':
          if (c === "'" || c === '"' || c === '`') this.mode = c;
          else if (c === '-' && text[i + 1] === '-') {
            if (i + 2 < text.length && !/\s/.test(text[i + 2])) this.ambiguous('-- without a space after it (a comment to PostgreSQL, a minus sign to MariaDB)');
            this.mode = 'line';
            this.commentAt = i;
          } else if (c === '#') this.ambiguous('# inside a statement (a comment to MariaDB, an operator to PostgreSQL)');
          else if (c === '/' && text[i + 1] === '*') {
            this.mode = 'block';
            i++;
          } else if (c === '$' && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(text.slice(i))) this.ambiguous('a $$ quote (a string to PostgreSQL, not to MariaDB)');
          else at(i, c);
          break;
        case "'":
        case '"':
        case '`':
          // A doubled quote stays inside (backslashes are refused above).
          if (c === this.mode) {
            if (text[i + 1] === c) i++;
            else this.mode = 'code';
          }
          break;
        case 'block':
          if (c === '*' && text[i + 1] === '/') {
            this.mode = 'code';
            i++;
          }
          break;
        case 'line':
          return;
      }
    }
    if (this.mode === 'line') this.mode = 'code';
  }
}

const refuse = (file: string, line: number, why: string, fix: string) => new UsageError(`${file} line ${line}: ${why}`, fix);

/** The first word of a statement, past comments and blanks. */
function firstWord(stmt: string): string {
  const s = stmt
    .replace(/^(\s|--[^\n]*\n|#[^\n]*\n|\/\*[\s\S]*?\*\/)+/, '')
    .trim()
    .toLowerCase();
  return /^[a-z_]+/.exec(s)?.[0] ?? s.slice(0, 1);
}

/** Parses and checks redaction rules; a mistake is refused naming its line and the fix, before anything runs. */
export function parseRedaction(text: string, file: string): Redaction {
  const statements: string[] = [];
  const starts: number[] = [];
  let n = 0;
  const ambiguous = (what: string): never => {
    throw refuse(
      file,
      n,
      `${what} is not allowed in redaction rules`,
      'write plain SQL: comments with "-- " on lines of their own or after a statement, no backslashes (CHR(92) or CHAR(92) for one), no $$ quotes',
    );
  };
  const scan = new Scanner(ambiguous);
  let buf: string[] = [];
  let startLine = 0;
  const lines = text.split(/\r?\n/);
  const close = (stmt: string, line: number) => {
    const word = firstWord(stmt);
    if (REFUSED.has(word)) {
      throw refuse(
        file,
        line,
        `${word.toUpperCase()} is not allowed in redaction rules: they run inside the copy's load, before it commits, and must not end it or act elsewhere`,
        'keep to statements on the copied data (UPDATE, DELETE, INSERT, TRUNCATE, ...) and table.column = expression rules',
      );
    }
    statements.push(stmt.trim());
    starts.push(line);
  };
  lines.forEach((raw, idx) => {
    n = idx + 1;
    if (!buf.length && !scan.open) {
      if (!raw.trim() || /^\s*(--|#)/.test(raw)) return;
      const rule = RULE.exec(raw);
      if (rule) {
        const [, table, column, rest] = rule;
        let expr = '';
        const ruleScan = new Scanner(ambiguous);
        let semicolonAt = -1;
        ruleScan.line(rest, (i, c) => {
          if (c === ';' && semicolonAt < 0) semicolonAt = i;
        });
        if (ruleScan.open) throw refuse(file, n, `the expression for ${table}.${column} leaves a quote or comment open`, 'close it on the same line: a rule is one line');
        // The expression ends at its ; or its comment, whichever comes first (a -- inside quotes is text).
        const end = ruleScan.commentAt >= 0 ? ruleScan.commentAt : rest.length;
        expr = rest.slice(0, semicolonAt >= 0 ? Math.min(semicolonAt, end) : end).trim();
        if (semicolonAt >= 0 && rest.slice(semicolonAt + 1, end).trim()) {
          throw refuse(file, n, 'a rule is one expression: there is more after its ;', `write one rule a line: ${table}.${column} = EXPRESSION`);
        }
        if (!expr) throw refuse(file, n, `the rule for ${table}.${column} has no expression after =`, `write it as ${table}.${column} = EXPRESSION (e.g. NULL, or 'x' || id)`);
        statements.push(`UPDATE ${table} SET ${column} = ${expr};`);
        starts.push(n);
        return;
      }
      startLine = n;
    }
    let from = 0;
    // Whether the line holds code after its last ; (a trailing comment starts no statement).
    let code = scan.open;
    scan.line(raw, (i, c) => {
      if (c === ';') {
        buf.push(raw.slice(from, i + 1));
        close(buf.join('\n'), startLine);
        buf = [];
        from = i + 1;
        startLine = n;
        code = false;
      } else if (!/\s/.test(c)) code = true;
    });
    if (code || scan.open || buf.length) buf.push(raw.slice(from));
  });
  const pending = buf
    .join('\n')
    .replace(/(--|#)[^\n]*/g, '')
    .trim();
  if (scan.open) throw refuse(file, startLine, 'a quote, comment or $$ body opened in the statement starting here is never closed', 'close it');
  if (pending) throw refuse(file, startLine, 'the statement starting here does not end with ;', 'end each SQL statement with ; (a rule, table.column = expression, needs none)');
  if (!statements.length) throw new UsageError(`${file} holds no redaction rules`, "write one rule a line, e.g. customer.email = 'user' || customer_id || '@example.invalid'");
  return { source: file, statements, lines: starts };
}

/** Reads and checks a redaction file (clone --redact, instance set --redact). */
export function readRedaction(path: string): Redaction {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read redaction file ${path}: ${(err as Error).message}`, 'give the path of a file of rules (table.column = expression, or SQL statements ending with ;)');
  }
  return parseRedaction(text, path);
}

/** A short digest of the statements, for the audit trail and four-eyes approvals. */
export function redactionDigest(r: Redaction): string {
  return createHash('sha256').update(r.statements.join('\n')).digest('hex').slice(0, 16);
}

// ---- what a rule may reach: the copy, nothing else

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

interface Token {
  t: 'ident' | 'dot' | 'other';
  text: string;
}

/**
 * The statement's tokens outside strings and comments: identifiers (bare or `quoted`), dots, the
 * rest. A MariaDB executable comment (/*! ... * /) is code the server runs: refused by the caller.
 */
function tokens(stmt: string): { list: Token[]; executableComment: boolean } {
  const list: Token[] = [];
  let executableComment = false;
  for (let i = 0; i < stmt.length;) {
    const c = stmt[i];
    if (/\s/.test(c)) i++;
    else if (c === "'" || c === '"') {
      // A string (MariaDB's "..." too): doubled quotes and backslashes stay inside.
      for (i++; i < stmt.length; i++) {
        if (stmt[i] === '\\') i++;
        else if (stmt[i] === c) {
          if (stmt[i + 1] === c) i++;
          else break;
        }
      }
      i++;
      list.push({ t: 'other', text: 'string' });
    } else if (c === '`') {
      let name = '';
      for (i++; i < stmt.length; i++) {
        if (stmt[i] === '`') {
          if (stmt[i + 1] === '`') {
            name += '`';
            i++;
          } else break;
        } else name += stmt[i];
      }
      i++;
      list.push({ t: 'ident', text: name });
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
    } else if (/[A-Za-z0-9_$]/.test(c)) {
      const m = /^[A-Za-z0-9_$]+/.exec(stmt.slice(i))![0];
      i += m.length;
      // A number (1, 2.5) is no name.
      list.push({ t: /^\d+$/.test(m) ? 'other' : 'ident', text: m });
    } else {
      list.push({ t: 'other', text: c });
      i++;
    }
  }
  return { list, executableComment };
}

/**
 * The names a statement qualifies: each chain a.b[.c...] as its parts; and the names it uses alone
 * (tables and aliases it declares, columns).
 */
function qualified(list: Token[]): { chains: string[][]; alone: Set<string> } {
  const chains: string[][] = [];
  const alone = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    if (list[i].t !== 'ident') continue;
    const chain = [list[i].text];
    while (list[i + 1]?.t === 'dot' && list[i + 2]?.t === 'ident') {
      chain.push(list[i + 2].text);
      i += 2;
    }
    if (chain.length > 1) chains.push(chain);
    else alone.add(chain[0].toLowerCase());
  }
  return { chains, alone };
}

/**
 * Refuses, before anything changes, redaction rules that could act outside the copy they redact.
 *
 * MariaDB/MySQL runs the rules in the scratch database the copy loaded into, and there a name
 * qualified by a database (db.table.column, db.table, a rule like mysql.user.password = ...) reaches
 * that database instead: the live target before its swap, the server's own mysql schema, another
 * instance's database. So a qualifier must be a table or alias the statement itself names, and never
 * the name of a database (the server's own, or one of the inventory's instances).
 *
 * PostgreSQL runs them in the load's transaction on the target database, and a name there cannot
 * leave it (schema.table is in this database; another database's name is refused by the server). What
 * could reach out is refused on both: \connect and other client commands (parseRedaction), statements
 * on roles, databases, the server or files (GRANT, CREATE DATABASE, ALTER SYSTEM, COPY, SET ROLE),
 * dblink and file functions, DO blocks (their SQL is a string nothing can check). SET search_path is
 * let be: it changes which schema of this database the later rules' unqualified names mean, inside the
 * load's transaction and session, which end with the load.
 */
export function checkRedactionScope(r: Redaction, target: Instance, instances: Instance[]): void {
  if (!target.dbUrl) return;
  // Rules stored by an earlier opsdeck were read by its rules: read again by today's.
  parseRedaction(r.statements.join('\n'), r.source);
  const kind = parseDbUrl(target.dbUrl).kind;
  const databases = new Set([
    ...SYSTEM_DATABASES,
    ...instances.flatMap((i) => {
      try {
        const t = i.dbUrl ? parseDbUrl(i.dbUrl) : undefined;
        return t && t.kind === kind ? [t.database.toLowerCase()] : [];
      } catch {
        return [];
      }
    }),
  ]);
  r.statements.forEach((stmt, n) => {
    const where = r.lines?.[n] !== undefined ? `${r.source} line ${r.lines[n]}` : `${r.source}, rule ${n + 1}`;
    const shown = stmt.length > 80 ? `${stmt.slice(0, 77)}...` : stmt;
    const refuse = (why: string, fix: string) => {
      throw new UsageError(`${where} (${shown}) ${why}`, fix);
    };
    const { list, executableComment } = tokens(stmt);
    const words = list
      .filter((t) => t.t === 'ident')
      .slice(0, 3)
      .map((t) => t.text)
      .join(' ');
    if (OUTSIDE.any.test(words) || (kind === 'postgres' && OUTSIDE.postgres.test(words)) || (kind === 'mysql' && OUTSIDE.mysql.test(words)))
      refuse(
        'acts outside the copied data (on the server, its users and rights, files or other databases), which redaction rules must not',
        'keep to statements on the copied tables: UPDATE, DELETE, INSERT, TRUNCATE, and table.column = expression rules',
      );
    if (/\binto\s+(outfile|dumpfile)\b/i.test(list.map((t) => t.text).join(' '))) refuse('writes a file on the database server', 'keep to statements on the copied tables');
    const call = OUTSIDE_CALLS.exec(stmt);
    if (call) refuse(`calls ${call[1]}, which reaches outside the copied data`, 'keep to statements on the copied tables');
    if (kind === 'mysql' && executableComment) refuse('holds a MariaDB executable comment (/*! ... */), which the server runs as code', 'write it as plain SQL, or drop the comment');
    if (words && !ALLOWED_START.test(words))
      refuse(
        `starts with ${words.split(' ')[0].toUpperCase()}, and redaction rules may only change the copied rows`,
        'keep to UPDATE, DELETE, INSERT, TRUNCATE (or WITH ... UPDATE) statements and table.column = expression rules',
      );
    if (kind !== 'mysql') return;
    const { chains, alone } = qualified(list);
    for (const chain of chains) {
      const [q] = chain;
      const name = chain.join('.');
      const fix = `name the copy's tables without a database: the rules run in the copy (e.g. ${chain.slice(-2).join('.')} = ... as a rule, or UPDATE ${chain.length > 2 ? chain[chain.length - 2] : chain[1]} ... as a statement)`;
      if (chain.length > 2) refuse(`names ${name}: ${q} is a database, and on MariaDB that reaches database ${q} instead of the copy being redacted`, fix);
      if (databases.has(q.toLowerCase())) refuse(`names ${name}: ${q} is a database on this server, and on MariaDB that reaches it instead of the copy being redacted`, fix);
      if (!alone.has(q.toLowerCase()))
        refuse(
          `names ${name}, and ${q} is no table or alias the statement names: on MariaDB it would be read as a database, outside the copy being redacted`,
          `${fix}; or name ${q} in the statement (UPDATE ${q} ... or an alias)`,
        );
    }
  });
}
