import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../shared/log';
import { TasksEmulatorError } from './errors';
import { parseTaskName } from './names';
import { paginate } from './paging';
import { queueFilter } from './queue-filter';
import type { QueueRegistry } from './registry';
import { taskToMessage } from './task';
import type { FieldMask, IamPolicyMessage, QueueMessage, TaskMessage, TaskView } from './wire';

interface NameRequest {
  name?: string;
}
interface ViewRequest extends NameRequest {
  responseView?: TaskView;
}
interface ListRequest {
  parent?: string;
  pageSize?: number;
  pageToken?: string;
}

const maxQueuePageSize = 9800;
const maxTaskPageSize = 1000;
const empty = {};

/** Unexpected errors are logged and reported as INTERNAL; the emulator's own keep their code. */
export function toServiceError(error: unknown, method: string, logger: Logger): { code: grpc.status; details: string } {
  if (error instanceof TasksEmulatorError) return { code: error.code, details: error.message };
  logger.error('unexpected error serving a request', { method, error });
  return { code: grpc.status.INTERNAL, details: `Internal error in the Cloud Tasks emulator: ${String(error)}` };
}

function unary<Req, Res>(
  method: string,
  logger: Logger,
  handle: (request: Req) => Res | Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handle(call.request))
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error, method, logger)),
      );
  };
}

/** A CloudTasks method: a request message in, a response message out (proto-loader object shapes). */
export type CloudTasksOperation = (request: unknown) => unknown;

/** gRPC handlers for every method of google.cloud.tasks.v2.CloudTasks. */
export function cloudTasksHandlers(
  operations: Record<string, CloudTasksOperation>,
  logger: Logger,
): grpc.UntypedServiceImplementation {
  return Object.fromEntries(
    Object.entries(operations).map(([method, handle]) => [method, unary(method, logger, handle)]),
  ) as grpc.UntypedServiceImplementation;
}

/**
 * Every method of google.cloud.tasks.v2.CloudTasks by its proto name, backed by the registry;
 * the gRPC server and the REST gateway both call these.
 */
export function cloudTasksOperations(registry: QueueRegistry): Record<string, CloudTasksOperation> {
  const taskAt = (name: string | undefined) => {
    const taskName = parseTaskName(name);
    return { queue: registry.get(taskName.queue.path, 'name'), taskName };
  };

  const handlers = {
    ListQueues: (request: ListRequest & { filter?: string }) => {
      const matches = queueFilter(request.filter);
      const queues = registry
        .list(request.parent)
        .map((q) => q.toMessage())
        .filter(matches);
      const page = paginate(queues, (q) => q.name ?? '', request, maxQueuePageSize);
      return { queues: page.items, nextPageToken: page.nextPageToken };
    },
    GetQueue: (request: NameRequest) => registry.get(request.name).toMessage(),
    CreateQueue: (request: { parent?: string; queue?: QueueMessage }) =>
      registry.create(request.parent, request.queue).toMessage(),
    UpdateQueue: (request: { queue?: QueueMessage; updateMask?: FieldMask }) =>
      registry.update(request.queue, request.updateMask?.paths ?? []).toMessage(),
    DeleteQueue: async (request: NameRequest) => {
      await registry.delete(request.name);
      return empty;
    },
    PurgeQueue: (request: NameRequest) => {
      const queue = registry.get(request.name);
      queue.purge();
      return queue.toMessage();
    },
    PauseQueue: (request: NameRequest) => {
      const queue = registry.get(request.name);
      queue.pause();
      return queue.toMessage();
    },
    ResumeQueue: (request: NameRequest) => {
      const queue = registry.get(request.name);
      queue.resume();
      return queue.toMessage();
    },
    GetIamPolicy: (request: { resource?: string }) => registry.get(request.resource, 'resource').getIamPolicy(),
    SetIamPolicy: (request: { resource?: string; policy?: IamPolicyMessage }) =>
      registry.get(request.resource, 'resource').setIamPolicy(request.policy ?? {}),
    // The emulator does no authorization: every permission asked about is held, on a queue that exists.
    TestIamPermissions: (request: { resource?: string; permissions?: string[] }) => ({
      permissions: registry.find(request.resource, 'resource') ? (request.permissions ?? []) : [],
    }),
    ListTasks: (request: ListRequest & { responseView?: TaskView }) => {
      const tasks = registry.get(request.parent, 'parent').listTasks();
      const page = paginate(tasks, (t) => t.name.taskId, request, maxTaskPageSize);
      return {
        tasks: page.items.map((t) => taskToMessage(t, request.responseView)),
        nextPageToken: page.nextPageToken,
      };
    },
    GetTask: (request: ViewRequest) => {
      const { queue, taskName } = taskAt(request.name);
      return taskToMessage(queue.getTask(taskName), request.responseView);
    },
    CreateTask: (request: { parent?: string; task?: TaskMessage; responseView?: TaskView }) => {
      const queue = registry.get(request.parent, 'parent');
      return taskToMessage(queue.createTask(request.task ?? {}), request.responseView);
    },
    DeleteTask: (request: NameRequest) => {
      const { queue, taskName } = taskAt(request.name);
      queue.deleteTask(taskName);
      return empty;
    },
    RunTask: (request: ViewRequest) => {
      const { queue, taskName } = taskAt(request.name);
      return taskToMessage(queue.runTask(taskName), request.responseView);
    },
  } satisfies Record<string, (request: never) => unknown>;

  return handlers as Record<string, CloudTasksOperation>;
}
