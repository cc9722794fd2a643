import { randomBytes } from 'node:crypto';
import { invalidArgument } from './errors';

/**
 * Resource names as the service spells them:
 * `projects/PROJECT_ID/locations/LOCATION_ID[/queues/QUEUE_ID[/tasks/TASK_ID]]`.
 * Parsers throw INVALID_ARGUMENT naming the part that is wrong.
 */
export interface LocationName {
  project: string;
  location: string;
  /** `projects/P/locations/L` */
  path: string;
}

export interface QueueName extends LocationName {
  queueId: string;
  /** `projects/P/locations/L/queues/Q` */
  path: string;
}

export interface TaskName {
  queue: QueueName;
  taskId: string;
  /** `projects/P/locations/L/queues/Q/tasks/T` */
  path: string;
}

// Character sets from the Queue and Task name documentation in the v2 protos.
const projectId = /^[A-Za-z0-9\-:.]+$/;
const locationId = /^[A-Za-z0-9-]+$/;
const queueId = /^[A-Za-z0-9-]{1,100}$/;
const taskId = /^[A-Za-z0-9_-]{1,500}$/;

const locationForm = 'projects/PROJECT_ID/locations/LOCATION_ID';
const queueForm = `${locationForm}/queues/QUEUE_ID`;
const taskForm = `${queueForm}/tasks/TASK_ID`;

function segments(name: string | undefined, field: string, form: string, count: number): string[] {
  const parts = (name ?? '').split('/');
  const keywords = ['projects', 'locations', 'queues', 'tasks'];
  const wellFormed =
    parts.length === count * 2 && parts.every((part, i) => (i % 2 === 0 ? part === keywords[i / 2] : part.length > 0));
  if (!wellFormed) throw invalidArgument(`${field} must have the form "${form}" (got "${name ?? ''}")`);
  return parts;
}

function checkId(value: string, pattern: RegExp, what: string, rule: string): string {
  if (!pattern.test(value)) throw invalidArgument(`${what} "${value}" is invalid: ${rule}`);
  return value;
}

export function parseLocationName(name: string | undefined, field = 'parent'): LocationName {
  const parts = segments(name, field, locationForm, 2);
  const project = checkId(parts[1]!, projectId, 'PROJECT_ID', 'use letters, numbers, hyphens, colons or periods');
  const location = checkId(parts[3]!, locationId, 'LOCATION_ID', 'use letters, numbers or hyphens');
  return { project, location, path: `projects/${project}/locations/${location}` };
}

export function parseQueueName(name: string | undefined, field = 'name'): QueueName {
  const parts = segments(name, field, queueForm, 3);
  const location = parseLocationName(parts.slice(0, 4).join('/'), field);
  const id = checkId(parts[5]!, queueId, 'QUEUE_ID', 'use letters, numbers or hyphens, at most 100 characters');
  return { ...location, queueId: id, path: `${location.path}/queues/${id}` };
}

export function parseTaskName(name: string | undefined, field = 'name'): TaskName {
  const parts = segments(name, field, taskForm, 4);
  const queue = parseQueueName(parts.slice(0, 6).join('/'), field);
  const id = checkId(
    parts[7]!,
    taskId,
    'TASK_ID',
    'use letters, numbers, hyphens or underscores, at most 500 characters',
  );
  return { queue, taskId: id, path: `${queue.path}/tasks/${id}` };
}

export function taskNameIn(queue: QueueName, id: string): TaskName {
  return { queue, taskId: id, path: `${queue.path}/tasks/${id}` };
}

/** A system-generated task id: like the service's, a long string of decimal digits. */
export function generateTaskId(): string {
  return randomBytes(8).readBigUInt64BE().toString().padStart(20, '0');
}
