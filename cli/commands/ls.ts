/** `spine ls`: the networks, or the groups of one network. */
import { validateNetworkId } from '../../shared/ids';
import type { GroupState } from '../../shared/model';
import { AUTHOR_ATTRIBUTE, TAGS_ATTRIBUTE, TYPE_ATTRIBUTE } from '../../shared/query';
import { SYSTEM_NETWORKS } from '../../shared/health';
import { withState } from '../connection';
import { NotFoundError } from '../errors';
import { formatCell, printJson, printTable } from '../output';
import { parseCommand } from '../options';

export const LS_USAGE = `usage: spine ls [network]

  Without a network: every network (the mesh's own, ${SYSTEM_NETWORKS.join(' and ')}, marked).
  With one: its groups, with their contact and wire counts and query attributes.`;

export async function ls(argv: string[]): Promise<void> {
  const { positionals, common, help } = parseCommand(argv, { usage: LS_USAGE, positionals: ['network?'] });
  if (help) return void console.log(LS_USAGE);
  const [network] = positionals;
  if (network !== undefined) validateNetworkId(network);

  await withState(common, async (store) => {
    if (network === undefined) {
      const networks = (await store.listNetworks()).sort();
      if (common.json) return printJson(networks.map((id) => ({ network: id, system: SYSTEM_NETWORKS.includes(id) })));
      if (networks.length === 0) return void console.log('no networks');
      printTable(
        ['NETWORK', ''],
        networks.map((id) => [id, SYSTEM_NETWORKS.includes(id) ? '(system)' : '']),
      );
      return;
    }
    const state = await store.loadNetworkState(network);
    if (!state) throw new NotFoundError(`network ${JSON.stringify(network)} does not exist`);
    printGroupSummaries([...state.groups.values()], common.json);
  });
}

/** One row per group, or with `json` an array of summaries; `query` prints its matches the same way. */
export function printGroupSummaries(groups: GroupState[], json: boolean): void {
  const sorted = [...groups].sort((a, b) => a.group.id.localeCompare(b.group.id));
  if (json) return printJson(sorted.map(groupSummary));
  if (sorted.length === 0) return void console.log('no groups');
  printTable(
    ['GROUP', 'CONTACTS', 'WIRES', 'AUTHOR', 'TYPE', 'TAGS'],
    sorted.map(({ group, contacts, wires }) => {
      const attributes = group.attributes ?? {};
      const tags = attributes[TAGS_ATTRIBUTE];
      return [
        group.id,
        String(contacts.size),
        String(wires.size),
        attributes[AUTHOR_ATTRIBUTE] === undefined ? '' : String(attributes[AUTHOR_ATTRIBUTE]),
        attributes[TYPE_ATTRIBUTE] === undefined ? '' : String(attributes[TYPE_ATTRIBUTE]),
        tags instanceof Set || Array.isArray(tags)
          ? [...tags].map(String).join(',')
          : tags === undefined
            ? ''
            : formatCell(tags),
      ];
    }),
  );
}

function groupSummary({ group, contacts, wires }: GroupState) {
  return {
    group: group.id,
    name: group.name,
    ...(group.parentId !== undefined ? { parentId: group.parentId } : {}),
    contacts: contacts.size,
    wires: wires.size,
    subgroups: group.subgroupIds.length,
    attributes: group.attributes ?? {},
  };
}
