/**
 * The errors a user can meet. Each is caught in exactly one place (src/cli/main.ts, run by src/cli/bin.ts),
 * which prints the message and exits with the error's code (DESIGN §6).
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  busy: 3,
  someFailed: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Something went wrong that the user can act on; the message says what and what to do next. */
export class UserError extends Error {
  readonly exitCode: ExitCode = ExitCode.failed;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad flags, bad arguments, bad config values. */
export class UsageError extends UserError {
  override readonly exitCode = ExitCode.usage;
}

/** The domain is locked by another run, or in a state (maintenance) that forbids the verb. */
export class DomainBusyError extends UserError {
  override readonly exitCode = ExitCode.busy;
}

/** Some domains of `all` failed; each failure was already reported. */
export class SomeFailedError extends UserError {
  override readonly exitCode = ExitCode.someFailed;
}

/** A bug: an assumption of the code did not hold. */
export class InternalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InternalError';
  }
}
