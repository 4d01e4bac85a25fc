import { checkNotAborted, drive } from './drive.js';
import type { ExecOptions, ExecResult, Shell } from './shell.js';

type Child = { kill(signal?: NodeJS.Signals): boolean; finally(f: () => void): Promise<unknown> };
const live = new Set<Child>();
let hooked = false;
/** Children run in their own process group, so none outlives opsdeck by accident: stopped at exit. */
function stopChildrenOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGINT');
  });
}

/** Runs argv on this machine (restic, local tools), through execa: no shell in between. */
export class LocalShell implements Shell {
  readonly label: string;
  constructor(
    private readonly env: Record<string, string> = {},
    label = 'this machine',
  ) {
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
      // A process group of its own: the terminal's ctrl-c reaches opsdeck alone, which stops its
      // children itself (and keeps the ones its undo needs). That also leaves execa's signal-exit
      // cleanup out of signal handling; stopChildrenOnExit stands in for it.
      detached: true,
    });
    live.add(child);
    stopChildrenOnExit();
    let stopped = false;
    const exited = child.then((r) => {
      if (r.failed && r.exitCode === undefined && !r.signal) {
        // The program could not be started at all (not installed, not executable).
        throw new Error(`cannot run ${file} on ${this.label}: ${r.originalMessage ?? r.message}`);
      }
      return { code: r.exitCode ?? null, signal: r.signal ?? null };
    });
    void child.finally(() => live.delete(child)).catch(() => {});
    // SIGINT, not SIGTERM: restic 0.14 removes its lock from the store only on SIGINT. One that has
    // not gone after 10 s is killed.
    const kill = () => {
      if (stopped) return;
      stopped = true;
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      t.unref();
      void child.finally(() => clearTimeout(t)).catch(() => {});
    };
    return drive(this.label, argv, { stdin: child.stdin!, stdout: child.stdout!, stderr: child.stderr!, exited, kill }, opts, this.env);
  }

  async close(): Promise<void> {}
}
