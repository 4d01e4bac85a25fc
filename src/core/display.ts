/**
 * Strings from hosts and databases (file names, link targets, stderr, error messages, file contents)
 * made safe to print on a terminal. A file named `evil\e]0;TITLE\a.txt` would retitle the terminal, a
 * newline in a name would forge a line of the report, and a bidi override would show a name reversed:
 * C0 controls, DEL, C1 controls and the bidi formatting characters are shown as escapes instead.
 */
// C0 (but tab and newline, handled below), DEL, C1, and the Unicode bidi controls (LRM, RLM, ALM,
// LRE..RLO, LRI..PDI). Line and paragraph separators too: some terminals break lines on them.
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\x1b': '\\e', '\x07': '\\a', '\b': '\\b' };

function escapeChar(c: string): string {
  if (NAMED[c]) return NAMED[c];
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/** One field (a file name, a table name): every unsafe character escaped, newlines and tabs included. */
export function printable(s: string): string {
  return s.replace(UNSAFE, escapeChar);
}

/** Text of several lines (a diff, a command's stderr, a log message): lines and tabs kept, the rest escaped. */
export function printableText(s: string): string {
  return s.replace(UNSAFE, (c) => (c === '\n' || c === '\t' ? c : escapeChar(c)));
}
