/** `spine history`: what was written to a network, group or contact, from the event archive. */
import type { HistoryEntry, HistoryPage } from '../../shared/history/history';
import { validateContactId, validateGroupId, validateNetworkId } from '../../shared/ids';
import { withSpine } from '../connection';
import { UsageError } from '../errors';
import { formatCell, printJson, printTable } from '../output';
import { parseCommand } from '../options';

export const HISTORY_USAGE = `usage: spine history <network> [group [contact]] [--since T] [--until T] [--limit N] [--cursor C] [--json]

  Every write to the network (or one group, or one contact) from the event archive, newest first:
  its time, writer, blend mode, content and outcome (changed, unchanged, contradiction), group
  and network saves and deletes included. Writes reach the archive about a second after they
  are made (spine dev's archiver).
  --since T, --until T   only entries at or after / at or before T (ISO 8601, e.g. 2026-12-07T10:42:00Z)
  --limit N              entries per page (default 100, at most 1000)
  --cursor C             the next (older) page, as printed under the previous one`;

function timeFlag(name: string, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw) || Number.isNaN(Date.parse(raw)))
    throw new UsageError(`--${name} must be an ISO 8601 time such as 2026-12-07T10:42:00Z, not ${JSON.stringify(raw)}`);
  return new Date(raw).toISOString();
}

export async function history(argv: string[]): Promise<void> {
  const { positionals, values, common, help } = parseCommand(argv, {
    usage: HISTORY_USAGE,
    positionals: ['network', 'group?', 'contact?'],
    options: {
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
    },
  });
  if (help) return void console.log(HISTORY_USAGE);
  const [network, group, contact] = positionals as [string, string?, string?];
  validateNetworkId(network);
  if (group !== undefined) validateGroupId(group);
  if (contact !== undefined) validateContactId(contact);
  const since = timeFlag('since', values.since);
  const until = timeFlag('until', values.until);
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000))
    throw new UsageError(`--limit must be a whole number from 1 to 1000, not ${JSON.stringify(values.limit)}`);

  const page = await withSpine(common, (spine) =>
    spine.history(network, group, contact, {
      ...(since ? { from: since } : {}),
      ...(until ? { to: until } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(values.cursor !== undefined ? { cursor: values.cursor } : {}),
    }),
  );
  if (common.json) return printJson(page);
  printHistory(page, argv);
}

function where(entry: HistoryEntry): string {
  return [entry.groupId, entry.contactId].filter((part) => part !== undefined).join('/') || '(network)';
}

function what(entry: HistoryEntry): string {
  switch (entry.kind) {
    case 'contact-write':
      return formatCell(entry.content);
    case 'group-saved':
      return '(group saved)';
    case 'group-deleted':
      return '(group deleted)';
    case 'network-saved':
      return '(network saved)';
    case 'network-deleted':
      return '(network deleted)';
  }
}

function printHistory(page: HistoryPage, argv: readonly string[]): void {
  if (page.entries.length === 0) {
    console.log('no history in the archive for this range');
    return;
  }
  printTable(
    ['TIME', 'WHERE', 'WRITER', 'BLEND', 'CONTENT', 'OUTCOME'],
    page.entries.map((entry) => [
      entry.time.toISOString(),
      where(entry),
      entry.writerId,
      entry.blendMode ?? '',
      what(entry),
      entry.outcome,
    ]),
  );
  if (page.cursor) {
    const rest = argv.filter((arg, index) => arg !== '--cursor' && argv[index - 1] !== '--cursor');
    console.log(`older entries: spine history ${rest.join(' ')} --cursor ${page.cursor}`);
  }
}
