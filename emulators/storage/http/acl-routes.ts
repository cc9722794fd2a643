import { Router, type Request } from 'express';
import {
  assertLegacyAclAllowed,
  bucketAclResources,
  defaultObjectAclResources,
  objectAclResources,
  parsePredefinedBucketAcl,
  parsePredefinedObjectAcl,
  type PredefinedObjectAcl,
} from '../acl';
import { StorageApiError } from '../errors';
import type { BucketAcls } from '../state';
import type { StorageService } from '../service';
import { objectAddress } from './object-routes';
import { originOf, pathParam, queryParam } from './request';
import { sendResource } from './responses';

/**
 * Reads of legacy ACLs (bucket, default object, object; a list or one entity). Changing an ACL
 * entry is not served; predefined ACLs are, through the query parameters of writes.
 */
export function aclRoutes(service: StorageService): Router {
  const router = Router();
  const bucketOf = (req: Request) => {
    const bucket = service.getBucket(pathParam(req, 'bucket'), {});
    assertLegacyAclAllowed(bucket, 'bucket');
    return bucket;
  };
  const objectEntries = (req: Request) => {
    const bucket = service.getBucket(pathParam(req, 'bucket'), {});
    assertLegacyAclAllowed(bucket, 'object');
    return objectAclResources(bucket, service.getObject(objectAddress(req), {}), originOf(req));
  };

  router.get('/b/:bucket/acl', (req, res) => {
    sendResource(req, res, {
      kind: 'storage#bucketAccessControls',
      items: bucketAclResources(bucketOf(req), originOf(req)),
    });
  });
  router.get('/b/:bucket/acl/:entity', (req, res) => {
    sendResource(req, res, entityIn(bucketAclResources(bucketOf(req), originOf(req)), pathParam(req, 'entity')));
  });
  router.get('/b/:bucket/defaultObjectAcl', (req, res) => {
    sendResource(req, res, { kind: 'storage#objectAccessControls', items: defaultObjectAclResources(bucketOf(req)) });
  });
  router.get('/b/:bucket/defaultObjectAcl/:entity', (req, res) => {
    sendResource(req, res, entityIn(defaultObjectAclResources(bucketOf(req)), pathParam(req, 'entity')));
  });
  router.get('/b/:bucket/o/:object/acl', (req, res) => {
    sendResource(req, res, { kind: 'storage#objectAccessControls', items: objectEntries(req) });
  });
  router.get('/b/:bucket/o/:object/acl/:entity', (req, res) => {
    sendResource(req, res, entityIn(objectEntries(req), pathParam(req, 'entity')));
  });
  return router;
}

function entityIn<T extends { entity: string }>(entries: T[], entity: string): T {
  const entry = entries.find((candidate) => candidate.entity === entity);
  if (!entry) throw new StorageApiError(404, 'notFound', 'Not Found');
  return entry;
}

/** `predefinedAcl` (or `destinationPredefinedAcl`) of an object write; refused under uniform bucket-level access. */
export function objectAclParameter(
  req: Request,
  service: StorageService,
  parameter: 'predefinedAcl' | 'destinationPredefinedAcl',
  bucketName: string,
): PredefinedObjectAcl | undefined {
  const acl = parsePredefinedObjectAcl(queryParam(req, parameter), parameter);
  const bucket = service.findBucket(bucketName);
  if (acl !== undefined && bucket) assertLegacyAclAllowed(bucket, 'object');
  return acl;
}

/** `predefinedAcl` and `predefinedDefaultObjectAcl` of a bucket insert or patch. */
export function bucketAclParameters(req: Request): BucketAcls {
  return {
    predefinedAcl: parsePredefinedBucketAcl(queryParam(req, 'predefinedAcl'), 'predefinedAcl'),
    predefinedDefaultObjectAcl: parsePredefinedObjectAcl(
      queryParam(req, 'predefinedDefaultObjectAcl'),
      'predefinedDefaultObjectAcl',
    ),
  };
}
