import * as functions from '@google-cloud/functions-framework';
import { runtime } from '../runtime';
import { createPersistHandler } from './handler';

let handler: ReturnType<typeof createPersistHandler> | undefined;

functions.http('persist', (req, res) => {
  const current = runtime();
  handler ??= createPersistHandler({ ...current, batchWindowMs: current.settings.batchWindowMs, logger: current.logger.child({ function: 'persist' }) });
  return handler(req, res);
});
