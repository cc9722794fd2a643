/**
 * The portable file of `spine export` and `spine import`, version 1:
 *
 *   {
 *     "format": "super-spine/network",
 *     "version": 1,
 *     "exportedAt": "2026-01-01T00:00:00.000Z",
 *     "network": "net",
 *     "rootGroupId": "root",
 *     "currentGroupId": "root",
 *     "groups": [ <GroupState>, ... ]            one per line
 *   }
 *
 * Each group is a `GroupState` ({ group, contacts, wires }) in the codec's JSON (shared/codec.ts):
 * `contacts` and `wires` are `{"$type":"Map","entries":[[id, value], ...]}`, and Map, Set, Date
 * and mergeables inside contents keep their tagged form, so they come back exactly. Contacts
 * leave out `version` (the clock stamps and applied-event logs of the writers that made them):
 * an import is a new write, not a replay of theirs. Readers refuse other formats and versions.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { decode, encode } from '../shared/codec';
import { CorruptDataError } from '../shared/errors';
import type { GroupState, NetworkState } from '../shared/model';
import { parseJson } from './json-argument';

export const NETWORK_FILE_FORMAT = 'super-spine/network';
export const NETWORK_FILE_VERSION = 1;

export interface NetworkFile {
  network: string;
  exportedAt: string;
  state: NetworkState;
}

/**
 * Writes the file group by group (each group is encoded on its own, so a large network is never
 * one string); `onGroup` is called after each. Writes to `out` when given, else to `file`.
 */
export async function writeNetworkFile(
  target: { file: string } | { out: Writable },
  network: string,
  state: NetworkState,
  onGroup: () => void = () => undefined,
): Promise<void> {
  const out = 'out' in target ? target.out : createWriteStream(target.file);
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  const header = {
    format: NETWORK_FILE_FORMAT,
    version: NETWORK_FILE_VERSION,
    exportedAt: new Date().toISOString(),
    network,
    rootGroupId: state.rootGroupId,
    currentGroupId: state.currentGroupId,
  };
  await write(JSON.stringify(header).slice(0, -1) + ',\n"groups":[');
  let first = true;
  for (const groupState of state.groups.values()) {
    await write(`${first ? '\n' : ',\n'}${encode(groupState)}`);
    first = false;
    onGroup();
  }
  await write('\n]}\n');
  if ('file' in target) {
    out.end();
    await once(out, 'finish');
  }
}

/** Reads and checks a file's text; `what` names it in errors. Every mistake is a typed error (bad JSON names the position). */
export function readNetworkFile(text: string, what: string): NetworkFile {
  const parsed = parseJson(text, what) as Record<string, unknown> | null;
  const corrupt = (problem: string) => new CorruptDataError(`${what} is not a Super Spine network file: ${problem}`);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw corrupt('expected a JSON object');
  if (parsed.format !== NETWORK_FILE_FORMAT)
    throw corrupt(`"format" is ${JSON.stringify(parsed.format)}, expected ${JSON.stringify(NETWORK_FILE_FORMAT)}`);
  if (parsed.version !== NETWORK_FILE_VERSION)
    throw corrupt(
      `version ${JSON.stringify(parsed.version)} is not supported (this spine reads version ${NETWORK_FILE_VERSION})`,
    );
  if (typeof parsed.network !== 'string') throw corrupt('"network" must be a string');
  if (typeof parsed.rootGroupId !== 'string' || typeof parsed.currentGroupId !== 'string')
    throw corrupt('"rootGroupId" and "currentGroupId" must be strings');
  if (!Array.isArray(parsed.groups)) throw corrupt('"groups" must be an array');
  const groups = new Map<string, GroupState>();
  parsed.groups.forEach((entry, index) => {
    // The codec revives the tagged Maps; a group that does not decode is named by its place.
    let state: GroupState;
    try {
      state = decode<GroupState>(JSON.stringify(entry));
    } catch (error) {
      throw corrupt(`groups[${index}]: ${(error as Error).message}`);
    }
    const id = state?.group?.id;
    if (typeof id !== 'string') throw corrupt(`groups[${index}] has no group.id`);
    if (groups.has(id)) throw corrupt(`group ${JSON.stringify(id)} appears twice`);
    groups.set(id, state);
  });
  return {
    network: parsed.network,
    exportedAt: String(parsed.exportedAt ?? ''),
    state: { groups, rootGroupId: parsed.rootGroupId, currentGroupId: parsed.currentGroupId },
  };
}
