export interface StepContext<S> {
  state: S;
  signal: AbortSignal;
  /** The run in the audit trail (null in a dry run or outside the engine), and its command. */
  runId?: number | null;
  command?: string;
  log(message: string, level?: 'info' | 'warn' | 'error'): void;
  /** Bytes done so far in this step, and the total when it is known. */
  progress(bytes: number, total?: number): void;
}

/** What the helpers a step calls need of its context (log, progress, signal), not the plan's state. */
export type StepIO = Omit<StepContext<unknown>, 'state'>;

export interface Step<S> {
  name: string;
  title: string;
  /** One sentence on what the step does and what to do if it fails (shown by drills and --dry-run). */
  explain?: string;
  run(ctx: StepContext<S>): Promise<void>;
  /** Present when the step changes something: puts it back. */
  undo?(ctx: StepContext<S>): Promise<void>;
  /**
   * Work that cannot be undone (deleting the swapped-out tree): it runs only once every other step
   * succeeded, after all of them whatever its place in the list, and cannot be cancelled. Its failure
   * is a warning, not a failure: what the run was for is done.
   */
  final?: boolean;
}

export interface Plan<S, R = unknown> {
  command: string;
  params: Record<string, unknown>;
  /** The instance the run changes: it is locked for the run and names the audit record. */
  instance: string | null;
  /** Other instances the run reads and that must not change meanwhile (a live clone's source): locked too. */
  reads?: string[];
  steps: Step<S>[];
  /**
   * Runs even on a half-restored instance (recover, maintenance): every other run refuses one, since
   * its database and code tree do not belong together.
   */
  whileHalfRestored?: boolean;
  state: S;
  /** What the run hands back when it succeeds (printed by --json). */
  result(state: S): R;
  /** Lines --dry-run prints besides the steps (what would change). */
  preview?(): Promise<string[]>;
  /**
   * What to tell when an undo failed: the instance is left half-changed, so name what puts it back
   * (the safety backup, the one command). Appended to the run's error and hint.
   */
  undoFailed?(state: S): { message: string; hint: string } | undefined;
  /** Runs after the run ends, whatever happened (close streams, drop temp files); `status` says how it ended. */
  finally?(state: S, status: 'ok' | 'failed' | 'rolled-back' | 'undo-failed'): Promise<void>;
}
