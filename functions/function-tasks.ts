import type { CloudTasksClient } from '@google-cloud/tasks';
import type { FunctionName } from '../shared/topology';
import { status as GrpcStatus } from '@grpc/grpc-js';

export interface FunctionTasksOptions {
  tasks: CloudTasksClient;
  /** `projects/…/locations/…/queues/…` */
  queuePath: string;
  /** Base URL of the function the tasks call. */
  url: string;
  /** Service account whose OIDC token Cloud Tasks presents to the function. */
  serviceAccountEmail?: string;
}

/** Cloud Tasks that POST a JSON body to one function of the mesh. */
export class FunctionTasks {
  constructor(
    readonly target: FunctionName,
    private readonly options: FunctionTasksOptions,
  ) {}

  /**
   * Enqueues a call; with a `name`, at most one task by that name is ever run (a repeat finds
   * the name taken and returns false), which makes a redelivered request harmless.
   */
  async enqueue(body: Record<string, unknown>, { name }: { name?: string } = {}): Promise<boolean> {
    try {
      await this.options.tasks.createTask({
        parent: this.options.queuePath,
        task: {
          ...(name ? { name: `${this.options.queuePath}/tasks/${name}` } : {}),
          httpRequest: {
            url: this.options.url,
            httpMethod: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: Buffer.from(JSON.stringify(body)),
            ...(this.options.serviceAccountEmail
              ? { oidcToken: { serviceAccountEmail: this.options.serviceAccountEmail, audience: this.options.url } }
              : {}),
          },
        },
      });
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === GrpcStatus.ALREADY_EXISTS && name) return false;
      throw error;
    }
  }
}
