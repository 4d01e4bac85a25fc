// Exit codes of DESIGN.md: 0 done, 1 the operation failed, 2 bad usage or input, 3 locked.
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, LOCKED: 3 } as const;

/** An error whose message is meant for the person at the terminal, with the exit code it maps to. */
export class OpsError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.FAILED,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'OpsError';
  }
}

/** Bad usage or bad input: nothing was changed. */
export class UsageError extends OpsError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.USAGE, hint);
    this.name = 'UsageError';
  }
}

export class LockedError extends OpsError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.LOCKED, hint);
    this.name = 'LockedError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
