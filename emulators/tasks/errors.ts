import { status } from '@grpc/grpc-js';

/**
 * An error the emulator answers with, carrying the gRPC status code the service uses.
 * Callers branch on `code` (a `@grpc/grpc-js` `status`), never on message text.
 */
export class TasksEmulatorError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'TasksEmulatorError';
  }
}

/**
 * Messages the real service gives for these codes, kept verbatim so callers that log or match them see the same text.
 * @internal The emulator's gRPC error texts; exported for its tests.
 */
export const serviceMessages = {
  notFound: 'Requested entity was not found.',
  alreadyExists: 'Requested entity already exists',
  taskRecentlyGone:
    'The task no longer exists, though a task with this name existed recently. The task either successfully completed or was deleted.',
  queueRecentlyDeleted: 'The queue cannot be created because a queue with this name existed too recently.',
} as const;

export const notFound = (message: string = serviceMessages.notFound) =>
  new TasksEmulatorError(status.NOT_FOUND, message);
export const alreadyExists = () => new TasksEmulatorError(status.ALREADY_EXISTS, serviceMessages.alreadyExists);
export const invalidArgument = (message: string) => new TasksEmulatorError(status.INVALID_ARGUMENT, message);
export const failedPrecondition = (message: string) => new TasksEmulatorError(status.FAILED_PRECONDITION, message);
export const unimplemented = (message: string) => new TasksEmulatorError(status.UNIMPLEMENTED, message);
export const aborted = (message: string) => new TasksEmulatorError(status.ABORTED, message);
