/** `spine export`: a network as a portable, versioned JSON file (cli/network-file.ts). */
import { validateNetworkId } from '../../shared/ids';
import { withState } from '../connection';
import { NotFoundError } from '../errors';
import { NETWORK_FILE_FORMAT, NETWORK_FILE_VERSION, writeNetworkFile } from '../network-file';
import { printJson } from '../output';
import { parseCommand } from '../options';
import { countContacts, startProgress } from '../progress';

export const EXPORT_USAGE = `usage: spine export <network> [file]

  Writes the network's materialized state to <file> (stdout when absent or "-") in the
  portable format "${NETWORK_FILE_FORMAT}" version ${NETWORK_FILE_VERSION} (docs/cli.md), which
  spine import reads back. Shows a progress bar on stderr for large networks.`;

export async function exportNetwork(argv: string[]): Promise<void> {
  const { positionals, common, help } = parseCommand(argv, { usage: EXPORT_USAGE, positionals: ['network', 'file?'] });
  if (help) return void console.log(EXPORT_USAGE);
  const [network, file] = positionals as [string, string?];
  validateNetworkId(network);
  const toStdout = file === undefined || file === '-';

  await withState(common, async (store) => {
    const state = await store.loadNetworkState(network);
    if (!state) throw new NotFoundError(`network ${JSON.stringify(network)} does not exist`);
    const contacts = countContacts(state.groups.values());
    const progress = startProgress(`exporting ${network}`, state.groups.size, contacts, common.json);
    try {
      await writeNetworkFile(toStdout ? { out: process.stdout } : { file }, network, state, () =>
        progress?.increment(),
      );
    } finally {
      progress?.stop();
    }
    // The summary goes to stderr when the file itself is on stdout.
    const summary = { network, file: toStdout ? '-' : file, groups: state.groups.size, contacts };
    if (toStdout) process.stderr.write(`exported ${network}: ${state.groups.size} groups, ${contacts} contacts\n`);
    else if (common.json) printJson(summary);
    else console.log(`exported ${network} to ${file}: ${state.groups.size} groups, ${contacts} contacts`);
  });
}
