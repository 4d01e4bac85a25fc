import { OpsError } from '../core/errors.js';
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
  constructor(
    readonly label: string,
    readonly argv: readonly string[],
    readonly result: ExecResult,
  ) {
    const tail = result.stderr.trim().split('\n').slice(-3).join(' | ');
    const how = result.code !== null ? `exit status ${result.code}` : `signal ${result.signal ?? 'unknown'}`;
    super(`${argv[0] === 'sh' ? (argv[4] ?? argv[0]) : argv[0]} on ${label} failed (${how})${tail ? ': ' + tail : ''}`);
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

/** What sudo -n says when its rules do not let the login user run a command as the target user. */
const SUDO_REFUSED = /^(?:sudo: (?:a password is required|a terminal is required|sorry, you must have a tty|.* is not in the sudoers file)|Sorry, user .* is not allowed to execute)/im;
const SUDO_NO_USER = /^sudo: unknown user:? ?(\S*)/im;

/**
 * Runs argv on `inner` as another user, through `sudo -n -u USER --` (the tree belongs to the web
 * server's user; the login user reaches it with sudo). -n: sudo never prompts; when its rules want a
 * password it fails, and that becomes an error naming the host, both users and the sudoers rule.
 */
export class BecomeShell implements Shell {
  readonly label: string;
  constructor(
    private readonly inner: Shell,
    readonly user: string,
    private readonly where: { host: string; login: string },
  ) {
    this.label = inner.label;
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    // cd /: the login user's home (sudo keeps the working directory) may be closed to USER, and
    // find and git fail in a working directory they cannot read.
    const res = await this.inner.exec(['sudo', '-n', '-u', this.user, '--', 'sh', '-c', 'cd / && exec "$@"', 'sh', ...argv], opts);
    if (res.code === 127 && /sudo: (?:command )?not found/i.test(res.stderr)) {
      throw new OpsError(
        `sudo is not installed on host ${this.where.host}, and commands on its instances run as ${this.user} through it`,
        1,
        `install sudo there, or run them as the login user: opsdeck host set ${this.where.host} --no-become`,
      );
    }
    if (res.code === 1 && SUDO_NO_USER.test(res.stderr)) {
      throw new OpsError(
        `host ${this.where.host} has no user ${this.user} to run commands as (host set --become ${this.user})`,
        1,
        `name a user that exists there: opsdeck host set ${this.where.host} --become USER (or --no-become)`,
      );
    }
    if (res.code === 1 && SUDO_REFUSED.test(res.stderr)) {
      throw new OpsError(
        `on host ${this.where.host}, sudo wants a password for ${this.where.login} to run commands as ${this.user}: opsdeck runs sudo -n and never types one`,
        1,
        `allow it without a password in a sudoers file on ${this.where.host} (visudo -f /etc/sudoers.d/opsdeck): ${this.where.login} ALL=(${this.user}) NOPASSWD: ALL, then run: opsdeck host check ${this.where.host}`,
      );
    }
    return res;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
