/** `spine put`: one contact write through the mesh. */
import { validateContactId, validateGroupId, validateNetworkId } from '../../shared/ids';
import type { BlendMode } from '../../shared/model';
import { withSpine } from '../connection';
import { UsageError } from '../errors';
import { parseJsonArgument } from '../json-argument';
import { printJson } from '../output';
import { parseCommand, parseTimeout } from '../options';

export const PUT_USAGE = `usage: spine put <network> <group> <contact> <json> [--wait] [--blend-mode accept-last|merge] [--timeout MS]

  Writes <json> to the contact. Returns once Pub/Sub has the write; with --wait, once the
  mesh has materialized it (so a following get sees it). <json> is JSON as typed in a shell
  ('"happy"', 42, '{"mood":"ok"}'); the codec's tagged forms ({"$type":"Set","values":[1]},
  Map, Date) and mergeables ({"_tag":"GrowSet","values":["a"]}) are stored as such.
  A value starting with "-" goes after "--": spine put net g c -- -1`;

const BLEND_MODES: readonly BlendMode[] = ['accept-last', 'merge'];

export async function put(argv: string[]): Promise<void> {
  const { positionals, values, common, help } = parseCommand(argv, {
    usage: PUT_USAGE,
    positionals: ['network', 'group', 'contact', 'json'],
    options: { wait: { type: 'boolean' }, 'blend-mode': { type: 'string' }, timeout: { type: 'string' } },
  });
  if (help) return void console.log(PUT_USAGE);
  const [network, group, contact, text] = positionals as [string, string, string, string];
  // Everything is checked before the mesh is contacted: bad input changes nothing.
  validateNetworkId(network);
  validateGroupId(group);
  validateContactId(contact);
  const blendMode = values['blend-mode'] as BlendMode | undefined;
  if (blendMode !== undefined && !BLEND_MODES.includes(blendMode))
    throw new UsageError(`--blend-mode must be ${BLEND_MODES.join(' or ')}, not ${JSON.stringify(blendMode)}`);
  const timeoutMs = parseTimeout(values.timeout);
  const content = parseJsonArgument(text, 'the value');

  const wait = values.wait ? 'materialized' : 'accepted';
  await withSpine(common, (spine) =>
    spine.saveContactContent(network, group, contact, content, {
      wait,
      ...(blendMode ? { blendMode } : {}),
      ...(timeoutMs ? { timeoutMs } : {}),
    }),
  );
  if (common.json) printJson({ network, group, contact, status: wait });
  else console.log(`${wait} ${network}/${group} ${contact}`);
}
