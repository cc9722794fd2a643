/**
 * Values typed on the command line: JSON, then revived by the codec, so the codec's tagged forms
 * (`{"$type":"Set","values":[…]}`, `Map`, `Date`) become the real thing and mergeables
 * (`{"_tag":"GrowSet","values":[…]}`) are stored as Bassline's mergeable collections.
 */
import { decode, jsonTextDepth, MAX_TEXT_DEPTH } from '../shared/codec';
import { MAX_CONTENT_DEPTH } from '../shared/state-validation';
import { BadJsonError, CliError, ExitCode } from './errors';

const POSITION = / in JSON at position (\d+)(?: \(line \d+ column \d+\))?$/;
const MAX_SCANNED_LENGTH = 256 * 1024;
const UNEXPECTED_TOKEN = /^Unexpected token '(.+)', .* is not valid JSON$/s;

export function parseJsonArgument(text: string, what: string): unknown {
  parseJson(text, what);
  return decode(text);
}

/** A value nesting deeper than the codec reads is refused before anything walks it (no stack overflow). */
function checkDepth(text: string, what: string): void {
  const depth = jsonTextDepth(text, MAX_TEXT_DEPTH);
  if (depth > MAX_TEXT_DEPTH)
    throw new CliError(
      `${what} nests more than ${MAX_TEXT_DEPTH} levels deep; values may nest at most ${MAX_CONTENT_DEPTH} levels`,
      ExitCode.invalidValue,
    );
}

/** `JSON.parse`, with a `BadJsonError` that names what was parsed and where it went wrong. */
export function parseJson(text: string, what: string): unknown {
  checkDepth(text, what);
  try {
    return JSON.parse(text);
  } catch (error) {
    const { position, reason } = locateSyntaxError(text, (error as Error).message);
    const bare = /^[A-Za-z_][\w .:@/-]*$/.test(text) && !['true', 'false', 'null'].includes(text);
    const hint = bare ? ` (to store the string, quote it as JSON: '${JSON.stringify(text)}')` : '';
    throw new BadJsonError(what, position, reason, hint);
  }
}

/**
 * Node's messages name the offset for some mistakes and only the token for others; for those,
 * the offset is where a prefix of the text first fails on the same token (the parser stops at
 * the first mistake, so that prefix fails exactly like the whole text).
 */
function locateSyntaxError(text: string, message: string): { position: number | undefined; reason: string } {
  const at = POSITION.exec(message);
  if (at) return { position: Number(at[1]), reason: message.replace(POSITION, '') };
  if (message === 'Unexpected end of JSON input') return { position: text.length, reason: 'unexpected end of input' };
  const token = UNEXPECTED_TOKEN.exec(message)?.[1];
  // Each try parses a prefix: bounded so a huge file with a mistake is not parsed thousands of times.
  if (token !== undefined && text.length <= MAX_SCANNED_LENGTH) {
    for (let end = 1; end <= text.length; end++) {
      if (text.slice(end - token.length, end) !== token) continue;
      try {
        JSON.parse(text.slice(0, end));
      } catch (error) {
        if (UNEXPECTED_TOKEN.exec((error as Error).message)?.[1] === token)
          return { position: end - token.length, reason: `unexpected ${JSON.stringify(token)}` };
      }
    }
  }
  return { position: undefined, reason: message };
}
