/**
 * Subscriptions of every socket: one storage subscription per network, fanned out in memory to
 * the listeners whose path matches, and bounded per socket, per key, in total and in networks.
 */
import { encode } from '../shared/codec';
import { LimitExceededError } from '../shared/errors';
import { pathMatches, type ParsedPath } from '../shared/ids';
import type { Logger } from '../shared/log';
import type {
  GroupChange,
  GroupState,
  NetworkStorage,
  SubscribeOptions,
  SubscriptionCallback,
  Unsubscribe,
} from '../shared/model';
import type { ApiKeyRecord } from './keys';
import { RequestError, type GatewayCounters } from './request-error';

export interface Listener {
  sub: string;
  path: ParsedPath;
  keyId: string;
  send(text: string): void;
  /** A catch-up subscription: changes after this time from the archive first, then live. */
  since?: Date;
}

/** Storage whose `subscribe` takes `{ since }`: the one with an event archive (SpineStorage) also serves `history`. */
type CatchUpStorage = NetworkStorage & {
  history?: unknown;
  subscribe(path: string, callback: SubscriptionCallback, options?: SubscribeOptions): Promise<Unsubscribe>;
};

/** One storage subscription on a whole network, fanned out to the listeners whose path matches. */
interface NetworkWatch {
  listeners: Set<Listener>;
  ready: Promise<Unsubscribe>;
}

export interface SubscriptionBounds {
  perSocket: number;
  perKey: number;
  total: number;
  networks: number;
  networksPerKey: number;
}

export class SubscriptionHub {
  private readonly watches = new Map<string, NetworkWatch>();
  /**
   * Catch-up subscriptions, one storage subscription each: their archive part and seam are their
   * own, so they cannot share a network's live subscription.
   */
  private readonly catchUps = new Map<Listener, Promise<Unsubscribe>>();
  private readonly byKey = new Map<string, { count: number; networks: Map<string, number> }>();
  private count = 0;

  constructor(
    private readonly storage: CatchUpStorage,
    private readonly bounds: SubscriptionBounds,
    private readonly counters: GatewayCounters,
    private readonly log: Logger,
  ) {}

  /** Subscriptions of all sockets. */
  get subscriptions(): number {
    return this.count;
  }

  /** Storage subscriptions: one per watched network, one per catch-up listener. */
  get watchedNetworks(): number {
    return this.watches.size + this.catchUps.size;
  }

  /**
   * Refuses, before anything is held, a subscription that would pass a bound. A catch-up listener
   * needs a storage subscription of its own, so it counts against `networks` like a new network.
   */
  checkBounds(record: ApiKeyRecord, socketSubscriptions: number, networkId: string, catchUp = false): void {
    const { bounds } = this;
    const held = this.byKey.get(record.id);
    const refuse = (message: string, limit: number) => {
      this.counters.subscriptionsRefused += 1;
      throw new LimitExceededError(message, limit);
    };
    if (socketSubscriptions >= bounds.perSocket)
      refuse(
        `a socket holds at most ${bounds.perSocket} subscriptions; unsubscribe one or open another socket`,
        bounds.perSocket,
      );
    if ((held?.count ?? 0) >= bounds.perKey)
      refuse(
        `key ${record.id} holds ${held!.count} subscriptions, the most one key may hold (${bounds.perKey})`,
        bounds.perKey,
      );
    if (this.count >= bounds.total)
      refuse(`the gateway holds ${this.count} subscriptions, its limit; try again later`, bounds.total);
    if (!held?.networks.has(networkId) && (held?.networks.size ?? 0) >= bounds.networksPerKey) {
      refuse(
        `key ${record.id} subscribes to ${bounds.networksPerKey} networks, the most one key may watch at once`,
        bounds.networksPerKey,
      );
    }
    const storageSubscriptions = this.watchedNetworks;
    if ((catchUp || !this.watches.has(networkId)) && storageSubscriptions >= bounds.networks)
      refuse(
        `the gateway watches ${this.watches.size} networks${this.catchUps.size ? ` and ${this.catchUps.size} catch-ups` : ''}, its limit; try again later`,
        bounds.networks,
      );
  }

