/**
 * The MariaDB/MySQL client as opsdeck runs it on a host: the instance URL, the client's and the
 * dump's argv, quoting, and sessions (one statement, or a conversation in turns on one login).
 * The swap-in load built on them is mysql.ts.
 *
 * Passwords reach the client through an option file read from a pipe (/dev/fd/3, a here-document)
 * built on the host from the first line of stdin: never argv, never a file on disk; stdin stays
 * free for a dump.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { withSecretFromStdin } from '../remote/quote.js';
import { CommandError, run, type ExecResult, type Shell } from '../remote/shell.js';
import { OpsError, UsageError } from '../core/errors.js';
import { splitDbUrl, validHost } from './url.js';

export interface MysqlTarget {
  kind: 'mysql';
  user: string;
  host: string;
  port: number;
  database: string;
}

// Names opsdeck builds SQL from: plain identifiers, so the swap databases' grant pattern holds.
const DB_NAME = /^[A-Za-z0-9_$]{1,40}$/;
const USER_NAME = /^[A-Za-z0-9_.$-]{1,80}$/;

/** Parses mysql://USER@HOST:PORT/DB (or mariadb://); a password or parameters in it are refused. */
export function parseMysqlUrl(url: string): MysqlTarget {
  const p = splitDbUrl(url, {
    schemes: ['mysql', 'mariadb'],
    form: 'mysql://USER@HOST:PORT/DBNAME',
    schemeHint: 'write it as mysql://USER@HOST:PORT/DBNAME or mariadb://...',
    paramsHint: 'drop them and write mysql://USER@HOST:PORT/DB; settings belong to the account or the server',
  });
  const { user, database, host } = p;
  if (!USER_NAME.test(user)) throw new UsageError(`invalid database user ${JSON.stringify(user)} in ${url}`, 'give the account as mysql://USER@HOST/DB');
  if (!DB_NAME.test(database))
    throw new UsageError(
      `invalid database name ${JSON.stringify(database)} in ${url}`,
      'give the database name as mysql://USER@HOST/DB: letters, digits, _ and $, at most 40 characters (a restore makes DB_opsdeck_RUN_new beside it, which must fit in 64)',
    );
  if (!validHost(p)) throw new UsageError(`invalid database host ${JSON.stringify(host)}`, 'give a host name, an IPv4 address, or an IPv6 address in brackets: mysql://USER@[::1]:3306/DB');
  const port = p.port ?? 3306;
  return { kind: 'mysql', user, host, port, database };
}

export function formatMysqlUrl(t: MysqlTarget): string {
  return `mysql://${encodeURIComponent(t.user)}@${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}/${encodeURIComponent(t.database)}`;
}

/**
 * Runs "$@" with the option file `[client] password=...` on fd 3, from the variable withSecretFromStdin
 * set. Option files read `#` outside quotes as a comment and `\` as an escape: the value is quoted
 * with `"` (or `'` when it holds `#` and `"`), backslashes doubled (by sed, started only for a
 * password that has one: a process fewer for every session otherwise); a password holding `#`, `"`
 * and `'` at once cannot be written there and is refused.
 */
const WITH_OPTION_FILE = `p=$OPSDECK_DB_PASSWORD; unset OPSDECK_DB_PASSWORD
q='"'
case $p in *'#'*) case $p in *'"'*) case $p in *"'"*) echo "opsdeck: a password holding #, \\" and ' at once cannot be given to the MariaDB client; change it" >&2; exit 96;; esac; q="'";; esac;; esac
case $p in *'\\'*) p=$(printf '%s\\n' "$p" | sed 's/\\\\/\\\\\\\\/g');; esac
c=$1; shift
exec "$c" --defaults-extra-file=/dev/fd/3 "$@" 3<<OPSDECK_EOF
[client]
password=$q$p$q
OPSDECK_EOF
`;

function withPassword(argv: string[]): string[] {
  return withSecretFromStdin('OPSDECK_DB_PASSWORD', ['sh', '-c', WITH_OPTION_FILE, 'sh', ...argv]);
}

