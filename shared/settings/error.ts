import { InvalidArgumentError } from '../errors';

/**
 * A setting that cannot work, from the environment, a flag or code: the message names the
 * setting (its flag too when it came from a command line) and the value. One type for every
 * setting of the library, the functions, the gateway, the CLI and the emulators; it is an
 * `InvalidArgumentError` (code INVALID_ARGUMENT), so existing checks and exit codes hold.
 */
export class SettingError extends InvalidArgumentError {
  constructor(
    /** The environment variable (or the option's name, for options given in code). */
    readonly setting: string,
    /** The value refused, as given (a secret is replaced by a note saying it is not shown). */
    readonly value: unknown,
    /** What was expected, or what is wrong ("in use by another emulator"). */
    readonly expected: string,
    /** The command-line flag of the setting, when the value was read for a command line. */
    readonly flag?: string,
    /** Said instead, for a command line that cannot be read at all ("--port needs a value"). */
    message?: string,
  ) {
    super(
      message ??
        (flag
          ? `invalid ${flag} ${JSON.stringify(value)} (setting ${setting}): expected ${expected}`
          : `setting ${setting}=${JSON.stringify(value)} is invalid: expected ${expected}`),
    );
  }
}

/** Thrown by a value parser: what the value should have been. The settings parser turns it into a SettingError. */
export class ExpectedValue extends Error {
  constructor(readonly expected: string) {
    super(expected);
  }
}

export function expected(text: string): never {
  throw new ExpectedValue(text);
}
