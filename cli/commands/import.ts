/** `spine import`: a file written by `spine export` becomes a network of the mesh. */
import { readFile } from 'node:fs/promises';
import { text as readStream } from 'node:stream/consumers';
import { validateNetworkId } from '../../shared/ids';
import { validateNetworkState, DEFAULT_MAX_CONTENT_BYTES } from '../../shared/state-validation';
import { withSpine } from '../connection';
import { CliError, ExitCode, NotFoundError } from '../errors';
import { readNetworkFile } from '../network-file';
import { printJson } from '../output';
import { parseCommand, parseTimeout } from '../options';
import { countContacts, startProgress } from '../progress';

export const IMPORT_USAGE = `usage: spine import <file> [--network ID] [--replace] [--timeout MS]

  Reads a file written by spine export ("-" for stdin), checks all of it, then writes it as
  network --network (default: the network named in the file) through the mesh and waits until
  it is materialized. A network that exists is only replaced with --replace (its groups not in
  the file are removed). Shows a progress bar on stderr for large networks.`;

export async function importNetwork(argv: string[]): Promise<void> {
  const { positionals, values, common, help } = parseCommand(argv, {
    usage: IMPORT_USAGE,
    positionals: ['file'],
    options: { network: { type: 'string' }, replace: { type: 'boolean' }, timeout: { type: 'string' } },
  });
  if (help) return void console.log(IMPORT_USAGE);
  const [file] = positionals as [string];
  const timeoutMs = parseTimeout(values.timeout);
  let text: string;
  try {
    text = file === '-' ? await readStream(process.stdin) : await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`file ${file} does not exist`);
    throw error;
  }
  // Everything is checked before anything is written: a bad file changes nothing.
  const parsed = readNetworkFile(text, file === '-' ? 'stdin' : file);
  const network = validateNetworkId(values.network ?? parsed.network);
  validateNetworkState(parsed.state, DEFAULT_MAX_CONTENT_BYTES);
  const groups = parsed.state.groups.size;
  const contacts = countContacts(parsed.state.groups.values());

  await withSpine(common, async (spine) => {
    if (!values.replace && (await spine.exists(network))) {
      throw new CliError(
        `network ${JSON.stringify(network)} exists: pass --replace to replace it, or --network to import under another id`,
        ExitCode.failed,
      );
    }
    const progress = startProgress(`importing ${network}`, groups, contacts, common.json);
    // Progress is what the mesh announces as materialized, group by group.
    const materialized = new Set<string>();
    const unsubscribe =
      progress &&
      (await spine.subscribe(network, (_state, change) => {
        if (change.kind === 'updated' && parsed.state.groups.has(change.groupId) && !materialized.has(change.groupId)) {
          materialized.add(change.groupId);
          progress.update(materialized.size);
        }
      }));
    try {
      await spine.saveNetworkState(network, parsed.state);
      await spine.flush(timeoutMs);
      progress?.update(groups);
    } finally {
      progress?.stop();
      await unsubscribe?.();
    }
  });
  if (common.json) printJson({ network, groups, contacts, from: file });
  else console.log(`imported ${file} as ${network}: ${groups} groups, ${contacts} contacts`);
}