function connArgs(t: MysqlTarget): string[] {
  // --protocol=tcp: "localhost" would otherwise mean the server's socket, not the port in the URL.
  return ['--host', t.host, '--port', String(t.port), '--user', t.user, '--protocol=tcp'];
}

/** The client on `db`, reading SQL from stdin after the password line; rows tab-separated, raw. */
export function clientArgv(t: MysqlTarget, db: string | undefined, extra: string[] = []): string[] {
  return withPassword(['mariadb', ...connArgs(t), '--batch', '--skip-column-names', '--default-character-set=utf8mb4', ...extra, ...(db ? [db] : [])]);
}

/**
 * The whole database as SQL on stdout: one consistent snapshot of InnoDB tables (--single-transaction),
 * routines, triggers and events, binary values in hex (text-safe, exact). No CREATE DATABASE or USE
 * (one database named, without --databases), no tablespaces (that needs PROCESS), no dump date (two
 * dumps of the same data are the same bytes, which the store deduplicates).
 */
export function dumpArgv(t: MysqlTarget): string[] {
  return withPassword([
    'mariadb-dump',
    ...connArgs(t),
    '--single-transaction',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    '--no-tablespaces',
    '--skip-dump-date',
    '--default-character-set=utf8mb4',
    t.database,
  ]);
}

/** The schema only, for compare: definers and AUTO_INCREMENT counters are taken out by normalizeSchema. */
export function schemaDumpArgv(t: MysqlTarget): string[] {
  return withPassword(['mariadb-dump', ...connArgs(t), '--no-data', '--routines', '--triggers', '--events', '--no-tablespaces', '--skip-dump-date', '--skip-comments', t.database]);
}

export const DEFINER_RE = /DEFINER=(?:`(?:[^`]|``)*`(?:@`(?:[^`]|``)*`)?|CURRENT_USER(?:\(\))?)\s?/g;

/** What differs between two dumps of the same schema on two instances: definers, AUTO_INCREMENT counters. */
export function normalizeSchema(dump: string): string {
  return dump.replace(DEFINER_RE, '').replace(/ AUTO_INCREMENT=\d+/g, '');
}

/**
 * Where mariadb-dump writes a definer: at the start of a line of DDL (views, triggers, routines,
 * events). A load drops them there (LoadRewriter), never in a row: a row's line starts with `(` or
 * INSERT, its newlines escaped, whatever its text holds.
 */
export const DUMP_DEFINER = /^((?:\/\*!\d+ CREATE\*\/ )?\/\*!\d+ |CREATE )DEFINER=(?:`(?:[^`]|``)*`(?:@`(?:[^`]|``)*`)?|CURRENT_USER) ?/gm;

