import { isMergeable } from '../shared/mergeable';

/** Longest preview sent to the page; contents of any size stay cheap to ship and render. */
export const MAX_PREVIEW_CHARS = 500;
const MAX_DEPTH = 6;
const MAX_ITEMS = 50;

/**
 * A one-line, human-readable rendering of a contact's content as the codec decodes it:
 * JSON for plain values, `Map{k: v}`, `Set[…]`, `Date(iso)` and mergeables by their kind
 * (`GrowSet[…]`). Cut at `maxChars` with `…`. The page shows it as text, never as markup.
 */
export function previewValue(value: unknown, maxChars = MAX_PREVIEW_CHARS): string {
  const out: string[] = [];
  let length = 0;
  const emit = (text: string) => {
    out.push(text);
    length += text.length;
  };
  const full = () => length > maxChars;

  const list = (open: string, close: string, items: Iterable<unknown>, each: (item: unknown) => void) => {
    emit(open);
    let index = 0;
    for (const item of items) {
      if (full()) break;
      if (index > 0) emit(', ');
      if (index === MAX_ITEMS) {
        emit('…');
        break;
      }
      each(item);
      index += 1;
    }
    emit(close);
  };

  const mapEntries = (open: string, map: Map<unknown, unknown>, depth: number) =>
    list(open, '}', map, (entry) => {
      const [key, item] = entry as [unknown, unknown];
      walk(key, depth + 1);
      emit(': ');
      walk(item, depth + 1);
    });

  const walk = (current: unknown, depth: number): void => {
    if (full()) return;
    if (current === undefined) return emit('undefined');
    if (current === null || typeof current === 'boolean' || typeof current === 'string')
      return emit(JSON.stringify(current));
    if (typeof current === 'number') return emit(Object.is(current, -0) ? '-0' : String(current));
    if (typeof current !== 'object') return emit(String(current));
    if (depth >= MAX_DEPTH) return emit('…');
    if (current instanceof Date)
      return emit(`Date(${Number.isNaN(current.getTime()) ? 'invalid' : current.toISOString()})`);
    if (isMergeable(current)) {
      const tagged = current as {
        _tag: string;
        values?: Set<unknown>;
        items?: unknown[];
        entries?: Map<unknown, unknown>;
      };
      if (tagged.entries instanceof Map) return mapEntries(`${tagged._tag}{`, tagged.entries, depth);
      return list(`${tagged._tag}[`, ']', tagged.values ?? tagged.items ?? [], (item) => walk(item, depth + 1));
    }
    if (current instanceof Map) return mapEntries('Map{', current, depth);
    if (current instanceof Set) return list('Set[', ']', current, (item) => walk(item, depth + 1));
    if (Array.isArray(current)) return list('[', ']', current, (item) => walk(item, depth + 1));
    return list('{', '}', Object.entries(current), (entry) => {
      const [key, item] = entry as [string, unknown];
      emit(JSON.stringify(key));
      emit(': ');
      walk(item, depth + 1);
    });
  };

  walk(value, 0);
  const text = out.join('');
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}
