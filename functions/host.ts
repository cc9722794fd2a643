import type { Server } from 'node:http';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { FunctionName } from '../shared/topology';
import { FUNCTION_TARGETS } from './targets';

export interface FunctionsHostOptions {
  host?: string;
  /** A port per function; a free one for each not given. */
  ports?: Partial<Record<FunctionName, number>>;
  targets?: readonly FunctionName[];
}

export interface FunctionsHost {
  urls: Partial<Record<FunctionName, string>>;
  stop(): Promise<void>;
}

/**
 * Serves every registered function in this process, each on its own port, through the
 * Functions Framework's own server (the same request handling as a deployed function).
 */
export async function startFunctionsHost(options: FunctionsHostOptions = {}): Promise<FunctionsHost> {
  // Registering is a side effect of loading the function modules.
  require('./index');
  const host = options.host ?? '127.0.0.1';
  const servers: Server[] = [];
  const urls: Partial<Record<FunctionName, string>> = {};
  try {
    for (const target of options.targets ?? FUNCTION_TARGETS) {
      const server = getTestServer(target);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.ports?.[target] ?? 0, host, () => resolve());
      });
      servers.push(server);
      const address = server.address();
      if (!address || typeof address !== 'object') throw new Error(`function ${target} has no address`);
      urls[target] = `http://${host}:${address.port}`;
    }
  } catch (error) {
    await Promise.all(servers.map(closeServer));
    throw error;
  }
  return {
    urls,
    stop: () => Promise.all(servers.map(closeServer)).then(() => undefined),
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Push connections are kept alive; in-flight requests finish, idle ones are cut.
    server.closeIdleConnections();
  });
}
