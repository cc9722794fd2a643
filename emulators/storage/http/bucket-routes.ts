import { Router, json, type Request, type Response } from 'express';
import { parsePreconditions } from '../preconditions';
import { bucketAclParameters } from './acl-routes';
import { bucketResource, storageLayoutResource } from '../resources';
import type { StorageService } from '../service';
import { jsonBody, originOf, pathParam, queryMaxResults, queryParam } from './request';
import { sendResource } from './responses';

/** JSON API buckets: insert, get, list, patch/update, delete, storageLayout, lockRetentionPolicy, managed folder listing. */
export function bucketRoutes(service: StorageService): Router {
  const router = Router();
  const parseJson = json({ type: () => true, limit: '10mb' });

  router.get('/b', (req, res) => {
    const page = service.listBuckets({
      prefix: queryParam(req, 'prefix'),
      pageToken: queryParam(req, 'pageToken'),
      maxResults: queryMaxResults(req),
    });
    sendResource(req, res, {
      kind: 'storage#buckets',
      items: page.items.map((bucket) => bucketResource(bucket, originOf(req))),
      ...(page.nextPageToken && { nextPageToken: page.nextPageToken }),
    });
  });

  router.post('/b', parseJson, async (req, res) => {
    const bucket = await service.insertBucket(jsonBody(req) ?? {}, bucketAclParameters(req));
    sendResource(req, res, bucketResource(bucket, originOf(req)));
  });

  router.get('/b/:bucket', (req, res) => {
    const bucket = service.getBucket(pathParam(req, 'bucket'), parsePreconditions(req.query));
    sendResource(req, res, bucketResource(bucket, originOf(req)));
  });

  // PUT (update) is treated as a patch: settings not given are kept.
  const patch = async (req: Request, res: Response) => {
    const bucket = await service.patchBucket(
      pathParam(req, 'bucket'),
      jsonBody(req) ?? {},
      parsePreconditions(req.query),
      bucketAclParameters(req),
    );
    sendResource(req, res, bucketResource(bucket, originOf(req)));
  };
  router.patch('/b/:bucket', parseJson, patch);
  router.put('/b/:bucket', parseJson, patch);

  router.get('/b/:bucket/storageLayout', (req, res) => {
    sendResource(req, res, storageLayoutResource(service.getBucket(pathParam(req, 'bucket'), {})));
  });

  // Managed folders cannot be created here (that route is not served), so a bucket has none;
  // gcloud lists them before `rm -r`.
  router.get('/b/:bucket/managedFolders', (req, res) => {
    service.getBucket(pathParam(req, 'bucket'), {});
    sendResource(req, res, { kind: 'storage#managedFolders' });
  });

  router.post('/b/:bucket/lockRetentionPolicy', async (req, res) => {
    const bucket = await service.lockRetentionPolicy(pathParam(req, 'bucket'), parsePreconditions(req.query));
    sendResource(req, res, bucketResource(bucket, originOf(req)));
  });

  router.delete('/b/:bucket', async (req, res) => {
    await service.deleteBucket(pathParam(req, 'bucket'), parsePreconditions(req.query));
    res.status(204).end();
  });

  return router;
}
