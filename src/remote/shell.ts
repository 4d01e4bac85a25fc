import type { Readable, Writable } from 'node:stream';

export interface ExecOptions {
  /** Data for the command's stdin; with none, stdin is closed at once. */
  stdin?: Readable | string | Buffer;
  /** A secret written as the first line of stdin, before `stdin` (see withSecretFromStdin). */
  secretLine?: string;
  /** Where stdout goes; without it, stdout is collected (up to maxBuffer) into the result. */
  stdout?: Writable;
  /** Called with each chunk of stderr, for log lines. */
  onStderr?: (chunk: string) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
  maxBuffer?: number;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  /** The tail of stderr (up to 64 KiB), for error messages. */
  stderr: string;
}

/** A place commands run: a host over SSH or this machine. Commands are argv arrays, never strings. */
export interface Shell {
  readonly label: string;
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
}

export class CommandError extends Error {
  constructor(readonly label: string, readonly argv: readonly string[], readonly result: ExecResult) {
    const tail = result.stderr.trim().split('\n').slice(-3).join(' | ');
    const how = result.code !== null ? `exit status ${result.code}` : `signal ${result.signal ?? 'unknown'}`;
    super(`${argv[0] === 'sh' ? argv[4] ?? argv[0] : argv[0]} on ${label} failed (${how})${tail ? ': ' + tail : ''}`);
    this.name = 'CommandError';
  }
}

/** Runs argv and throws CommandError unless it exits 0. */
export async function run(shell: Shell, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const res = await shell.exec(argv, opts);
  if (res.code !== 0) throw new CommandError(shell.label, argv, res);
  return res;
}

/** Keeps the last `limit` characters of a growing text. */
export class Tail {
  private text = '';
  constructor(private readonly limit = 65536) {}
  push(s: string): void {
    this.text += s;
    if (this.text.length > this.limit * 2) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text.slice(-this.limit);
  }
}
