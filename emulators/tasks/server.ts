import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { type Logger, createLogger } from '../../shared/log';
import { loadCloudTasksProtos } from './proto';
import { QueueRegistry, type TasksEmulatorStats } from './registry';
import { routeByPreface } from './dual-protocol';
import { cloudTasksRestHandler } from './rest';
import { cloudTasksHandlers, cloudTasksOperations } from './service';

export interface TasksEmulatorOptions {
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 or omitted picks a free one. */
  port?: number;
  logger?: Logger;
  /** How long a deleted queue's name stays unusable. Default 7 days, as the service. */
  queueNameReuseMs?: number;
  /** How long a completed or deleted task's name stays taken. Default 1 hour, as the service. */
  taskNameReuseMs?: number;
}

/**
 * Options for `new CloudTasksClient(...)` that reach the emulator with no Google
 * credentials on the machine: `sslCreds` (insecure channel) makes google-gax skip call
 * credentials, and `universeDomain` stops it from looking up Application Default
 * Credentials (and probing the metadata server) just to learn the universe domain.
 */
// A type alias (not an interface) so it fits the client's index-signature options type.
export type CloudTasksClientOptions = {
  servicePath: string;
  port: number;
  sslCreds: grpc.ChannelCredentials;
  universeDomain: string;
};

export interface TasksEmulator {
  readonly host: string;
  readonly port: number;
  /** `host:port`, the value for CLOUD_TASKS_EMULATOR_HOST. */
  readonly address: string;
  clientOptions(): CloudTasksClientOptions;
  /** Counters per queue and in total: dispatches, attempts, retries, dropped tasks, peak concurrency. */
  stats(): TasksEmulatorStats;
  /** Cancels attempts in flight and stops the server. Safe to call twice. */
  stop(): Promise<void>;
}

const defaults = { host: '127.0.0.1', queueNameReuseMs: 7 * 24 * 3600_000, taskNameReuseMs: 3600_000 } as const;

function checkOptions(options: TasksEmulatorOptions): void {
  const { port, queueNameReuseMs, taskNameReuseMs } = options;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new Error(`port must be an integer in [0, 65535] (got ${port})`);
  }
  for (const [setting, value] of Object.entries({ queueNameReuseMs, taskNameReuseMs })) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0))
      throw new Error(`${setting} must be a number of milliseconds >= 0 (got ${value})`);
  }
}

function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * One listening socket for both protocols: gRPC (HTTP/2, the official Node client's default)
 * and REST (HTTP/1.1 JSON: gcloud, google-api-python-client, the Node client with `fallback`).
 */
function dualProtocolServer(
  grpcServer: grpc.Server,
  rest: http.RequestListener,
): { server: net.Server; close(graceMs: number): Promise<void> } {
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const http1 = http.createServer(rest);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    routeByPreface(socket, {
      http2: (s) => injector.injectConnection(s),
      http1: (s) => {
        http1.emit('connection', s);
        // The HTTP/1 parser reads new bytes from the handle itself; the bytes already read reach it as 'data'.
        s.resume();
      },
    });
  });
  return {
    server,
    // Resolves once every connection is closed: gracefully first, cut after `graceMs`.
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          grpcServer.forceShutdown();
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        grpcServer.tryShutdown(() => undefined);
        http1.close();
        http1.closeIdleConnections();
        // A socket that has not sent its first bytes belongs to neither server yet.
        for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
      }),
  };
}

/**
 * Starts a Cloud Tasks v2 emulator that dispatches HTTP tasks for real; state is in memory. Its
 * port speaks gRPC and the v2 REST API, over the same queues.
 */
export async function startTasksEmulator(options: TasksEmulatorOptions = {}): Promise<TasksEmulator> {
  checkOptions(options);
  const host = options.host ?? defaults.host;
  const logger = options.logger ?? createLogger('tasks-emulator');
  const registry = new QueueRegistry({
    queueNameReuseMs: options.queueNameReuseMs ?? defaults.queueNameReuseMs,
    taskNameReuseMs: options.taskNameReuseMs ?? defaults.taskNameReuseMs,
    logger,
  });
  const operations = cloudTasksOperations(registry);
  const grpcServer = new grpc.Server();
  grpcServer.addService(loadCloudTasksProtos().cloudTasks, cloudTasksHandlers(operations, logger));
  const { server, close } = dualProtocolServer(grpcServer, cloudTasksRestHandler(operations, logger));
  const port = await listen(server, host, options.port ?? 0);
  // A wildcard listen address is reached through loopback.
  const clientHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const address = `${clientHost}:${port}`;
  logger.info('Cloud Tasks emulator listening', { address });

  let stopping: Promise<void> | undefined;
  return {
    host: clientHost,
    port,
    address,
    clientOptions: () => ({
      servicePath: clientHost,
      port,
      sslCreds: grpc.credentials.createInsecure(),
      universeDomain: 'googleapis.com',
    }),
    stats: () => registry.stats(),
    stop: () =>
      (stopping ??= (async () => {
        await registry.close();
        await close(2000);
        logger.info('Cloud Tasks emulator stopped', { address });
      })()),
  };
}
