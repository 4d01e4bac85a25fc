import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TarScanner } from '../../src/actions/meter.js';
import { CopyCounter } from '../../src/databases/postgres-rows.js';
import { PAGILA } from '../../fixtures/lab.js';

/** Feeds a buffer in chunks of varying, awkward sizes, as a network would deliver it. */
function feedChunked(buf: Buffer, feed: (b: Buffer) => void) {
  const sizes = [1, 511, 512, 513, 7, 4096, 100_000];
  let off = 0;
  for (let i = 0; off < buf.length; i++) {
    const n = sizes[i % sizes.length];
    feed(buf.subarray(off, off + n));
    off += n;
  }
}

describe('TarScanner', () => {
  it('counts what GNU tar put in the archive, long names included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tarscan-'));
    const long = 'd'.repeat(120);
    mkdirSync(join(dir, 'a', long), { recursive: true });
    for (let i = 0; i < 30; i++) writeFileSync(join(dir, 'a', `f${i}.txt`), 'x'.repeat(i * 97));
    writeFileSync(join(dir, 'a', long, 'f'.repeat(150)), 'deep');
    writeFileSync(join(dir, 'empty'), '');
    symlinkSync('a/f1.txt', join(dir, 'link'));
    for (const format of ['gnu', 'pax', 'ustar']) {
      if (format === 'ustar') continue; // names over 100 characters do not fit plain ustar
      const tar = execFileSync('tar', ['--format', format, '-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 26 });
      const s = new TarScanner();
      feedChunked(tar, (b) => s.feed(b));
      expect({ files: s.files, dirs: s.dirs, symlinks: s.symlinks, unsafe: s.unsafe }).toEqual({ files: 32, dirs: 3, symlinks: 1, unsafe: undefined });
    }
  });

  it('flags an entry that would land outside the target', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tarscan-'));
    mkdirSync(join(dir, 'in'));
    writeFileSync(join(dir, 'evil.txt'), 'x');
    // -P keeps the ../ that tar would otherwise strip: an archive made by someone hostile.
    const tar = execFileSync('tar', ['-C', join(dir, 'in'), '-P', '-cf', '-', '../evil.txt']);
    const s = new TarScanner();
    feedChunked(tar, (b) => s.feed(b));
    expect(s.unsafe).toBe('../evil.txt');
  });
});

describe('CopyCounter', () => {
  it('counts the rows of each COPY block of a pg_dump', () => {
    const sql = [
      'SET x = 1;',
      'COPY public.actor (actor_id, name) FROM stdin;',
      '1\tA',
      '2\tB with \\n escaped newline',
      '\\.',
      '',
      'COPY "weird schema"."Table" (x) FROM stdin;',
      '\\.',
      'COPY public.big (x) FROM stdin;',
      ...Array.from({ length: 5000 }, (_, i) => String(i)),
      '\\.',
      'SELECT 1;',
      '',
    ].join('\n');
    const c = new CopyCounter();
    feedChunked(Buffer.from(sql), (b) => c.feed(b));
    expect(c.tables).toEqual({ 'public.actor': 2, '"weird schema"."Table"': 0, 'public.big': 5000 });
  });

  it('agrees with the pagila data file', () => {
    const file = join(PAGILA, 'pagila-data.sql');
    const c = new CopyCounter();
    feedChunked(readFileSync(file), (b) => c.feed(b));
    expect(c.tables['public.actor']).toBe(200);
    expect(c.tables['public.rental']).toBe(16044);
    expect(c.tables['public.film']).toBe(1000);
  });
});
