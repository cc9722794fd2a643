/** `spine query`: the groups of a network that match the query conventions. */
import { validateNetworkId } from '../../shared/ids';
import type { GroupQuery } from '../../shared/model';
import { withState } from '../connection';
import { UsageError } from '../errors';
import { parseCommand } from '../options';
import { printGroupSummaries } from './ls';

export const QUERY_USAGE = `usage: spine query <network> [--tag T]... [--author A] [--type T] [--attr KEY=VALUE]...

  Groups carrying every --tag (attribute bassline.tags), by --author (bassline.author), of
  --type (bassline.type), and with each --attr equal. VALUE is read as JSON when it is JSON
  (--attr level=3, --attr 'pair=[1,2]') and as a string otherwise (--attr owner=alice).
  Without criteria every group matches.`;

export async function query(argv: string[]): Promise<void> {
  const { positionals, values, common, help } = parseCommand(argv, {
    usage: QUERY_USAGE,
    positionals: ['network'],
    options: {
      tag: { type: 'string', multiple: true },
      author: { type: 'string' },
      type: { type: 'string' },
      attr: { type: 'string', multiple: true },
    },
  });
  if (help) return void console.log(QUERY_USAGE);
  const [network] = positionals as [string];
  validateNetworkId(network);
  const groupQuery: GroupQuery = {
    ...(values.tag ? { tags: values.tag } : {}),
    ...(values.author !== undefined ? { author: values.author } : {}),
    ...(values.type !== undefined ? { type: values.type } : {}),
    ...(values.attr ? { attributes: parseAttributes(values.attr) } : {}),
  };
  await withState(common, async (store) =>
    printGroupSummaries(await store.queryGroups(network, groupQuery), common.json),
  );
}

export function parseAttributes(pairs: string[]): Record<string, unknown> {
  const attributes: Record<string, unknown> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw new UsageError(`--attr takes KEY=VALUE, not ${JSON.stringify(pair)}`);
    const raw = pair.slice(equals + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // Not JSON: the text itself, so a shell user need not quote plain strings.
    }
    attributes[pair.slice(0, equals)] = value;
  }
  return attributes;
}
