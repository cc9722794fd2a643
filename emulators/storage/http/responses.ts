import type { ErrorRequestHandler, Request, Response } from 'express';
import type { Logger } from '../../../shared/log';
import { StorageApiError, parseError } from '../errors';
import { applyFieldMask } from '../field-mask';
import { queryParam } from './request';

/** Sends a JSON API resource, trimmed to `fields` when the request asked for a partial response. */
export function sendResource(req: Request, res: Response, resource: unknown, status = 200): void {
  res.status(status).json(applyFieldMask(resource, queryParam(req, 'fields')));
}

/** Turns thrown errors into the service's JSON error responses. */
export function errorHandler(logger: Logger, onRefused: (code: number) => void): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const storageError = toStorageError(error);
    if (!storageError) {
      logger.error('storage emulator request failed', { error, method: req.method, path: req.path });
    }
    const failure = storageError ?? new StorageApiError(500, 'backendError', 'Internal error in the storage emulator.');
    onRefused(failure.code);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (failure.code === 304) {
      res.status(304).end();
      return;
    }
    res.status(failure.code).json(failure.toBody());
  };
}

function toStorageError(error: unknown): StorageApiError | undefined {
  if (error instanceof StorageApiError) return error;
  // body-parser reports malformed JSON this way.
  if (typeof error === 'object' && error !== null && (error as { type?: unknown }).type === 'entity.parse.failed') {
    return parseError();
  }
  return undefined;
}
