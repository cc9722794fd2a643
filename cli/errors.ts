/** Exit codes and the one-line error report of `spine`; scripts branch on the code, people read the line. */
import { SpineError } from '../shared/errors';

/** Distinct exit codes, documented in docs/cli.md. */
export const ExitCode = {
  ok: 0,
  /** The operation failed for another reason (a service error, a refused import). */
  failed: 1,
  /** Unknown command, unknown or missing option or argument, a bad setting. */
  usage: 2,
  /** A network, group, contact, snapshot, agent or path id that the id rules refuse. */
  invalidId: 3,
  /** A value that cannot be stored: bad JSON, unserializable, too large, a corrupt import file. */
  invalidValue: 4,
  /** The network, group, contact, snapshot or dead letter does not exist. */
  notFound: 5,
  /** The mesh (an emulator or a function) cannot be reached. */
  unreachable: 6,
  /** The mesh did not confirm in time (`--wait`, snapshots, restores). */
  timeout: 7,
  /** `spine health`: the mesh answered, and it is unhealthy. */
  unhealthy: 8,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one line and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.usage);
  }
}

export class NotFoundError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.notFound);
  }
}

/** Text that is not JSON; `position` is the 0-based character offset, when it could be found. */
export class BadJsonError extends CliError {
  constructor(
    readonly what: string,
    readonly position: number | undefined,
    reason: string,
    hint = '',
  ) {
    super(
      `${what} is not valid JSON${position === undefined ? '' : ` at position ${position}`}: ${reason}${hint}`,
      ExitCode.invalidValue,
    );
  }
}

export class MeshUnreachableError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.unreachable, options);
  }
}

const EXIT_BY_SPINE_CODE: Partial<Record<SpineError['code'], ExitCodeValue>> = {
  INVALID_ID: ExitCode.invalidId,
  INVALID_ARGUMENT: ExitCode.invalidValue,
  UNSERIALIZABLE_CONTENT: ExitCode.invalidValue,
  CONTENT_TOO_LARGE: ExitCode.invalidValue,
  CORRUPT_DATA: ExitCode.invalidValue,
  INVALID_EVENT: ExitCode.invalidValue,
  NETWORK_NOT_FOUND: ExitCode.notFound,
  SNAPSHOT_NOT_FOUND: ExitCode.notFound,
  NOT_FOUND: ExitCode.notFound,
  TIMEOUT: ExitCode.timeout,
  STILL_APPLYING: ExitCode.timeout,
};

/** The exit code for any error: the CLI's own, the library's typed ones by `code`, 1 otherwise. */
export function exitCodeFor(error: unknown): ExitCodeValue {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof SpineError) return EXIT_BY_SPINE_CODE[error.code] ?? ExitCode.failed;
  // node:util parseArgs reports unknown options and missing option values with these codes.
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) return ExitCode.usage;
  return ExitCode.failed;
}

/** One line, whatever the error: its message with newlines folded. */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