  /** Adds a listener; resolves once the network's storage subscription is in place. */
  add(listener: Listener): Promise<void> {
    if (listener.since) return this.addCatchUp(listener, listener.since);
    const { networkId } = listener.path;
    this.hold(listener);
    let watch = this.watches.get(networkId);
    if (!watch) {
      const listeners = new Set<Listener>();
      const deliver = (state: GroupState | null, change: GroupChange) => {
        let tail: string | undefined;
        for (const l of listeners) {
          if (!pathMatches(l.path, change.networkId, change.groupId)) continue;
          // Encoded once for every socket it goes to.
          tail ??= `,"state":${encode(state)},"change":${encode(change)}}`;
          l.send(`{"type":"change","sub":${JSON.stringify(l.sub)}${tail}`);
        }
      };
      const created: NetworkWatch = { listeners, ready: this.storage.subscribe(networkId, deliver) };
      watch = created;
      this.watches.set(networkId, created);
      created.ready.catch(() => {
        if (this.watches.get(networkId) === created) this.watches.delete(networkId);
      });
    }
    watch.listeners.add(listener);
    return watch.ready.then(() => undefined);
  }

  /**
   * A listener with its own catch-up storage subscription (RemoteStorage resuming after a
   * disconnect); resolves once the archive part has been sent. Refused when the storage keeps no
   * event archive, so a client never takes live changes alone for a catch-up.
   */
  private addCatchUp(listener: Listener, since: Date): Promise<void> {
    if (typeof this.storage.history !== 'function')
      return Promise.reject(
        new RequestError(501, 'UNKNOWN_METHOD', 'this gateway serves no catch-up: its storage keeps no event archive'),
      );
    this.hold(listener);
    const { networkId, groupPrefix } = listener.path;
    const path = groupPrefix === undefined ? networkId : `${networkId}/${groupPrefix}`;
    const deliver = (state: GroupState | null, change: GroupChange) =>
      listener.send(
        `{"type":"change","sub":${JSON.stringify(listener.sub)},"state":${encode(state)},"change":${encode(change)}}`,
      );
    const ready = this.storage.subscribe(path, deliver, { since });
    this.catchUps.set(listener, ready);
    return ready.then(() => undefined);
  }

  /** Counts a listener against its key's bounds. */
  private hold(listener: Listener): void {
    const { networkId } = listener.path;
    const held = this.byKey.get(listener.keyId) ?? { count: 0, networks: new Map<string, number>() };
    this.byKey.set(listener.keyId, held);
    held.count += 1;
    held.networks.set(networkId, (held.networks.get(networkId) ?? 0) + 1);
    this.count += 1;
  }

  private release(listener: Listener): void {
    const { networkId } = listener.path;
    this.count -= 1;
    const held = this.byKey.get(listener.keyId);
    if (held) {
      held.count -= 1;
      const onNetwork = (held.networks.get(networkId) ?? 1) - 1;
      if (onNetwork > 0) held.networks.set(networkId, onNetwork);
      else held.networks.delete(networkId);
      if (held.count === 0) this.byKey.delete(listener.keyId);
    }
  }

  /** Removes a listener; the last one of a network ends its storage subscription. */
  remove(listener: Listener): void {
    const { networkId } = listener.path;
    const catchUp = this.catchUps.get(listener);
    if (catchUp) {
      this.catchUps.delete(listener);
      this.release(listener);
      // One that failed to start holds nothing.
      catchUp.then(
        (unsubscribe) =>
          unsubscribe().catch((error: unknown) =>
            this.log.warn('removing a catch-up subscription failed', { networkId, error }),
          ),
        () => undefined,
      );
      return;
    }
    const watch = this.watches.get(networkId);
    if (!watch || !watch.listeners.delete(listener)) return;
    this.release(listener);
    if (watch.listeners.size > 0) return;
    this.watches.delete(networkId);
    watch.ready
      .then((unsubscribe) => unsubscribe())
      .catch((error: unknown) => this.log.warn('removing a storage subscription failed', { networkId, error }));
  }

  /** Ends every storage subscription. */
  async close(): Promise<void> {
    const entries = [...this.watches.values()].map((watch) => watch.ready);
    this.watches.clear();
    entries.push(...this.catchUps.values());
    this.catchUps.clear();
    await Promise.all(entries.map((ready) => ready.then((unsubscribe) => unsubscribe()).catch(() => undefined)));
  }
}