/** A name quoted for MariaDB SQL. */
export function quoteName(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/** An SQL string literal (backslashes are escapes in MariaDB's default sql_mode). */
export function quoteString(s: string): string {
  return "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "''") + "'";
}

/** The two databases a swap-in load makes beside `t.database` for run `runId`. */
export interface MysqlSession {
  shell: Shell;
  t: MysqlTarget;
  password: string;
}

/** Runs SQL (stdin) on `db`; rows as tab-separated lines. */
export async function sql(s: MysqlSession, query: string, db?: string, signal?: AbortSignal): Promise<string> {
  return (await run(s.shell, clientArgv(s.t, db), { secretLine: s.password, stdin: query, signal })).stdout;
}

/** The most a session may print before a turn takes it (a load prints a line per table). */
const MAX_PRINTED = 16 * 1024 * 1024;

/**
 * One client session on the host, fed in turns: ask() writes SQL and a mark, and resolves with the
 * lines printed before the mark came back (--unbuffered: the client prints each answer at once, not
 * at its exit). A turn costs a round trip on the open connection instead of a login over SSH (an SSH
 * channel, a shell, the client's start and its authentication). Rows print tab-separated, with tab,
 * newline, NUL and backslash escaped (unescapeField), so a line is always one row.
 */
export class MysqlConversation {
  /** The session's stdin: a caller may pipe into it before its turns (a load does), never ending it. */
  readonly input = new PassThrough();
  readonly ended: Promise<ExecResult>;
  private lines: string[] = [];
  private printed = 0;
  private partial = '';
  private readonly decoder = new StringDecoder('utf8');
  private over_ = false;
  private wake?: () => void;
  private turns = 0;
  private readonly nonce = randomBytes(8).toString('hex');
  private readonly cancel = new AbortController();
  private shielded = false;

  /**
   * `idle`: the session may wait long for its first turn (a swap's, while its load runs): the server
   * keeps it however long that takes, instead of closing it after wait_timeout (8 hours by default).
   */
  constructor(
    private readonly s: MysqlSession,
    db?: string,
    signal?: AbortSignal,
    opts: { idle?: boolean } = {},
  ) {
    const onAbort = () => {
      if (!this.shielded) this.cancel.abort();
    };
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.take(this.decoder.write(chunk));
        done(this.printed > MAX_PRINTED ? new OpsError(`the MariaDB client printed more than ${MAX_PRINTED} bytes on ${s.shell.label}`) : null);
      },
      final: (done) => {
        const rest = this.decoder.end();
        if (this.partial || rest) this.take(rest + '\n');
        done();
      },
    });
    // A stdin write after the client exited (it stops at a failed statement) is judged by its exit status.
    this.input.on('error', () => {});
    this.ended = s.shell.exec(clientArgv(s.t, db, ['--unbuffered']), { stdin: this.input, stdout: sink, secretLine: s.password, signal: this.cancel.signal });
    const settle = () => {
      signal?.removeEventListener('abort', onAbort);
      this.over_ = true;
      this.wake?.();
    };
    this.ended.then(settle, settle);
    if (opts.idle) this.input.write('SET SESSION wait_timeout = 31536000;\n');
  }

  /** Whether the session has ended (its client exited, or the connection was lost). */
  get over(): boolean {
    return this.over_;
  }

  private take(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop()!;
    for (const line of parts) {
      this.lines.push(line);
      this.printed += line.length + 1;
    }
    this.wake?.();
  }

  /** The lines printed before `mark` (taken, with it); undefined when the session ended without printing it. */
  async until(mark: string): Promise<string[] | undefined> {
    for (;;) {
      const at = this.lines.indexOf(mark);
      if (at >= 0) {
        const got = this.lines.slice(0, at);
        this.lines = this.lines.slice(at + 1);
        this.printed = this.lines.reduce((n, l) => n + l.length + 1, 0);
        return got;
      }
      if (this.over_) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  /** Runs `query` (statements ended by `;`) and resolves with the lines it printed; rejects when the session ended first. */
  async ask(query: string): Promise<string[]> {
    const mark = `opsdeck-turn ${++this.turns} ${this.nonce}`;
    this.input.write(`${query}\nSELECT ${quoteString(mark)};\n`);
    const got = await this.until(mark);
    if (got === undefined) throw await this.failure();
    return got;
  }

  /** Why the session ended: its error, or its exit status and last words. */
  async failure(): Promise<Error> {
    const res = await this.ended.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    return res instanceof Error ? res : new CommandError(this.s.shell.label, ['mariadb'], res);
  }

  /** From here on a cancel no longer stops the session: what it runs next must run to its end. */
  shield(): void {
    this.shielded = true;
  }

  /** Writes the last statements, ends the input and resolves with how the session ended. */
  end(query = ''): Promise<ExecResult> {
    if (!this.input.writableEnded) this.input.end(query);
    return this.ended;
  }
}

/** A field of the client's tab-separated output, its escapes undone. */
export function unescapeField(field: string): string {
  return field.replace(/\\(.)/gs, (_m, c: string) => ({ n: '\n', t: '\t', '0': '\0', '\\': '\\' })[c] ?? c);
}
