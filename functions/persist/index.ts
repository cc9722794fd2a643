import * as functions from '@google-cloud/functions-framework';
import { persistModeFor } from '../../shared/settings';
import { runtime } from '../runtime';
import { createPersistHandler } from './handler';

let handler: ReturnType<typeof createPersistHandler> | undefined;

functions.http('persist', (req, res) => {
  const current = runtime();
  handler ??= createPersistHandler({
    ...current,
    batchWindowMs: current.settings.batchWindowMs,
    persistModeFor: (networkId) => persistModeFor(current.settings, networkId),
    logger: current.logger.child({ function: 'persist' }),
  });
  return handler(req, res);
});
