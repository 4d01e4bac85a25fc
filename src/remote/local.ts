import { checkNotAborted, drive } from './drive.js';
import type { ExecOptions, ExecResult, Shell } from './shell.js';

/** Runs argv on this machine (restic, local tools), through execa: no shell in between. */
export class LocalShell implements Shell {
  readonly label: string;
  constructor(private readonly env: Record<string, string> = {}, label = 'this machine') {
    this.label = label;
  }

  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    checkNotAborted(this.label, opts.signal);
    const [file, ...args] = argv;
    // Loaded on first use: most commands (list, watch, compare...) never start a local process.
    const { execa } = await import('execa');
    const child = execa(file, args, {
      env: this.env,
      extendEnv: true,
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      reject: false,
      stripFinalNewline: false,
    });
    const exited = child.then((r) => {
      if (r.failed && r.exitCode === undefined && !r.signal) {
        // The program could not be started at all (not installed, not executable).
        throw new Error(`cannot run ${file} on ${this.label}: ${r.originalMessage ?? r.message}`);
      }
      return { code: r.exitCode ?? null, signal: r.signal ?? null };
    });
    return drive(this.label, { stdin: child.stdin!, stdout: child.stdout!, stderr: child.stderr!, exited, kill: () => child.kill('SIGTERM') }, opts);
  }

  async close(): Promise<void> {}
}
