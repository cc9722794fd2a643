import { copyNetworks } from '../sync';
import type {
  ContactWriteOptions,
  GroupQuery,
  GroupState,
  NetworkState,
  NetworkStorage,
  SnapshotInfo,
  SubscriptionCallback,
  SyncResult,
  Unsubscribe,
} from '../model';

/** Passes every method to `inner`; wrappers (the read cache, scheduled persistence) override what they add to. */
export class DelegatingStorage implements NetworkStorage {
  constructor(readonly inner: NetworkStorage) {}

  saveContactContent(
    networkId: string,
    groupId: string,
    contactId: string,
    content: unknown,
    options?: ContactWriteOptions,
  ): Promise<void> {
    return this.inner.saveContactContent(networkId, groupId, contactId, content, options);
  }
  loadContactContent(networkId: string, groupId: string, contactId: string): Promise<unknown | null> {
    return this.inner.loadContactContent(networkId, groupId, contactId);
  }
  saveGroupState(networkId: string, groupId: string, state: GroupState): Promise<void> {
    return this.inner.saveGroupState(networkId, groupId, state);
  }
  loadGroupState(networkId: string, groupId: string): Promise<GroupState | null> {
    return this.inner.loadGroupState(networkId, groupId);
  }
  deleteGroup(networkId: string, groupId: string): Promise<void> {
    return this.inner.deleteGroup(networkId, groupId);
  }
  saveNetworkState(networkId: string, state: NetworkState): Promise<void> {
    return this.inner.saveNetworkState(networkId, state);
  }
  loadNetworkState(networkId: string): Promise<NetworkState | null> {
    return this.inner.loadNetworkState(networkId);
  }
  listNetworks(): Promise<string[]> {
    return this.inner.listNetworks();
  }
  deleteNetwork(networkId: string): Promise<void> {
    return this.inner.deleteNetwork(networkId);
  }
  exists(networkId: string): Promise<boolean> {
    return this.inner.exists(networkId);
  }
  queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]> {
    return this.inner.queryGroups(networkId, query);
  }
  saveSnapshot(networkId: string, label?: string): Promise<string> {
    return this.inner.saveSnapshot(networkId, label);
  }
  loadSnapshot(networkId: string, snapshotId: string): Promise<NetworkState> {
    return this.inner.loadSnapshot(networkId, snapshotId);
  }
  listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    return this.inner.listSnapshots(networkId);
  }
  deleteSnapshot(networkId: string, snapshotId: string): Promise<void> {
    return this.inner.deleteSnapshot(networkId, snapshotId);
  }
  subscribe(path: string, callback: SubscriptionCallback): Promise<Unsubscribe> {
    return this.inner.subscribe(path, callback);
  }
  /** Copies into this wrapper (not past it), so whatever the wrapper does on writes happens for synced networks too. */
  async sync(remote: NetworkStorage): Promise<SyncResult> {
    return copyNetworks(remote, this);
  }
  initialize(): Promise<void> {
    return this.inner.initialize();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  /** The inner storage's `flush()` when it has one (SpineStorage, RemoteStorage): waits until writes are readable. */
  async flush(): Promise<void> {
    await (this.inner as { flush?: () => Promise<void> }).flush?.();
  }
}
