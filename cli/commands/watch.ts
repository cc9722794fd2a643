/** `spine watch`: every change under a path, as it is announced, until Ctrl-C or SIGTERM. */
import { parsePath } from '../../shared/ids';
import type { GroupChange, GroupState } from '../../shared/model';
import { withSpine } from '../connection';
import { formatValue, printJson, truncate } from '../output';
import { parseCommand } from '../options';

export const WATCH_USAGE = `usage: spine watch <path>

  Prints every change of a group at or below <path> (network, or network/group-prefix) as the
  mesh announces it: one line per change (--json: one JSON object per line), until Ctrl-C or
  SIGTERM, which remove the subscription and exit 0. "watching …" on stderr says it is live.`;

export async function watch(argv: string[]): Promise<void> {
  const { positionals, common, help } = parseCommand(argv, { usage: WATCH_USAGE, positionals: ['path'] });
  if (help) return void console.log(WATCH_USAGE);
  const [path] = positionals as [string];
  parsePath(path);

  // Listening before subscribing: a signal during set-up still ends the watch cleanly.
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  await withSpine(common, async (spine) => {
    const unsubscribe = await spine.subscribe(path, (state, change) => printChange(state, change, common.json));
    process.stderr.write(`watching ${path} (Ctrl-C stops)\n`);
    const signal = await stopped;
    await unsubscribe();
    process.stderr.write(`stopped watching ${path} (${signal})\n`);
  });
}

function printChange(state: GroupState | null, change: GroupChange, json: boolean): void {
  if (json) {
    printJson({
      time: change.time.toISOString(),
      kind: change.kind,
      network: change.networkId,
      group: change.groupId,
      path: change.path,
      state,
    });
    return;
  }
  const contacts = state ? [...state.contacts.values()].map((c) => `${c.id}=${formatValue(c.content)}`).join(' ') : '';
  console.log(truncate(`${change.time.toISOString()}  ${change.kind.padEnd(7)}  ${change.path}  ${contacts}`, 200));
}
