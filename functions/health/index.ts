import * as functions from '@google-cloud/functions-framework';
import { runtime } from '../runtime';
import { createHealthDependencies, createHealthHandler } from './handler';

let handler: ReturnType<typeof createHealthHandler> | undefined;

functions.http('health', (req, res) => {
  handler ??= createHealthHandler(createHealthDependencies(runtime()));
  return handler(req, res);
});
