/**
 * The one quoting function: turns an argv array into the command line the login shell on the host
 * runs as exactly those words. Every remote command goes through here; nothing joins strings.
 * The line reads the same to a POSIX shell (sh, bash, dash, zsh, ksh) and to fish, whose single
 * quotes differ in one way: there `\\` and `\'` are escapes (an argument ending in `\` broke out of
 * its quote). So no quoted run holds a `\` or a `'`: both stand outside the quotes, escaped, which
 * every one of those shells reads alike. host add and host check test the login shell with such a line.
 */
export function quoteArg(arg: string): string {
  if (typeof arg !== 'string') throw new TypeError(`argv entries must be strings, got ${typeof arg}`);
  if (arg.includes('\0')) throw new Error('an argument holds a NUL byte, which no command can receive');
  // Words made only of safe characters read the same unquoted (not with a leading = or %, which zsh
  // and fish expand: =ls to a command's path, %self to a pid); everything else is single-quoted,
  // where the shell interprets nothing but the closing quote.
  if (/^[A-Za-z0-9_\/.,:@+-][A-Za-z0-9_\/.,:=@%+-]*$/.test(arg)) return arg;
  return "'" + arg.replace(/['\\]/g, (c) => `'\\${c}'`) + "'";
}

export function toCommandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('empty argv');
  return argv.map(quoteArg).join(' ');
}

/**
 * Wraps argv so that the first line of stdin becomes the environment variable `name` of the command
 * and the rest of stdin is the command's own. Secrets travel this way because argv is visible in `ps`
 * and sshd forwards no environment but LANG/LC_*.
 */
export function withSecretFromStdin(name: string, argv: readonly string[]): string[] {
  if (!/^[A-Z_][A-Z0-9_]*$/.test(name)) throw new Error(`bad environment variable name ${name}`);
  return ['sh', '-c', `IFS= read -r ${name} || exit 97; export ${name}; exec "$@"`, 'sh', ...argv];
}
