/** `spine snapshot create|list|show|restore|delete`: immutable copies of a network. */
import { validateNetworkId, validateSnapshotId } from '../../shared/ids';
import { withSpine, withState } from '../connection';
import { UsageError } from '../errors';
import { formatBytes, printJson, printTable } from '../output';
import { parseCommand } from '../options';
import { printGroupSummaries } from './ls';

export const SNAPSHOT_USAGE = `usage: spine snapshot <create|list|show|restore|delete> <network> [snapshot] [--label L]

  snapshot create <network> [--label L]   snapshot the network once every write so far is in; prints the id
  snapshot list <network>                 the network's snapshots, newest first
  snapshot show <network> <snapshot>      what a snapshot holds (--json: the whole state)
  snapshot restore <network> <snapshot>   put the snapshot back as the live network (groups not in it are removed)
  snapshot delete <network> <snapshot>    delete a snapshot`;

const ACTIONS = ['create', 'list', 'show', 'restore', 'delete'] as const;
type Action = (typeof ACTIONS)[number];

export async function snapshot(argv: string[]): Promise<void> {
  const { positionals, values, common, help } = parseCommand(argv, {
    usage: SNAPSHOT_USAGE,
    positionals: ['action', 'network', 'snapshot?'],
    options: { label: { type: 'string' } },
  });
  if (help) return void console.log(SNAPSHOT_USAGE);
  const [action, network, snapshotId] = positionals as [string, string, string?];
  if (!ACTIONS.includes(action as Action))
    throw new UsageError(`unknown snapshot action ${JSON.stringify(action)}: expected ${ACTIONS.join(', ')}`);
  validateNetworkId(network);
  const needsId = action === 'show' || action === 'restore' || action === 'delete';
  if (needsId && snapshotId === undefined) throw new UsageError(`snapshot ${action} needs <network> <snapshot>`);
  if (!needsId && snapshotId !== undefined)
    throw new UsageError(`snapshot ${action} takes only <network>, not ${JSON.stringify(snapshotId)}`);
  if (snapshotId !== undefined) validateSnapshotId(snapshotId);
  if (values.label !== undefined && action !== 'create') throw new UsageError('--label is for snapshot create');

  // Creating and restoring go through the mesh; the rest reads or deletes stored snapshots.
  if (action === 'create') {
    const id = await withSpine(common, (spine) => spine.saveSnapshot(network, values.label));
    if (common.json)
      printJson({ network, snapshot: id, ...(values.label !== undefined ? { label: values.label } : {}) });
    else console.log(id);
    return;
  }
  if (action === 'restore') {
    await withSpine(common, (spine) => spine.restoreSnapshot(network, snapshotId!));
    if (common.json) printJson({ network, snapshot: snapshotId, restored: true });
    else console.log(`restored ${network} from snapshot ${snapshotId}`);
    return;
  }
  await withState(common, async (store) => {
    if (action === 'list') {
      const infos = await store.listSnapshots(network);
      if (common.json) return printJson(infos.map((info) => ({ ...info, createdAt: info.createdAt.toISOString() })));
      if (infos.length === 0) return void console.log(`no snapshots of ${network}`);
      printTable(
        ['SNAPSHOT', 'CREATED', 'SIZE', 'LABEL'],
        infos.map((i) => [i.id, i.createdAt.toISOString(), formatBytes(i.size), i.label ?? '']),
      );
    } else if (action === 'show') {
      const state = await store.loadSnapshot(network, snapshotId!);
      if (common.json) return printJson({ network, snapshot: snapshotId, state });
      console.log(`snapshot ${snapshotId} of ${network}: ${state.groups.size} groups (root ${state.rootGroupId})`);
      printGroupSummaries([...state.groups.values()], false);
    } else {
      await store.deleteSnapshot(network, snapshotId!);
      if (common.json) printJson({ network, snapshot: snapshotId, deleted: true });
      else console.log(`deleted snapshot ${snapshotId} of ${network}`);
    }
  });
}
