/** Rows per table of a plain pg_dump, counted from its COPY blocks as the dump streams by. */
import type { DumpRowCounter } from './engine.js';

// COPY [schema.]table (cols) FROM stdin; with identifiers either bare or "double ""quoted"" with spaces".
const IDENT = '(?:"(?:[^"]|"")+"|[^\\s."]+)';
const COPY_LINE = new RegExp(`^COPY (${IDENT}(?:\\.${IDENT})?) .*FROM stdin;$`);

/** Counts the rows of each COPY block of a plain pg_dump as it streams by. */
export class CopyCounter implements DumpRowCounter {
  tables: Record<string, number> = {};
  private current: string | undefined;
  private carry: Buffer | undefined;

  feed(chunk: Buffer): void {
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = undefined;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl === -1) break;
      this.line(buf, start, nl);
      start = nl + 1;
    }
    if (start < buf.length) this.carry = Buffer.from(buf.subarray(start));
  }

  private line(buf: Buffer, s: number, e: number): void {
    if (this.current !== undefined) {
      if (e - s === 2 && buf[s] === 0x5c && buf[s + 1] === 0x2e)
        this.current = undefined; // "\."
      else this.tables[this.current]++;
      return;
    }
    // COPY public.actor (actor_id, ...) FROM stdin;
    if (buf[s] === 0x43 && buf.toString('latin1', s, s + 5) === 'COPY ') {
      const text = buf.toString('utf8', s, e);
      const m = COPY_LINE.exec(text);
      if (m) {
        this.current = m[1];
        this.tables[m[1]] = 0;
      }
    }
  }
}
