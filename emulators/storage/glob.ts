import { invalid } from './errors';

/**
 * `matchGlob` of object listings: `*` matches within one path segment, `**` across `/`,
 * `?` one character (not `/`), `[abc]` / `[!abc]` a set, `{a,b}` alternatives.
 */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  let alternatives = 0;
  for (let i = 0; i < glob.length; i++) {
    const char = glob.charAt(i);
    if (char === '*') {
      if (glob.charAt(i + 1) === '*') {
        // `**/` also matches no directory at all.
        if (glob.charAt(i + 2) === '/') {
          source += '(?:.*/)?';
          i += 2;
        } else {
          source += '.*';
          i += 1;
        }
      } else {
        source += '[^/]*';
      }
    } else if (char === '?') {
      source += '[^/]';
    } else if (char === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) throw invalid(`Invalid matchGlob: ${glob}`);
      let set = glob.slice(i + 1, close);
      if (set.startsWith('!')) set = `^${set.slice(1)}`;
      source += `[${set.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else if (char === '{') {
      alternatives++;
      source += '(?:';
    } else if (char === '}' && alternatives > 0) {
      alternatives--;
      source += ')';
    } else if (char === ',' && alternatives > 0) {
      source += '|';
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  if (alternatives > 0) throw invalid(`Invalid matchGlob: ${glob}`);
  return new RegExp(`^${source}$`, 's');
}
