import type { NetworkState, NetworkStorage, SyncResult } from './model';

/**
 * What `sync(remote)` does on every backend: each network of `remote` saved whole into `target`.
 * `networkIds`, when the caller listed them already (to check them first), are the ones copied.
 */
export async function copyNetworks(
  remote: NetworkStorage,
  target: { saveNetworkState(networkId: string, state: NetworkState): Promise<void> },
  networkIds?: readonly string[],
): Promise<SyncResult> {
  let networks = 0;
  let groups = 0;
  for (const networkId of networkIds ?? (await remote.listNetworks())) {
    const state = await remote.loadNetworkState(networkId);
    if (!state) continue;
    await target.saveNetworkState(networkId, state);
    networks += 1;
    groups += state.groups.size;
  }
  return { networks, groups };
}
