import type { Request } from 'express';
import { invalid, required } from '../errors';
import { parseInteger } from '../preconditions';

/** One path parameter; a `*name` wildcard (express 5 gives its segments as an array) is joined with `/`. */
export function pathParam(req: Request, name: string): string {
  const value = req.params[name];
  if (Array.isArray(value)) return value.join('/');
  if (value === undefined || value === '') throw required(name);
  return value;
}

/** One query parameter as a string (the first, if repeated). */
export function queryParam(req: Request, name: string): string | undefined {
  const value = (req.query as Record<string, unknown>)[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : undefined;
}

export function queryInteger(req: Request, name: string): number | undefined {
  return parseInteger(req.query as Record<string, unknown>, name);
}

/** A boolean query parameter; gcloud and gsutil send Python's `True`, so case does not matter. */
export function queryFlag(req: Request, name: string): boolean {
  const value = queryParam(req, name);
  return value !== undefined && /^(true|1|)$/i.test(value);
}

/** maxResults: a positive integer (the listing caps it at 1000). */
export function queryMaxResults(req: Request): number | undefined {
  const value = queryInteger(req, 'maxResults');
  if (value !== undefined && value < 1) throw invalid(`Invalid value for maxResults: ${value}`);
  return value;
}

/** The JSON body as an object (absent or empty → undefined). */
export function jsonBody(req: Request): Record<string, unknown> | undefined {
  const body: unknown = req.body;
  if (body === undefined || body === null || (Buffer.isBuffer(body) && body.length === 0)) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw invalid('The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

/** Reads the whole request body; uploads are staged in memory before they are committed. */
export async function readBody(req: Request): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    chunks.push(buffer);
    size += buffer.length;
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/** How clients reached this emulator, for self links and session URIs (`http://host:port`). */
export function originOf(req: Request): string {
  return `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}
