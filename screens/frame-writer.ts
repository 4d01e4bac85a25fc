/** What Ink writes before a frame as tall as the terminal (ansi-escapes' clearTerminal): erase, erase scrollback, home. */
const CLEAR = '\x1b[2J\x1b[3J\x1b[H';
/** Synchronized output's begin and end, which Ink writes around a frame: they change nothing on screen. */
const SYNC = new Set(['\x1b[?2026h', '\x1b[?2026l']);
/** At least one whole frame this often: it repairs what something else wrote on the terminal. */
const WHOLE_EVERY_MS = 1000;

/** Line `n` (from 0) erased and, when given, written. */
const line = (n: number, text = '') => `\x1b[${n + 1};1H\x1b[2K${text}`;

/**
 * The console's stdout for Ink: a frame as tall as the terminal, which Ink writes whole after
 * clearing the screen (its incrementalRendering applies only to shorter frames), goes out as the
 * lines that changed since the last one (a key that moves the selection changes a few of 50). The
 * screen ends up with the same characters; the last line is always written, last, so the cursor is
 * where Ink left it. Anything else written (console output Ink passes through, a resize) makes the
 * next frame whole, and so does a second without one.
 */
export function lineDiffStdout(out: NodeJS.WriteStream): NodeJS.WriteStream {
  let last: string[] | undefined;
  let wholeAt = 0;
  out.on('resize', () => (last = undefined));
  const write = (chunk: unknown, ...rest: unknown[]): boolean => {
    const text = typeof chunk === 'string' ? chunk : undefined;
    if (text?.startsWith(CLEAR)) {
      const lines = text.slice(CLEAR.length).split('\n');
      const prev = last;
      last = lines;
      const now = performance.now();
      if (prev && now - wholeAt < WHOLE_EVERY_MS) {
        let diff = '';
        for (let n = lines.length; n < prev.length; n++) diff += line(n);
        const end = lines.length - 1;
        for (let n = 0; n < end; n++) if (lines[n] !== prev[n]) diff += line(n, lines[n]);
        return out.write(diff + line(end, lines[end]), ...(rest as []));
      }
      wholeAt = now;
    } else if (!(text !== undefined && SYNC.has(text))) last = undefined;
    return out.write(chunk as string, ...(rest as []));
  };
  return new Proxy(out, {
    get(target, key) {
      if (key === 'write') return write;
      const v: unknown = Reflect.get(target, key, target);
      // Its own methods on the real stream (an EventEmitter's listeners live there).
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
