import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { invalid } from '../errors';
import { multipartBoundary, parseMultipart, type MultipartPart } from '../multipart';
import { readBody } from './request';

/** The service's limit on calls in one batch request. */
export const MAX_BATCH_CALLS = 100;

interface InnerRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * `POST /batch/storage/v1`: a multipart/mixed body of `application/http` parts, each one JSON
 * API request. Each is served by this same emulator (over loopback, so it takes exactly the
 * route a direct call would) in order, and the answers come back as a multipart/mixed body
 * whose parts carry `Content-ID: <response-ID>` for the request's `Content-ID: <ID>`.
 */
export async function serveBatch(req: Request, res: Response): Promise<void> {
  const boundary = multipartBoundary(req.get('content-type'), 'mixed');
  if (!boundary) throw invalid('A batch request needs a multipart/mixed content type with a boundary.');
  const parts = parseMultipart(await readBody(req), boundary);
  if (parts.length === 0) throw invalid('A batch request needs at least one part.');
  if (parts.length > MAX_BATCH_CALLS)
    throw invalid(`A batch request can hold at most ${MAX_BATCH_CALLS} calls; this one has ${parts.length}.`);
  const inner = parts.map((part) => ({ contentId: part.headers['content-id'], request: parseInnerRequest(part) }));

  const target = { host: req.socket.localAddress ?? '127.0.0.1', port: req.socket.localPort ?? 0 };
  const answers: Buffer[] = [];
  const responseBoundary = `batch_${randomBytes(12).toString('hex')}`;
  for (const { contentId, request } of inner) {
    const answer = await forward(target, request, req.get('host'));
    const head = [`--${responseBoundary}`, 'Content-Type: application/http'];
    if (contentId) head.push(`Content-ID: ${responseContentId(contentId)}`);
    answers.push(Buffer.from(`${head.join('\r\n')}\r\n\r\n`), answer, Buffer.from('\r\n'));
  }
  answers.push(Buffer.from(`--${responseBoundary}--\r\n`));
  res.status(200).set('Content-Type', `multipart/mixed; boundary=${responseBoundary}`).end(Buffer.concat(answers));
}

/** `<abc+1>` is answered as `<response-abc+1>`. */
function responseContentId(contentId: string): string {
  const bare = contentId.replace(/^<|>$/g, '');
  return `<response-${bare}>`;
}

/** An `application/http` part: request line, headers, empty line, body (CRLF or LF lines). */
function parseInnerRequest(part: MultipartPart): InnerRequest {
  const text = part.body;
  const headEnd = findHeadEnd(text);
  const head = text.subarray(0, headEnd.at).toString('utf8').split(/\r?\n/);
  const requestLine = /^([A-Z]+) (\S+)(?: HTTP\/1\.[01])?$/.exec(head[0]?.trim() ?? '');
  if (!requestLine)
    throw invalid(`A batch part does not start with an HTTP request line: ${JSON.stringify(head[0] ?? '')}`);
  const url = new URL(requestLine[2]!, 'http://batch.invalid');
  if (url.pathname.startsWith('/batch/')) throw invalid('A batch request cannot contain another batch request.');
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = headEnd.next < text.length ? text.subarray(headEnd.next) : Buffer.alloc(0);
  // The part ends with the line break before the next delimiter; a JSON body does not need it.
  if (body.length > 0 && body.toString('latin1').trim() === '') body = Buffer.alloc(0);
  return { method: requestLine[1]!, path: url.pathname + url.search, headers, body };
}

function findHeadEnd(text: Buffer): { at: number; next: number } {
  const crlf = text.indexOf('\r\n\r\n');
  const lf = text.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf <= lf)) return { at: crlf, next: crlf + 4 };
  if (lf >= 0) return { at: lf, next: lf + 2 };
  return { at: text.length, next: text.length };
}

/** Serves one inner request through the emulator's own port and returns it as HTTP/1.1 text. */
function forward(
  target: { host: string; port: number },
  request: InnerRequest,
  host: string | undefined,
): Promise<Buffer> {
  const headers: Record<string, string> = { ...request.headers, 'content-length': String(request.body.length) };
  if (host) headers.host = host;
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      { host: target.host, port: target.port, method: request.method, path: request.path, headers },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('error', reject);
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}`.trimEnd()];
          for (const [name, value] of Object.entries(answer.headers)) {
            if (value === undefined || name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding')
              continue;
            for (const single of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${single}`);
          }
          if (answer.headers['content-length'] === undefined) lines.push(`content-length: ${body.length}`);
          resolve(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]));
        });
      },
    );
    outgoing.on('error', reject);
    outgoing.end(request.body);
  });
}
