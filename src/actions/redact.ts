import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { UsageError } from '../core/errors.js';

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

/** Scans SQL text outside quotes and comments; calls `at` with each character that is code. */
class Scanner {
  private mode: 'code' | "'" | '"' | '`' | 'line' | 'block' | 'dollar' = 'code';
  private tag = '';

  get open(): boolean {
    return this.mode === "'" || this.mode === '"' || this.mode === '`' || this.mode === 'block' || this.mode === 'dollar';
  }

  /** Feeds one line (without its newline); returns the offsets of code characters. */
  line(text: string, at: (i: number, c: string) => void): void {
    if (this.mode === 'line') this.mode = 'code';
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      switch (this.mode) {
        case 'code':
          if (c === "'" || c === '"' || c === '`') this.mode = c;
          else if (c === '-' && text[i + 1] === '-') this.mode = 'line';
          else if (c === '#') this.mode = 'line';
          else if (c === '/' && text[i + 1] === '*') {
            this.mode = 'block';
            i++;
          } else if (c === '$') {
            const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i));
            if (m) {
              this.mode = 'dollar';
              this.tag = m[0];
              i += m[0].length - 1;
            } else at(i, c);
          } else at(i, c);
          break;
        case "'":
        case '"':
        case '`':
          // A doubled quote stays inside; a backslash escapes the next character (MariaDB's strings).
          if (c === '\\') i++;
          else if (c === this.mode) {
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
        case 'dollar':
          if (text.startsWith(this.tag, i)) {
            i += this.tag.length - 1;
            this.mode = 'code';
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
  const scan = new Scanner();
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
  };
  lines.forEach((raw, idx) => {
    const n = idx + 1;
    if (!buf.length && !scan.open) {
      if (!raw.trim() || /^\s*(--|#)/.test(raw)) return;
      const rule = RULE.exec(raw);
      if (rule) {
        const [, table, column, rest] = rule;
        let expr = '';
        const ruleScan = new Scanner();
        let semicolonAt = -1;
        ruleScan.line(rest, (i, c) => {
          if (c === ';' && semicolonAt < 0) semicolonAt = i;
          if (c === '\\') throw refuse(file, n, 'a backslash outside quotes (a client command) is not allowed', 'write the expression in plain SQL');
        });
        if (ruleScan.open) throw refuse(file, n, `the expression for ${table}.${column} leaves a quote or comment open`, 'close it on the same line: a rule is one line');
        expr = (semicolonAt >= 0 ? rest.slice(0, semicolonAt) : rest).replace(/\s*(--|#).*$/, '').trim();
        if (
          semicolonAt >= 0 &&
          rest
            .slice(semicolonAt + 1)
            .replace(/(--|#).*$/, '')
            .trim()
        ) {
          throw refuse(file, n, 'a rule is one expression: there is more after its ;', `write one rule a line: ${table}.${column} = EXPRESSION`);
        }
        if (!expr) throw refuse(file, n, `the rule for ${table}.${column} has no expression after =`, `write it as ${table}.${column} = EXPRESSION (e.g. NULL, or 'x' || id)`);
        statements.push(`UPDATE ${table} SET ${column} = ${expr};`);
        return;
      }
      startLine = n;
    }
    let from = 0;
    // Whether the line holds code after its last ; (a trailing comment starts no statement).
    let code = scan.open;
    scan.line(raw, (i, c) => {
      if (c === '\\') throw refuse(file, n, 'a backslash outside quotes (a client command such as \\! or \\c) is not allowed', 'write plain SQL statements');
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
  return { source: file, statements };
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
