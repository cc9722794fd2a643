import * as functions from '@google-cloud/functions-framework';
import { persistModeFor } from '../../shared/settings';
import { runtime } from '../runtime';
import { createPersistHandler } from './handler';

// Built at load, so a misconfiguration fails the instance's start instead of every request.
const current = runtime();
const handler = createPersistHandler({
  ...current,
  batchWindowMs: current.settings.batchWindowMs,
  persistModeFor: (networkId) => persistModeFor(current.settings, networkId),
  logger: current.logger.child({ function: 'persist' }),
});

functions.http('persist', (req, res) => handler(req, res));
