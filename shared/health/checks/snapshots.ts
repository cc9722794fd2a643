import type { NetworkStorage } from '../../model';
import { mapWithConcurrency } from '../../util/concurrency';
import { type NetworkSnapshotAge, SYSTEM_NETWORKS, type SnapshotCheck, describeError } from '../report';

export async function checkSnapshots(
  state: Pick<NetworkStorage, 'listNetworks' | 'listSnapshots'>,
  now: Date,
): Promise<SnapshotCheck> {
  let networkIds: string[];
  try {
    networkIds = (await state.listNetworks()).filter((id) => !SYSTEM_NETWORKS.includes(id)).sort();
  } catch (error) {
    return { networks: [], error: `networks could not be listed: ${describeError(error)}` };
  }
  const failures: string[] = [];
  const networks = await mapWithConcurrency(networkIds, 8, async (networkId): Promise<NetworkSnapshotAge> => {
    try {
      const newest = (await state.listSnapshots(networkId))[0];
      if (!newest) return { networkId, lastSnapshotAt: null, ageMs: null };
      return {
        networkId,
        lastSnapshotAt: newest.createdAt.toISOString(),
        ageMs: Math.max(0, now.getTime() - newest.createdAt.getTime()),
      };
    } catch (error) {
      failures.push(`${networkId} (${describeError(error)})`);
      return { networkId, lastSnapshotAt: null, ageMs: null };
    }
  });
  return {
    networks,
    ...(failures.length > 0 && { error: `snapshots could not be listed for ${failures.join(', ')}` }),
  };
}
