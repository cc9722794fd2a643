import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * Loads the Cloud Tasks v2 service definition from the protos shipped inside
 * `@google-cloud/tasks`, so the emulator speaks exactly the wire format of the
 * client installed next to it.
 *
 * The tasks package only ships its own protos; the `google/api`, `google/iam`,
 * `google/rpc` and `google/protobuf` imports resolve from the protos of
 * `google-gax`, the client's transport, which is always installed with it.
 */
function packageDir(moduleId: string, from?: string): string {
  // Both packages restrict `exports`, so resolve their entry point and walk up to `build/`.
  const entry = require.resolve(moduleId, from ? { paths: [from] } : undefined);
  const marker = `${path.sep}build${path.sep}`;
  const at = entry.lastIndexOf(marker);
  if (at < 0) throw new Error(`cannot locate the build folder of ${moduleId} (resolved ${entry})`);
  return entry.slice(0, at + marker.length - 1);
}

export function protoIncludeDirs(): { tasksProtos: string; includeDirs: string[] } {
  const tasksBuild = packageDir('@google-cloud/tasks');
  const gaxBuild = packageDir('google-gax', tasksBuild);
  const tasksProtos = path.join(tasksBuild, 'protos');
  return { tasksProtos, includeDirs: [tasksProtos, path.join(gaxBuild, 'protos')] };
}

/**
 * Loader options shared by every service the emulator serves: camelCase fields (as the
 * Node client writes them), enums as their names, int64 as numbers (timestamps fit), and
 * absent fields left undefined so "unset" can be told from zero where proto3 allows it.
 */
const loaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
};

export interface CloudTasksProtos {
  cloudTasks: grpc.ServiceDefinition;
}

let cached: CloudTasksProtos | undefined;

export function loadCloudTasksProtos(): CloudTasksProtos {
  if (cached) return cached;
  const { includeDirs } = protoIncludeDirs();
  const definition = protoLoader.loadSync('google/cloud/tasks/v2/cloudtasks.proto', { ...loaderOptions, includeDirs });
  const service = definition['google.cloud.tasks.v2.CloudTasks'];
  // Message and enum entries carry a `format`; a service is a plain map of methods.
  if (!service || 'format' in service)
    throw new Error('google.cloud.tasks.v2.CloudTasks not found in the shipped protos');
  cached = { cloudTasks: service as grpc.ServiceDefinition };
  return cached;
}
