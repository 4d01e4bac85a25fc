/**
 * Rows per table of a mariadb-dump (10.11, extended inserts), counted as the dump streams by: each
 * table's CREATE TABLE names it (0 rows), then `INSERT INTO \`t\` VALUES` on a line of its own is
 * followed by one row a line, each starting with `(`, the last ending with `;`. A row's own newlines
 * are written escaped, so a line never starts inside a row. An INSERT with its rows on the same line
 * (--skip-extended-insert) counts as one row.
 */
import type { DumpRowCounter } from './engine.js';

const NAME = '`((?:[^`]|``)+)`';
const CREATE_LINE = new RegExp(`^CREATE TABLE ${NAME} \\(`);
const INSERT_LINE = new RegExp(`^INSERT INTO ${NAME} VALUES ?(.?)`);
/** Enough of a line to read an INSERT's or a CREATE TABLE's name (names are at most 64 characters). */
const HEAD = 400;

export class InsertCounter implements DumpRowCounter {
  tables: Record<string, number> = {};
  private current: string | undefined;
  /** The start of the line being read, and its last byte so far. */
  private head = Buffer.alloc(0);
  private last = -1;

  feed(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      if (end > start) {
        if (this.head.length < HEAD) this.head = Buffer.concat([this.head, chunk.subarray(start, Math.min(end, start + HEAD))]);
        this.last = chunk[end - 1];
      }
      if (nl === -1) return;
      this.line();
      start = nl + 1;
    }
  }

  private line(): void {
    const head = this.head;
    const last = this.last;
    this.head = Buffer.alloc(0);
    this.last = -1;
    if (!head.length) return;
    if (this.current !== undefined) {
      if (head[0] === 0x28 /* ( */) {
        this.tables[this.current]++;
        if (last === 0x3b /* ; */) this.current = undefined;
        return;
      }
      this.current = undefined;
    }
    if (head[0] === 0x49 /* I */ || head[0] === 0x43 /* C */) {
      const text = head.toString('utf8');
      const ins = INSERT_LINE.exec(text);
      if (ins) {
        const t = ins[1].replace(/``/g, '`');
        this.tables[t] ??= 0;
        if (ins[2] === '(') this.tables[t]++;
        else this.current = t;
        return;
      }
      const cr = CREATE_LINE.exec(text);
      if (cr) this.tables[cr[1].replace(/``/g, '`')] ??= 0;
    }
  }
}
