import { invalid } from './errors';

export interface MultipartPart {
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * The boundary of a `multipart/<subtype>; boundary=...` content type, or undefined. The value
 * may be bare, in double quotes (RFC 2045) or in single quotes, as gcloud and gsutil send it.
 */
export function multipartBoundary(contentType: string | undefined, subtype = 'related'): string | undefined {
  if (!contentType || !new RegExp(`^multipart/${subtype}\\b`, 'i').test(contentType.trim())) return undefined;
  const match = /;\s*boundary=(?:"([^"]+)"|'([^']+)'|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2] ?? match?.[3];
}

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;

/**
 * Splits a multipart body (RFC 2046; RFC 2387 for the JSON API's multipart upload, which
 * sends the object resource as JSON, then the bytes) into its parts. The parsers on npm
 * (dicer, busboy) require CRLF line breaks, but gcloud, gsutil and google-api-python-client
 * send LF, which the service accepts: the line break that ends the first delimiter line sets
 * the style of the whole body. Bodies are binary: this works on Buffers and never decodes data.
 */
export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const dashBoundary = Buffer.from(`--${boundary}`);
  const first = findDelimiter(body, dashBoundary, 0);
  if (first < 0) throw invalid(`Multipart body has no boundary delimiter (--${boundary}).`);
  let position = first + dashBoundary.length;
  if (isCloseDelimiter(body, position)) return [];
  const lineEnd = endOfLine(body, position);
  if (lineEnd === undefined) throw invalid('Multipart body ends after its first boundary delimiter.');
  const lineBreak = body[lineEnd.start] === CR ? '\r\n' : '\n';
  const nextDelimiter = Buffer.from(`${lineBreak}--${boundary}`);
  const headerTerminator = Buffer.from(lineBreak + lineBreak);
  position = lineEnd.next;

  const parts: MultipartPart[] = [];
  for (;;) {
    const headerEnd = startsWith(body, position, lineBreak) ? position : body.indexOf(headerTerminator, position);
    if (headerEnd < 0) throw invalid('Multipart part has no header terminator (an empty line).');
    const headers = parseHeaders(body.subarray(position, headerEnd).toString('utf8'));
    const contentStart = headerEnd === position ? position + lineBreak.length : headerEnd + headerTerminator.length;
    const contentEnd = body.indexOf(nextDelimiter, contentStart);
    if (contentEnd < 0) throw invalid(`Multipart body is not terminated by --${boundary}--.`);
    parts.push({ headers, body: body.subarray(contentStart, contentEnd) });
    position = contentEnd + nextDelimiter.length;
    if (isCloseDelimiter(body, position)) return parts;
    const next = endOfLine(body, position);
    if (next === undefined) throw invalid(`Multipart body is not terminated by --${boundary}--.`);
    position = next.next;
  }
}

/** The first `--boundary` at the start of the body or of a line. */
function findDelimiter(body: Buffer, dashBoundary: Buffer, from: number): number {
  for (let at = body.indexOf(dashBoundary, from); at >= 0; at = body.indexOf(dashBoundary, at + 1)) {
    if (at === 0 || body[at - 1] === LF) return at;
  }
  return -1;
}

function isCloseDelimiter(body: Buffer, position: number): boolean {
  return body[position] === DASH && body[position + 1] === DASH;
}

/** Skips transport padding (spaces, tabs) after a delimiter up to and past its line break. */
function endOfLine(body: Buffer, position: number): { start: number; next: number } | undefined {
  let at = position;
  while (body[at] === 0x20 || body[at] === 0x09) at++;
  if (body[at] === CR && body[at + 1] === LF) return { start: at, next: at + 2 };
  if (body[at] === LF) return { start: at, next: at + 1 };
  return undefined;
}

function startsWith(body: Buffer, position: number, text: string): boolean {
  return body.subarray(position, position + text.length).toString('latin1') === text;
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}
