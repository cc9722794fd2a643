/** Typed emulator errors: callers branch on the class or on `code`, never on message text. */

export type EmulatorErrorCode = 'EMULATOR_NOT_INSTALLED' | 'EMULATOR_START_FAILED' | 'INVALID_EMULATOR_SETTING';

export class EmulatorError extends Error {
  readonly code: EmulatorErrorCode;

  constructor(code: EmulatorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** What has to be installed for the emulator to run. */
export type MissingComponent = 'java' | 'pubsub-emulator';

/** @internal The emulator's error messages; exported for its tests. */
export const INSTALL_HINTS: Record<MissingComponent, string> = {
  'pubsub-emulator':
    'Install the Pub/Sub emulator with `apt-get install google-cloud-cli-pubsub-emulator` ' +
    '(Cloud SDK from apt) or `gcloud components install pubsub-emulator` (Cloud SDK from the installer), ' +
    'or set SPINE_PUBSUB_EMULATOR to its launcher (<sdk root>/platform/pubsub-emulator/bin/cloud-pubsub-emulator).',
  java:
    'The Pub/Sub emulator needs a Java 11+ runtime: install one, e.g. `apt-get install openjdk-17-jre-headless`, ' +
    'and put `java` on the PATH or set JAVA_HOME.',
};

export class EmulatorNotInstalledError extends EmulatorError {
  readonly installHint: string;

  constructor(
    readonly missing: MissingComponent,
    readonly detail: string,
  ) {
    super('EMULATOR_NOT_INSTALLED', `${detail}. ${INSTALL_HINTS[missing]}`);
    this.installHint = INSTALL_HINTS[missing];
  }
}

export interface ProcessOutcome {
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
  /** Last lines the process wrote (stderr and stdout), for the error report. */
  outputTail?: string;
}

export class EmulatorStartError extends EmulatorError {
  constructor(
    readonly emulator: string,
    readonly reason: string,
    readonly outcome: ProcessOutcome = {},
    options?: { cause?: unknown },
  ) {
    const tail = outcome.outputTail?.trim();
    super(
      'EMULATOR_START_FAILED',
      `${emulator} emulator failed to start: ${reason}${tail ? `\n--- output tail ---\n${tail}` : ''}`,
      options,
    );
  }
}

export class InvalidEmulatorSettingError extends EmulatorError {
  constructor(
    readonly setting: string,
    readonly value: unknown,
    reason: string,
  ) {
    super('INVALID_EMULATOR_SETTING', `invalid ${setting} ${JSON.stringify(value)}: ${reason}`);
  }
}
