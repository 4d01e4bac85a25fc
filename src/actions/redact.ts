import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Instance } from '../../inventory/index.js';
import { UsageError } from '../core/errors.js';
import { engineFor } from '../databases/index.js';

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

/**
 * Refuses, before anything changes, redaction rules that could act outside the copy they redact, by
 * the rules of the target's engine (DbEngine.redactionProblem: on MariaDB no database-qualified table,
 * on both no statement on the server, its users, files or other databases). Clone and refresh ask
 * before each run, `instance set --redact` before it stores rules; the refusal names the rule's line
 * and the fix.
 */
export function checkRedactionScope(r: Redaction, target: Instance, instances: Instance[]): void {
  if (!target.dbUrl) return;
  // Rules stored by an earlier opsdeck were read by its rules: read again by today's.
  parseRedaction(r.statements.join('\n'), r.source);
  const engine = engineFor(target.dbUrl);
  // The inventory's other databases on the same kind of server, which a qualifier must never name.
  const databases = new Set(
    instances.flatMap((i) => {
      try {
        return i.dbUrl && engineFor(i.dbUrl) === engine ? [engine.parse(i.dbUrl).database] : [];
      } catch {
        return [];
      }
    }),
  );
  r.statements.forEach((stmt, n) => {
    const problem = engine.redactionProblem(stmt, databases);
    if (!problem) return;
    const where = r.lines?.[n] !== undefined ? `${r.source} line ${r.lines[n]}` : `${r.source}, rule ${n + 1}`;
    const shown = stmt.length > 80 ? `${stmt.slice(0, 77)}...` : stmt;
    throw new UsageError(`${where} (${shown}) ${problem.why}`, problem.fix);
  });
}
