import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { lineDiffStdout } from '../../screens/frame-writer.js';

const CLEAR = '\x1b[2J\x1b[3J\x1b[H';

/**
 * A terminal of `rows` lines that understands what Ink and the frame writer send: clear and home,
 * cursor to a line's start, erase the line, newline, text (colours dropped). What it shows is what
 * a user would see.
 */
class Screen extends EventEmitter {
  lines: string[];
  written = '';
  isTTY = true;
  columns = 40;
  private y = 0;
  constructor(readonly rows: number) {
    super();
    this.lines = Array<string>(rows).fill('');
  }
  write(chunk: string): boolean {
    this.written += chunk;
    // Escape sequences and text, in order.
    for (const [, seq, text] of chunk.matchAll(/(\x1b\[[0-9;?]*[A-Za-z])|([^\x1b]+)/g)) {
      if (text !== undefined) {
        const [first, ...more] = text.split('\n');
        this.lines[this.y] += first;
        for (const l of more) {
          // A newline on the last line scrolls, as a terminal does.
          if (this.y === this.rows - 1) this.lines.push(this.lines.shift()!);
          else this.y++;
          this.lines[this.y] = l;
        }
      } else if (seq === '\x1b[2J') this.lines.fill('');
      else if (seq === '\x1b[H') this.y = 0;
      else if (seq.endsWith('H')) this.y = Number(seq.slice(2).split(';')[0]) - 1;
      else if (seq === '\x1b[2K') this.lines[this.y] = '';
    }
    return true;
  }
}

/** A frame as tall as the screen, as Ink writes it: after a clear, one string, its lines coloured. */
const frame = (lines: string[]) => CLEAR + lines.map((l, i) => (i % 3 ? l : `\x1b[36m${l}\x1b[39m`)).join('\n');

describe('the console writes only the lines a frame changed', () => {
  it('shows each frame whole on the screen while writing a fraction of it', () => {
    const screen = new Screen(6);
    const out = lineDiffStdout(screen as unknown as NodeJS.WriteStream);
    const first = ['opsdeck  10000 instances', '──────', 'app1-dev   up', 'app2-dev   up', 'app3-dev   up', 'j down q quit'];
    out.write(frame(first));
    expect(screen.lines).toEqual(first);

    // A key moves the selection: two lines change, and only those (and the last, where the cursor ends) go out.
    const second = [...first];
    second[2] = 'app1-dev   up  ';
    second[3] = 'app2-dev   DOWN';
    screen.written = '';
    out.write('\x1b[?2026h');
    out.write(frame(second));
    out.write('\x1b[?2026l');
    expect(screen.lines).toEqual(second);
    expect(screen.written).not.toContain('opsdeck');
    expect(screen.written).not.toContain('app3-dev');
    expect(screen.written).toContain('app2-dev   DOWN');

    // A shorter line leaves nothing of the longer one behind.
    const third = [...second];
    third[0] = 'opsdeck';
    out.write(frame(third));
    expect(screen.lines).toEqual(third);
  });

  it('writes the next frame whole after anything else was written, or the terminal was resized', () => {
    const screen = new Screen(3);
    const out = lineDiffStdout(screen as unknown as NodeJS.WriteStream);
    out.write(frame(['a', 'b', 'c']));
    // Console output Ink passes through lands on the screen: the next frame must repaint every line.
    out.write('stray output\n');
    screen.written = '';
    out.write(frame(['a', 'b', 'c']));
    expect(screen.lines).toEqual(['a', 'b', 'c']);
    expect(screen.written.startsWith(CLEAR)).toBe(true);

    screen.written = '';
    screen.emit('resize');
    out.write(frame(['a', 'b', 'c']));
    expect(screen.written.startsWith(CLEAR)).toBe(true);
  });
});
