import { LRUCache } from 'lru-cache';
import { clone } from '../codec';
import { isValidNetworkId } from '../ids';
import { createLogger, type Logger } from '../log';
import type {
  ContactWriteOptions,
  GroupState,
  NetworkState,
  NetworkStorage,
  SubscriptionCallback,
  Unsubscribe,
} from '../model';
import { DelegatingStorage } from './delegating';

export interface ReadCacheOptions {
  /** Milliseconds an entry is served before it is read again (default 60 000). */
  ttl?: number;
  /** Entries kept at most, least recently used dropped first (default 1000). */
  maxSize?: number;
  logger?: Logger;
}

export interface ReadCacheStats {
  hits: number;
  misses: number;
  /** Networks watched through `subscribe` to keep their entries fresh. */
  watchedNetworks: number;
}

interface NetworkWatch {
  /** Bumped on every change of the network: a read that started before a bump does not fill the cache. */
  generation: number;
  keys: Set<string>;
  ready: Promise<Unsubscribe | undefined>;
}

/**
 * A read cache in front of any `NetworkStorage`: contact contents, group and network states are
 * served from memory. Each network is watched with the storage's own `subscribe` once its first
 * read is cached, and its entries are dropped on every change notification, before any
 * subscriber of this storage is called back, and on this storage's own writes; so a read never
 * returns a value older than a change the caller was told about. Entries are copies: callers can
 * change what they get. A network whose watch fails is read through, uncached.
 */
export class CachedStorage extends DelegatingStorage {
  private readonly entries: LRUCache<string, { value: unknown; networkId: string }>;
  private readonly networks = new Map<string, NetworkWatch>();
  private readonly log: Logger;
  private readonly counts = { hits: 0, misses: 0 };

  constructor(inner: NetworkStorage, options: ReadCacheOptions = {}) {
    super(inner);
    this.log = options.logger ?? createLogger('read-cache');
    this.entries = new LRUCache({
      max: options.maxSize ?? 1000,
      ttl: options.ttl ?? 60_000,
      dispose: (entry, key) => this.networks.get(entry.networkId)?.keys.delete(key),
    });
  }

  stats(): ReadCacheStats {
    return { ...this.counts, watchedNetworks: this.networks.size };
  }

  override loadContactContent(networkId: string, groupId: string, contactId: string): Promise<unknown | null> {
    return this.read(networkId, `c\u0000${networkId}\u0000${groupId}\u0000${contactId}`, () =>
      this.inner.loadContactContent(networkId, groupId, contactId),
    );
  }

  override loadGroupState(networkId: string, groupId: string): Promise<GroupState | null> {
    return this.read(networkId, `g\u0000${networkId}\u0000${groupId}`, () =>
      this.inner.loadGroupState(networkId, groupId),
    );
  }

  override loadNetworkState(networkId: string): Promise<NetworkState | null> {
    return this.read(networkId, `n\u0000${networkId}`, () => this.inner.loadNetworkState(networkId));
  }

  override async saveContactContent(
    networkId: string,
    groupId: string,
    contactId: string,
    content: unknown,
    options?: ContactWriteOptions,
  ): Promise<void> {
    try {
      await this.inner.saveContactContent(networkId, groupId, contactId, content, options);
    } finally {
      this.invalidate(networkId);
    }
  }

  override async saveGroupState(networkId: string, groupId: string, state: GroupState): Promise<void> {
    try {
      await this.inner.saveGroupState(networkId, groupId, state);
    } finally {
      this.invalidate(networkId);
    }
  }

  override async deleteGroup(networkId: string, groupId: string): Promise<void> {
    try {
      await this.inner.deleteGroup(networkId, groupId);
    } finally {
      this.invalidate(networkId);
    }
  }

  override async saveNetworkState(networkId: string, state: NetworkState): Promise<void> {
    try {
      await this.inner.saveNetworkState(networkId, state);
    } finally {
      this.invalidate(networkId);
    }
  }

  override async deleteNetwork(networkId: string): Promise<void> {
    try {
      await this.inner.deleteNetwork(networkId);
    } finally {
      this.invalidate(networkId);
    }
  }

  /** The caller's callback runs after the network's entries are dropped, so what it reads next is at least as new. */
  override subscribe(path: string, callback: SubscriptionCallback): Promise<Unsubscribe> {
    return this.inner.subscribe(path, (state, change) => {
      this.invalidate(change.networkId);
      return callback(state, change);
    });
  }

  override async close(): Promise<void> {
    const watches = [...this.networks.values()];
    this.networks.clear();
    this.entries.clear();
    await Promise.all(watches.map((w) => w.ready.then((unsubscribe) => unsubscribe?.()).catch(() => undefined)));
    await this.inner.close();
  }

  private async read<T>(networkId: string, key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit) {
      this.counts.hits += 1;
      return clone(hit.value) as T;
    }
    this.counts.misses += 1;
    const watch = this.watch(networkId);
    const watching = watch ? await watch.ready : undefined;
    const generation = watch?.generation;
    const value = await load();
    // Only when the network is watched and nothing changed while this read was on its way.
    if (watching && watch && this.networks.get(networkId) === watch && watch.generation === generation) {
      watch.keys.add(key);
      this.entries.set(key, { value: clone(value), networkId });
    }
    return value;
  }

  private watch(networkId: string): NetworkWatch | undefined {
    let watch = this.networks.get(networkId);
    if (watch) return watch;
    // Invalid ids are left to the storage to refuse, with its typed error.
    if (!isValidNetworkId(networkId)) return undefined;
    const created: NetworkWatch = { generation: 0, keys: new Set(), ready: Promise.resolve(undefined) };
    created.ready = this.inner
      .subscribe(networkId, (_state, change) => this.invalidate(change.networkId))
      .catch((error: unknown) => {
        this.log.warn('cannot watch the network; its reads are not cached', { networkId, error });
        if (this.networks.get(networkId) === created) this.networks.delete(networkId);
        return undefined;
      });
    watch = created;
    this.networks.set(networkId, watch);
    return watch;
  }

  private invalidate(networkId: string): void {
    const watch = this.networks.get(networkId);
    if (!watch) return;
    watch.generation += 1;
    for (const key of [...watch.keys]) this.entries.delete(key);
    watch.keys.clear();
  }
}
