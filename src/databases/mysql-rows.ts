/**
 * Rows per table of a mariadb-dump (10.11, extended inserts), counted as the dump streams by: each
 * table's CREATE TABLE names it (0 rows), then `INSERT INTO \`t\` VALUES` on a line of its own is
 * followed by one row a line, each starting with `(`, the last ending with `;`. A row's own newlines
 * are written escaped, so a line never starts inside a row. An INSERT with its rows on the same line
 * (--skip-extended-insert) counts as one row. Between `DELIMITER ;;` and `DELIMITER ;` (routine,
 * trigger and event bodies) nothing is a table's row.
 *
 * LoadRewriter is the same count on the way into a load, which also drops definers and has the
 * server add up the rows it took in per table (ROW_COUNT() after each INSERT), so the load is checked
 * without reading every table again.
 */
import type { DumpRowCounter } from './engine.js';
import { DUMP_DEFINER } from './mysql.js';

const NAME = '`((?:[^`]|``)+)`';
const CREATE_LINE = new RegExp(`^CREATE TABLE ${NAME} \\(`);
const INSERT_LINE = new RegExp(`^INSERT INTO ${NAME} VALUES ?(.?)`);
/** Enough of a line to read an INSERT's or a CREATE TABLE's name (names are at most 64 characters). */
const HEAD = 400;
const PAREN = 0x28; // (
const SEMI = 0x3b; // ;
const D = 0x44; // DELIMITER
const I = 0x49; // INSERT
const C = 0x43; // CREATE

/** Counts rows line by line; `line()` says when an INSERT statement of a table ended. */
export class InsertCounter implements DumpRowCounter {
  tables: Record<string, number> = {};
  private current: string | undefined;
  private delimiter = ';';
  /**
   * The line being read: its first byte (-1 before any), its last so far and, only for a line that
   * may name a table or a delimiter (INSERT, CREATE, DELIMITER), its start. A row's line (tens of
   * thousands a dump) is judged by its first and last byte alone: nothing is copied for it.
   */
  private first = -1;
  private last = -1;
  private head: Buffer | undefined;

  feed(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      this.take(chunk, start, end);
      if (nl === -1) return;
      this.endLine();
      start = nl + 1;
    }
  }

  /** Bytes [start, end) of the line being read (no newline among them). */
  protected take(chunk: Buffer, start: number, end: number): void {
    if (end <= start) return;
    if (this.first === -1) {
      this.first = chunk[start];
      if (this.first === I || this.first === C || this.first === D) this.head = Buffer.from(chunk.subarray(start, Math.min(end, start + HEAD)));
    } else if (this.head && this.head.length < HEAD) {
      this.head = Buffer.concat([this.head, chunk.subarray(start, Math.min(end, start + HEAD - this.head.length))]);
    }
    this.last = chunk[end - 1];
  }

  /** The line read ended; returns the table whose INSERT statement it ended, if one did. */
  protected endLine(): string | undefined {
    const { first, last, head } = this;
    this.first = -1;
    this.last = -1;
    this.head = undefined;
    if (first === -1) return undefined;
    if (this.current !== undefined) {
      const t = this.current;
      if (first === PAREN) {
        this.tables[t]++;
        if (last !== SEMI) return undefined;
        this.current = undefined;
        return t;
      }
      this.current = undefined;
    }
    if (first === D) {
      const d = /^DELIMITER (\S+)/.exec(head!.toString('utf8'));
      if (d) this.delimiter = d[1];
      return undefined;
    }
    if (this.delimiter !== ';') return undefined;
    if (first === I || first === C) {
      const text = head!.toString('utf8');
      const ins = INSERT_LINE.exec(text);
      if (ins) {
        const t = ins[1].replace(/``/g, '`');
        this.tables[t] ??= 0;
        if (ins[2] !== '(') {
          this.current = t;
          return undefined;
        }
        this.tables[t]++;
        return last === SEMI ? t : undefined;
      }
      const cr = CREATE_LINE.exec(text);
      if (cr) this.tables[cr[1].replace(/``/g, '`')] ??= 0;
    }
    return undefined;
  }
}

/** What a load's client prints per table once the dump is in: `opsdeck-rows INDEX N`. */
const ROWS_TAG = 'opsdeck-rows';
/** ...and per base table the scratch database holds: `opsdeck-table HEX(NAME)`. */
const TABLE_TAG = 'opsdeck-table';

