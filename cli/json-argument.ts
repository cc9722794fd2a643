/**
 * Values typed on the command line: JSON, then revived by the codec, so the codec's tagged forms
 * (`{"$type":"Set","values":[…]}`, `Map`, `Date`) become the real thing and mergeables
 * (`{"_tag":"GrowSet","values":[…]}`) are stored as Bassline's mergeable collections.
 */
import { decode } from '../shared/codec';
import { BadJsonError } from './errors';

const POSITION = / in JSON at position (\d+)(?: \(line \d+ column \d+\))?$/;
const UNEXPECTED_TOKEN = /^Unexpected token '(.+)', .* is not valid JSON$/s;

export function parseJsonArgument(text: string, what: string): unknown {
  try {
    JSON.parse(text);
  } catch (error) {
    const { position, reason } = locateSyntaxError(text, (error as Error).message);
    const bare = /^[A-Za-z_][\w .:@/-]*$/.test(text) && !['true', 'false', 'null'].includes(text);
    const hint = bare ? ` (to store the string, quote it as JSON: '${JSON.stringify(text)}')` : '';
    throw new BadJsonError(what, position, reason, hint);
  }
  return decode(text);
}

/**
 * Node's messages name the offset for some mistakes and only the token for others; for those,
 * the offset is where a prefix of the text first fails on the same token (the parser stops at
 * the first mistake, so that prefix fails exactly like the whole text).
 */
function locateSyntaxError(text: string, message: string): { position: number; reason: string } {
  const at = POSITION.exec(message);
  if (at) return { position: Number(at[1]), reason: message.replace(POSITION, '') };
  if (message === 'Unexpected end of JSON input') return { position: text.length, reason: 'unexpected end of input' };
  const token = UNEXPECTED_TOKEN.exec(message)?.[1];
  if (token !== undefined) {
    for (let end = 1; end <= text.length; end++) {
      if (text.slice(end - token.length, end) !== token) continue;
      try {
        JSON.parse(text.slice(0, end));
      } catch (error) {
        if (UNEXPECTED_TOKEN.exec((error as Error).message)?.[1] === token) return { position: end - token.length, reason: `unexpected ${JSON.stringify(token)}` };
      }
    }
  }
  return { position: 0, reason: message };
}
