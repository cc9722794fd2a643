import { Router, type Request, type Response } from 'express';
import { invalid, parseError, required } from '../errors';
import { parseGoogHash, type ProvidedHashes } from '../hashes';
import type { WritableObjectFields } from '../model';
import { multipartBoundary, parseMultipart } from '../multipart';
import { objectAclParameter } from './acl-routes';
import { pickWritableFields } from '../object-fields';
import { parsePreconditions } from '../preconditions';
import { parseUploadRange } from '../ranges';
import { objectResource } from '../resources';
import type { StorageService } from '../service';
import { originOf, pathParam, queryParam, readBody } from './request';
import { sendResource } from './responses';

/**
 * The upload endpoint (`/upload/storage/v1/b/:bucket/o`): `uploadType=media` and `multipart`
 * in one request; `resumable` opens a session whose URI (`...&upload_id=`) then takes the
 * bytes in one or more PUTs with `Content-Range`, answering 308 with `Range` until complete.
 */
export function uploadRoutes(service: StorageService): Router {
  const router = Router();

  router.post('/b/:bucket/o', async (req, res) => {
    if (queryParam(req, 'upload_id')) return receiveChunk(req, res, service);
    const uploadType = queryParam(req, 'uploadType');
    switch (uploadType) {
      case 'media':
        return insertMedia(req, res, service);
      case 'multipart':
        return insertMultipart(req, res, service);
      case 'resumable':
        return startResumable(req, res, service);
      case undefined:
        throw required('uploadType');
      default:
        throw invalid(`Invalid value for uploadType: ${uploadType}`);
    }
  });
  router.put('/b/:bucket/o', (req, res) => receiveChunk(req, res, service));
  router.delete('/b/:bucket/o', async (req, res) => {
    await service.uploads.cancel(uploadId(req));
    res.status(499).end();
  });

  return router;
}

async function insertMedia(req: Request, res: Response, service: StorageService): Promise<void> {
  const data = await readBody(req);
  const contentType = req.get('content-type');
  const object = await service.insertObject({
    bucket: pathParam(req, 'bucket'),
    name: objectName(req, undefined),
    data,
    fields: { ...(contentType && { contentType }), ...aclField(req, service) },
    preconditions: parsePreconditions(req.query),
    providedHashes: parseGoogHash(req.headers['x-goog-hash']),
  });
  sendResource(req, res, objectResource(object, originOf(req), service.findBucket(object.bucket)));
}

async function insertMultipart(req: Request, res: Response, service: StorageService): Promise<void> {
  const boundary = multipartBoundary(req.get('content-type'));
  if (!boundary) throw invalid('A multipart upload needs a multipart/related content type with a boundary.');
  const [metadataPart, dataPart] = parseMultipart(await readBody(req), boundary);
  if (!metadataPart || !dataPart) throw invalid('A multipart upload needs a metadata part and a data part.');
  const metadata = parseJsonObject(metadataPart.body);
  const fields = { ...pickWritableFields(metadata), ...aclField(req, service) };
  const dataType = dataPart.headers['content-type'];
  if (!fields.contentType && dataType) fields.contentType = dataType;
  const object = await service.insertObject({
    bucket: pathParam(req, 'bucket'),
    name: objectName(req, metadata),
    data: dataPart.body,
    fields,
    preconditions: parsePreconditions(req.query),
    providedHashes: { ...hashesIn(metadata), ...parseGoogHash(req.headers['x-goog-hash']) },
  });
  sendResource(req, res, objectResource(object, originOf(req), service.findBucket(object.bucket)));
}

async function startResumable(req: Request, res: Response, service: StorageService): Promise<void> {
  const body = await readBody(req);
  const metadata = body.length > 0 ? parseJsonObject(body) : {};
  const fields: WritableObjectFields = { ...pickWritableFields(metadata), ...aclField(req, service) };
  const announcedType = req.get('x-upload-content-type');
  if (!fields.contentType && announcedType) fields.contentType = announcedType;
  const declaredSize = parseDeclaredSize(req.get('x-upload-content-length'));
  const bucket = pathParam(req, 'bucket');
  const name = objectName(req, metadata);
  const id = await service.startUpload({
    bucket,
    name,
    fields,
    preconditions: parsePreconditions(req.query),
    providedHashes: hashesIn(metadata),
    ...(declaredSize !== undefined && { declaredSize }),
  });
  const sessionUri =
    `${originOf(req)}${req.baseUrl}/b/${encodeURIComponent(bucket)}/o` +
    `?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
  res.status(200).set({ Location: sessionUri, 'X-GUploader-UploadID': id, 'Content-Length': '0' }).end();
}

async function receiveChunk(req: Request, res: Response, service: StorageService): Promise<void> {
  const id = uploadId(req);
  const body = await readBody(req);
  const range = parseUploadRange(req.get('content-range'), body.length);
  const outcome = await service.uploads.receive(id, range, body, parseGoogHash(req.headers['x-goog-hash']));
  if (outcome.status === 'complete') {
    sendResource(req, res, objectResource(outcome.object, originOf(req), service.findBucket(outcome.object.bucket)));
    return;
  }
  // 308 "Resume Incomplete": Range names the bytes stored so far (none: no header).
  res.status(308).set('Content-Length', '0');
  if (outcome.received > 0) res.set('Range', `bytes=0-${outcome.received - 1}`);
  res.end();
}

function aclField(req: Request, service: StorageService): WritableObjectFields {
  const predefinedAcl = objectAclParameter(req, service, 'predefinedAcl', pathParam(req, 'bucket'));
  return predefinedAcl === undefined ? {} : { predefinedAcl };
}

function uploadId(req: Request): string {
  const id = queryParam(req, 'upload_id');
  if (!id) throw required('upload_id');
  return id;
}

/** The `name` query parameter wins over the name in the metadata, as in the service. */
function objectName(req: Request, metadata: Record<string, unknown> | undefined): string {
  const name = queryParam(req, 'name') ?? metadata?.name;
  if (typeof name !== 'string' || name === '') throw required('name');
  return name;
}

function hashesIn(metadata: Record<string, unknown>): ProvidedHashes {
  return {
    ...(typeof metadata.crc32c === 'string' && { crc32c: metadata.crc32c }),
    ...(typeof metadata.md5Hash === 'string' && { md5Hash: metadata.md5Hash }),
  };
}

function parseJsonObject(body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw parseError();
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid('The object metadata must be a JSON object.');
  return value as Record<string, unknown>;
}

function parseDeclaredSize(header: string | undefined): number | undefined {
  if (header === undefined || header === '') return undefined;
  if (!/^\d+$/.test(header)) throw invalid(`Invalid X-Upload-Content-Length: ${header}`);
  return Number(header);
}
