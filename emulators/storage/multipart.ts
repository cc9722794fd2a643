import { invalid } from './errors';

export interface MultipartPart {
  headers: Record<string, string>;
  body: Buffer;
}

/** The boundary of a `multipart/related; boundary=...` content type, or undefined. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/related\b/i.test(contentType.trim())) return undefined;
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

/**
 * Splits a multipart/related body (RFC 2387) into its parts. The JSON API's multipart upload
 * sends two: the object resource as JSON, then the bytes. Bodies are binary, so this works on
 * Buffers and never decodes the data part.
 */
export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const nextDelimiter = Buffer.from(`\r\n--${boundary}`);
  const parts: MultipartPart[] = [];
  let position = body.indexOf(delimiter);
  if (position < 0) throw invalid('Multipart body has no boundary delimiter.');
  position += delimiter.length;

  for (;;) {
    if (body.subarray(position, position + 2).toString() === '--') return parts;
    position = skipLineBreak(body, position);
    const headerEnd = body.subarray(position, position + 2).toString() === '\r\n' ? position : body.indexOf('\r\n\r\n', position);
    if (headerEnd < 0) throw invalid('Multipart part has no header terminator.');
    const headers = parseHeaders(body.subarray(position, headerEnd).toString('utf8'));
    const contentStart = headerEnd === position ? position + 2 : headerEnd + 4;
    const contentEnd = body.indexOf(nextDelimiter, contentStart);
    if (contentEnd < 0) throw invalid('Multipart body is not terminated.');
    parts.push({ headers, body: body.subarray(contentStart, contentEnd) });
    position = contentEnd + nextDelimiter.length;
  }
}

function skipLineBreak(body: Buffer, position: number): number {
  if (body[position] === 0x0d && body[position + 1] === 0x0a) return position + 2;
  if (body[position] === 0x0a) return position + 1;
  return position;
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}
