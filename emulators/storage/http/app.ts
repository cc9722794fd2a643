import express, { type Express } from 'express';
import type { Logger } from '../../../shared/log';
import { notImplemented } from '../errors';
import type { StorageService } from '../service';
import type { StatsRecorder } from '../stats';
import { aclRoutes } from './acl-routes';
import { adminRoutes } from './admin-routes';
import { serveBatch } from './batch-route';
import { bucketRoutes } from './bucket-routes';
import { sendMedia } from './media';
import { objectAddress, objectRoutes } from './object-routes';
import { queryParam } from './request';
import { errorHandler } from './responses';
import { uploadRoutes } from './upload-routes';

/**
 * Where the official client sends requests: JSON API under `/storage/v1` (or at the root when
 * only STORAGE_EMULATOR_HOST is set, which the client then uses as the base URL as is),
 * uploads under `/upload/storage/v1`, media downloads under `/download/storage/v1` or via
 * `alt=media`, and public URLs as `/:bucket/:object`.
 */
const JSON_API_BASES = ['/storage/v1', '/'];
// gcloud sends uploads of 8 MiB and more to `/resumable/upload/...`, which the service serves too.
const UPLOAD_BASES = ['/upload/storage/v1', '/resumable/upload/storage/v1', '/storage/v1/upload/storage/v1'];
const DOWNLOAD_BASES = ['/download/storage/v1', '/storage/v1/download/storage/v1'];

export function createApp(service: StorageService, stats: StatsRecorder, logger: Logger): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Plain key=value query parsing: `a[b]=c` in a prefix must stay a string, not become an object.
  app.set('query parser', 'simple');

  app.use((req, res, next) => {
    stats.request();
    res.on('finish', () =>
      logger.debug('request', { method: req.method, url: req.originalUrl, status: res.statusCode }),
    );
    next();
  });

  // Object downloads are most of what a network load asks for: answered here, before the upload,
  // download and JSON API routers below would each try their routes in turn.
  app.get(
    JSON_API_BASES.map((base) => `${base.replace(/\/$/, '')}/b/:bucket/o/:object`),
    (req, res, next) =>
      queryParam(req, 'alt') === 'media' ? sendMedia(req, res, service, objectAddress(req)) : next(),
  );
  app.use('/_emulator', adminRoutes(service));
  app.post(['/batch/storage/v1', '/batch'], serveBatch);
  for (const base of UPLOAD_BASES) app.use(base, uploadRoutes(service));
  for (const base of DOWNLOAD_BASES) {
    app.get(`${base}/b/:bucket/o/:object`, (req, res) => sendMedia(req, res, service, objectAddress(req)));
    app.get(`${base}/b/:bucket/o/*object`, (req, res) => sendMedia(req, res, service, objectAddress(req)));
  }
  for (const base of JSON_API_BASES) {
    app.use(base, bucketRoutes(service), objectRoutes(service), aclRoutes(service));
  }
  // Anything else under the JSON API (IAM, notifications, HMAC keys...) is not emulated.
  app.all(['/storage/v1/*rest', '/b/*rest', '/projects/*rest'], (req) => {
    throw notImplemented(req.method, req.path);
  });
  // Public object URLs (`file.publicUrl()`): https://storage.googleapis.com/<bucket>/<object>.
  app.get('/:bucket/*object', (req, res) => sendMedia(req, res, service, objectAddress(req)));
  app.use((req) => {
    throw notImplemented(req.method, req.path);
  });
  app.use(errorHandler(logger, (code) => stats.refused(code)));
  return app;
}
