/** Output of the commands: aligned tables for people, JSON (the codec's tagged form) for programs. */
import { encode } from '../shared/codec';

/** A value as plain JSON data: what `encode` writes, so Map, Set, Date and mergeables keep their tagged form. */
export function toJsonData(value: unknown): unknown {
  return JSON.parse(encode(value));
}

/** Prints a value (Maps, Sets, Dates and all) as one JSON document in the codec's form on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(encode(value) + '\n');
}

/** A value for people: the codec's JSON, indented when it does not fit on one short line. */
export function formatValue(value: unknown, { indent = false } = {}): string {
  const data = toJsonData(value);
  const compact = JSON.stringify(data);
  return indent && compact.length > 80 ? JSON.stringify(data, null, 2) : compact;
}

/** A value as JSON on one line, shortened for a table cell. */
export function formatCell(value: unknown, width = 60): string {
  return truncate(formatValue(value), width);
}

export function truncate(text: string, width = 60): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

/** Prints rows under a header, columns padded to their widest cell. */
export function printTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  process.stdout.write([line(header), ...rows.map(line)].join('\n') + '\n');
}

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
