import { Router, json, type Request, type Response } from 'express';
import { invalid } from '../errors';
import { objectAclParameter } from './acl-routes';
import { parsePreconditions } from '../preconditions';
import { objectResource } from '../resources';
import type { ObjectAddress, RewriteRequest, StorageService } from '../service';
import { sendMedia } from './media';
import { jsonBody, originOf, pathParam, queryFlag, queryInteger, queryMaxResults, queryParam } from './request';
import { sendResource } from './responses';

/**
 * JSON API objects: list, get (metadata or `alt=media`), patch/update, delete, compose,
 * rewrite, copy and move. Names arrive URL-encoded as one path segment (`a%2Fb`), as the JSON
 * API requires; `/o/a/b` is not the object "a/b" (it would hide sub-resources such as `/acl`).
 */
export function objectRoutes(service: StorageService): Router {
  const router = Router();
  const parseJson = json({ type: () => true, limit: '10mb' });

  router.get('/b/:bucket/o', (req, res) => {
    const listing = service.listObjects(pathParam(req, 'bucket'), {
      prefix: queryParam(req, 'prefix'),
      delimiter: queryParam(req, 'delimiter'),
      startOffset: queryParam(req, 'startOffset'),
      endOffset: queryParam(req, 'endOffset'),
      pageToken: queryParam(req, 'pageToken'),
      maxResults: queryMaxResults(req),
      versions: queryFlag(req, 'versions'),
      includeTrailingDelimiter: queryFlag(req, 'includeTrailingDelimiter'),
      matchGlob: queryParam(req, 'matchGlob'),
    });
    const origin = originOf(req);
    sendResource(req, res, {
      kind: 'storage#objects',
      ...(listing.items.length > 0 && {
        items: listing.items.map((object) => objectResource(object, origin, service.findBucket(object.bucket))),
      }),
      ...(listing.prefixes.length > 0 && { prefixes: listing.prefixes }),
      ...(listing.nextPageToken && { nextPageToken: listing.nextPageToken }),
    });
  });

  router.post('/b/:bucket/o/:object/compose', parseJson, async (req, res) => {
    const body = jsonBody(req) ?? {};
    const object = await service.composeObject({
      bucket: pathParam(req, 'bucket'),
      name: pathParam(req, 'object'),
      destination: asObject(body.destination, 'destination'),
      sources: composeSources(body.sourceObjects),
      preconditions: parsePreconditions(req.query),
      predefinedAcl: objectAclParameter(req, service, 'destinationPredefinedAcl', pathParam(req, 'bucket')),
    });
    sendResource(req, res, objectResource(object, originOf(req), service.findBucket(object.bucket)));
  });

  router.post(
    '/b/:bucket/o/:object/rewriteTo/b/:destinationBucket/o/:destinationObject',
    parseJson,
    async (req, res) => {
      const object = await service.rewriteObject(rewriteRequest(req, service));
      sendResource(req, res, {
        kind: 'storage#rewriteResponse',
        totalBytesRewritten: String(object.size),
        objectSize: String(object.size),
        done: true,
        resource: objectResource(object, originOf(req), service.findBucket(object.bucket)),
      });
    },
  );

  router.post('/b/:bucket/o/:object/copyTo/b/:destinationBucket/o/:destinationObject', parseJson, async (req, res) => {
    const object = await service.rewriteObject(rewriteRequest(req, service));
    sendResource(req, res, objectResource(object, originOf(req), service.findBucket(object.bucket)));
  });

  router.post('/b/:bucket/o/:object/moveTo/o/:destinationObject', parseJson, async (req, res) => {
    const object = await service.moveObject(rewriteRequest(req, service));
    sendResource(req, res, objectResource(object, originOf(req), service.findBucket(object.bucket)));
  });

  const get = async (req: Request, res: Response) => {
    const address = objectAddress(req);
    if (queryParam(req, 'alt') === 'media') {
      await sendMedia(req, res, service, address);
      return;
    }
    const object = service.getObject(address, parsePreconditions(req.query));
    sendResource(req, res, objectResource(object, originOf(req), service.findBucket(object.bucket)));
  };
  // PUT (update) is treated as a patch: fields not given are kept.
  const patch = async (req: Request, res: Response) => {
    const address = objectAddress(req);
    const acl = objectAclParameter(req, service, 'predefinedAcl', address.bucket);
    const object = await service.patchObject(address, jsonBody(req) ?? {}, parsePreconditions(req.query), acl);
    sendResource(req, res, objectResource(object, originOf(req), service.findBucket(object.bucket)));
  };
  const remove = async (req: Request, res: Response) => {
    await service.deleteObject(objectAddress(req), parsePreconditions(req.query));
    res.status(204).end();
  };

  router.get('/b/:bucket/o/:object', get);
  router.patch('/b/:bucket/o/:object', parseJson, patch);
  router.put('/b/:bucket/o/:object', parseJson, patch);
  router.delete('/b/:bucket/o/:object', remove);
  return router;
}

export function objectAddress(req: Request): ObjectAddress {
  const generation = queryInteger(req, 'generation');
  return {
    bucket: pathParam(req, 'bucket'),
    name: pathParam(req, 'object'),
    ...(generation !== undefined && { generation }),
  };
}

function rewriteRequest(req: Request, service: StorageService): RewriteRequest {
  const sourceGeneration = queryInteger(req, 'sourceGeneration');
  const bucket = pathParam(req, 'bucket');
  const destinationBucket = req.params.destinationBucket === undefined ? bucket : pathParam(req, 'destinationBucket');
  const predefinedAcl = objectAclParameter(req, service, 'destinationPredefinedAcl', destinationBucket);
  return {
    source: {
      bucket,
      name: pathParam(req, 'object'),
      ...(sourceGeneration !== undefined && { generation: sourceGeneration }),
    },
    sourcePreconditions: parsePreconditions(req.query, 'source'),
    destination: { bucket: destinationBucket, name: pathParam(req, 'destinationObject') },
    destinationPreconditions: parsePreconditions(req.query),
    overrides: jsonBody(req),
    ...(predefinedAcl !== undefined && { predefinedAcl }),
  };
}

function composeSources(value: unknown): Array<{ name: string; generation?: number; ifGenerationMatch?: number }> {
  if (!Array.isArray(value)) return [];
  return value.map((entry: unknown) => {
    const source = asObject(entry, 'sourceObjects[]') ?? {};
    if (typeof source.name !== 'string' || source.name === '') throw invalid('Every source object needs a name.');
    const generation = optionalInteger(source.generation, 'sourceObjects[].generation');
    const ifGenerationMatch = optionalInteger(
      asObject(source.objectPreconditions, 'objectPreconditions')?.ifGenerationMatch,
      'objectPreconditions.ifGenerationMatch',
    );
    return {
      name: source.name,
      ...(generation !== undefined && { generation }),
      ...(ifGenerationMatch !== undefined && { ifGenerationMatch }),
    };
  });
}

function asObject(value: unknown, what: string): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(`Invalid value for ${what}.`);
  return value as Record<string, unknown>;
}

/** int64 fields may arrive as JSON numbers or strings. */
function optionalInteger(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const number = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number))
    throw invalid(`Invalid value for ${what}: ${String(value)}`);
  return number;
}
