/** `spine get`: a contact's value, a group's contacts, or a network's groups, as materialized. */
import { validateContactId, validateGroupId, validateNetworkId } from '../../shared/ids';
import type { GroupState, NetworkState } from '../../shared/model';
import { withState } from '../connection';
import { NotFoundError } from '../errors';
import { formatCell, formatValue, printJson, printTable } from '../output';
import { parseCommand } from '../options';

export const GET_USAGE = `usage: spine get <network> [group [contact]]

  With a contact: its value (JSON; --json prints it on one line).
  With a group: its contacts and their values. With only a network: its groups.
  Reads the materialized state: a write made without --wait may not be there yet.`;

export async function get(argv: string[]): Promise<void> {
  const { positionals, common, help } = parseCommand(argv, {
    usage: GET_USAGE,
    positionals: ['network', 'group?', 'contact?'],
  });
  if (help) return void console.log(GET_USAGE);
  const [network, group, contact] = positionals as [string, string?, string?];
  validateNetworkId(network);
  if (group !== undefined) validateGroupId(group);
  if (contact !== undefined) validateContactId(contact);

  await withState(common, async (store) => {
    if (group === undefined) {
      const state = await store.loadNetworkState(network);
      if (!state) throw new NotFoundError(`network ${JSON.stringify(network)} does not exist`);
      if (common.json) printJson(state);
      else printNetwork(network, state);
      return;
    }
    const state = await store.loadGroupState(network, group);
    if (contact === undefined) {
      if (!state)
        throw new NotFoundError(`group ${JSON.stringify(group)} of network ${JSON.stringify(network)} does not exist`);
      if (common.json) printJson(state);
      else printGroup(state);
      return;
    }
    const found = state?.contacts.get(contact);
    if (!found) throw new NotFoundError(`contact ${JSON.stringify(contact)} of ${network}/${group} does not exist`);
    if (common.json) printJson(found.content);
    else console.log(formatValue(found.content, { indent: true }));
  });
}

function printNetwork(network: string, state: NetworkState): void {
  console.log(
    `network ${network}: ${state.groups.size} groups (root ${state.rootGroupId}, current ${state.currentGroupId})`,
  );
  if (state.groups.size === 0) return;
  printTable(
    ['GROUP', 'CONTACTS', 'WIRES', 'SUBGROUPS', 'ATTRIBUTES'],
    [...state.groups.values()].map((g) => [
      g.group.id,
      String(g.contacts.size),
      String(g.wires.size),
      String(g.group.subgroupIds.length),
      g.group.attributes ? formatCell(g.group.attributes) : '',
    ]),
  );
}

function printGroup(state: GroupState): void {
  const attributes =
    state.group.attributes && Object.keys(state.group.attributes).length > 0
      ? `, attributes ${formatCell(state.group.attributes)}`
      : '';
  console.log(`group ${state.group.id}: ${state.contacts.size} contacts, ${state.wires.size} wires${attributes}`);
  if (state.contacts.size === 0) return;
  printTable(
    ['CONTACT', 'BLEND', 'VALUE'],
    [...state.contacts.values()].map((c) => [
      c.id,
      c.blendMode,
      formatCell(c.content) + (c.lastContradiction ? `  (contradiction: ${c.lastContradiction.message})` : ''),
    ]),
  );
}
