export interface StepContext<S> {
  state: S;
  signal: AbortSignal;
  log(message: string, level?: 'info' | 'warn' | 'error'): void;
  /** Bytes done so far in this step, and the total when it is known. */
  progress(bytes: number, total?: number): void;
}

export interface Step<S> {
  name: string;
  title: string;
  /** One sentence on what the step does and what to do if it fails (shown by drills and --dry-run). */
  explain?: string;
  run(ctx: StepContext<S>): Promise<void>;
  /** Present when the step changes something: puts it back. */
  undo?(ctx: StepContext<S>): Promise<void>;
}

export interface Plan<S, R = unknown> {
  command: string;
  params: Record<string, unknown>;
  /** The instance the run changes: it is locked for the run and names the audit record. */
  instance: string | null;
  /** Other instances the run reads and that must not change meanwhile (a live clone's source): locked too. */
  reads?: string[];
  steps: Step<S>[];
  state: S;
  /** What the run hands back when it succeeds (printed by --json). */
  result(state: S): R;
  /** Lines --dry-run prints besides the steps (what would change). */
  preview?(): Promise<string[]>;
  /** Runs after the run ends, whatever happened (close streams, drop temp files). */
  finally?(state: S): Promise<void>;
}