/**
 * A dump on its way into a load: rows counted as InsertCounter does; definers dropped where
 * mariadb-dump writes them (at the start of a line of DDL: `/*!NNNNN ` or `CREATE `; a row's line,
 * starting with `(` or INSERT, is passed on as it comes, never held or decoded, however long);
 * after each INSERT statement, `SET @opsdeck_rN = ... + ROW_COUNT()` so the server adds up the rows
 * it took in. finish() asks for those sums and the scratch database's tables; loaded() reads them
 * from the client's output.
 */
export class LoadRewriter extends InsertCounter {
  private readonly ids = new Map<string, number>();
  /** Whether the line being read is held whole (it may be DDL), else passed on as it comes. */
  private hold: boolean | undefined;
  private held: Buffer[] = [];

  /**
   * What goes on for `chunk`: its bytes as they are, in as few pieces as the held lines and the
   * added SETs cut them into (a chunk of rows goes on as one piece, not a piece a line).
   */
  override feed(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    // Where the bytes passed on as they are begin that are not in `out` yet.
    let run = 0;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      if (end > start) {
        // 0x2f '/', 0x43 'C': the lines a definer can start; the rest pass straight on.
        this.hold ??= chunk[start] === 0x2f || chunk[start] === C;
        if (this.hold) {
          if (run < start) out.push(chunk.subarray(run, start));
          this.held.push(chunk.subarray(start, end));
          run = end;
        }
      }
      this.take(chunk, start, end);
      if (nl === -1) break;
      if (this.hold) {
        out.push(this.heldLine(), NL);
        run = nl + 1;
      }
      this.hold = undefined;
      const ended = this.endLine();
      if (ended !== undefined) {
        if (run < nl + 1) out.push(chunk.subarray(run, nl + 1));
        out.push(this.sumOf(ended));
        run = nl + 1;
      }
      start = nl + 1;
    }
    if (run < chunk.length) out.push(chunk.subarray(run));
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** The held line, its definers dropped. */
  private heldLine(): Buffer {
    const line = Buffer.concat(this.held).toString('utf8');
    this.held = [];
    return Buffer.from(line.replace(DUMP_DEFINER, '$1'), 'utf8');
  }

  /** After an INSERT statement of `table`: the server adds what it took in to that table's sum. */
  private sumOf(table: string): Buffer {
    const v = this.varOf(table);
    return Buffer.from(`SET ${v} = IFNULL(${v}, 0) + ROW_COUNT();\n`);
  }

  private varOf(table: string): string {
    let id = this.ids.get(table);
    if (id === undefined) this.ids.set(table, (id = this.ids.size));
    return `@opsdeck_r${id}`;
  }

  /**
   * Whatever is held of an unfinished last line, then (the dump whole) the queries whose answers
   * loaded() reads: the server's sums, and the base tables the load made.
   */
  finish(): Buffer {
    const out: Buffer[] = [];
    if (this.hold) {
      out.push(this.heldLine(), NL);
      this.hold = undefined;
      const ended = this.endLine();
      if (ended !== undefined) out.push(this.sumOf(ended));
    }
    const names = Object.keys(this.tables);
    const sums = names.map((t) => `SELECT '${ROWS_TAG}', ${this.ids.get(t) ?? -1}, ${this.ids.has(t) ? `IFNULL(${this.varOf(t)}, 0)` : 0}`);
    const tables = `SELECT '${TABLE_TAG}', HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'`;
    out.push(Buffer.from(`\n${sums.length ? sums.join(' UNION ALL ') + ';\n' : ''}${tables};\n`));
    return Buffer.concat(out);
  }

  /**
   * Rows per table as the server took them in, from the client's output: every base table the load
   * made, with the sum of its INSERTs' ROW_COUNT() (a table the dump never named: NaN, never equal).
   */
  loaded(stdout: string): Map<string, number> {
    const byId = new Map<number, number>();
    const made: string[] = [];
    for (const line of stdout.split('\n')) {
      const [tag, a, b] = line.split('\t');
      if (tag === ROWS_TAG) byId.set(Number(a), Number(b));
      else if (tag === TABLE_TAG) made.push(Buffer.from(a, 'hex').toString('utf8'));
    }
    const out = new Map<string, number>();
    for (const t of made) {
      if (!(t in this.tables)) out.set(t, NaN);
      else out.set(t, this.ids.has(t) ? (byId.get(this.ids.get(t)!) ?? NaN) : 0);
    }
    return out;
  }
}

const NL = Buffer.from('\n');
