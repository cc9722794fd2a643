import { invalidArgument } from './errors';
import type { QueueMessage, QueueState } from './wire';

/**
 * ListQueues filters. The service accepts the Logging filter language over any Queue
 * field; the emulator understands the form its documentation shows, comparisons on the
 * state: `state: PAUSED`, `state = RUNNING`, `state != PAUSED`. Anything else is refused
 * with INVALID_ARGUMENT rather than silently ignored.
 */
export function queueFilter(filter: string | undefined): (queue: QueueMessage) => boolean {
  if (!filter || filter.trim() === '') return () => true;
  const match = /^\s*state\s*(:|=|!=)\s*"?([A-Za-z_]+)"?\s*$/.exec(filter);
  if (!match) {
    throw invalidArgument(
      `filter "${filter}" is not supported by the emulator; use a state comparison such as "state: PAUSED"`,
    );
  }
  const [, operator, value] = match;
  const state = value!.toUpperCase() as QueueState;
  return operator === '!=' ? (queue) => queue.state !== state : (queue) => queue.state === state;
}
