import { copyNetworks } from '../sync';
/**
 * `RemoteStorage`: `NetworkStorage` through a Super Spine gateway, over HTTP (every method) and
 * one WebSocket (every subscription), with an API key instead of Google Cloud credentials.
 */
import { createHash, randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { canonicalize, decode, encode } from '../codec';
import { AuthenticationError, InvalidArgumentError, StorageClosedError, StorageUnavailableError } from '../errors';
import { changePath, parsePath, pathMatches, validateNetworkId, type ParsedPath } from '../ids';
import { createLogger, type Logger } from '../log';
import type { HistoryOptions, HistoryPage } from '../history/history';
import { parseSince } from '../history/catch-up';
import type {
  ContactWriteOptions,
  GroupChange,
  GroupQuery,
  GroupState,
  NetworkState,
  NetworkStorage,
  SnapshotInfo,
  SubscribeOptions,
  SubscriptionCallback,
  SyncResult,
  Unsubscribe,
} from '../model';
import {
  API_PREFIX,
  CLOSE_CODES,
  errorFromWire,
  SUBSCRIBE_PATH,
  type ClientMessage,
  type MethodName,
  type ServerMessage,
  type WireError,
} from '../remote/protocol';

export interface RemoteStorageOptions {
  /** Base URL of the gateway, e.g. `http://127.0.0.1:8094` (npm start's SPINE_GATEWAY_URL). */
  url: string;
  /** `ssk_…`, made by `spine keys create`. */
  apiKey: string;
  /** Per HTTP request (default 60 s: a flush on the mesh may take a while). */
  timeoutMs?: number;
  /** Backoff of WebSocket reconnects: first and longest wait (defaults 100 ms and 5 s). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /**
   * Times a request refused with 429 is sent again after the gateway's Retry-After (default 3; 0
   * reports the first 429 as StorageUnavailableError with status 429). A refused request changed
   * nothing, so sending it again is safe for writes too.
   */
  rateLimitRetries?: number;
  /**
   * After a disconnect, subscriptions resume from this long before the last change they delivered
   * (default 30 s): the gateway replays the changes after that from the event archive and the client
   * drops those it delivered already. It covers changes of other groups still in flight, and clocks
   * that disagree.
   */
  resumeOverlapMs?: number;
  logger?: Logger;
}

interface RemoteSubscription {
  sub: string;
  path: string;
  parsed: ParsedPath;
  callback: SubscriptionCallback;
  /** Digest of the last state delivered (or read at subscribe time) per group: what resuming compares to. */
  seen: Map<string, string>;
  /** When the gateway first confirmed it, and the newest change time delivered since: where a resume starts. */
  activeSince: number;
  lastChangeTime?: number;
  /** Writes delivered lately (`groupId`, event id) and their change's time: what a resume's replay skips. */
  delivered: Map<string, number>;
  chain: Promise<void>;
  /** Settles when the gateway confirms (or refuses) this subscription on the current socket. */
  confirm?: { resolve(): void; reject(error: Error): void };
}

const deliveredKey = (groupId: string, eventId: string) => `${groupId}\u0000${eventId}`;

function digest(state: GroupState): string {
  return createHash('sha256').update(canonicalize(state)).digest('base64url');
}

/**
 * Every method is one `POST /v1/{method}`; errors come back as the backends' typed error classes.
 * Subscriptions share one WebSocket; when it drops (gateway restart, slow-consumer close), the
 * client reconnects with backoff and subscribes again with `since` (a catch-up subscription from
 * shortly before the last change it delivered), delivering only the writes it had not delivered
 * (by `change.eventIds`). A gateway whose storage keeps no archive refuses `since`; then the client
 * reads the subscribed groups and delivers every group that changed (or vanished) since the last
 * state it delivered. Either way no change is missed.
 */
export class RemoteStorage implements NetworkStorage {
  readonly url: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly rateLimitRetries: number;
  private readonly resumeOverlapMs: number;
  private readonly log: Logger;
  private readonly subs = new Map<string, RemoteSubscription>();
  private socket?: WebSocket;
  private socketOpen?: Promise<WebSocket>;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectDelay: number;
  private closed = false;
  /** Reconnects so far; for tests and metrics. */
  reconnects = 0;
  /** Subscriptions resumed from the archive (`since`), and those that had to re-read their groups instead. */
  readonly resumes = { fromArchive: 0, reread: 0 };

  constructor(options: RemoteStorageOptions) {
    if (!options || typeof options.url !== 'string' || !/^https?:\/\//.test(options.url))
      throw new InvalidArgumentError('RemoteStorage needs { url }: the gateway, http://host:port or https://…');
    if (typeof options.apiKey !== 'string' || options.apiKey.length === 0)
      throw new InvalidArgumentError('RemoteStorage needs { apiKey } (spine keys create makes one)');
    this.url = options.url.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.reconnectMinMs = options.reconnectMinMs ?? 100;
    this.reconnectMaxMs = options.reconnectMaxMs ?? 5_000;
    this.reconnectDelay = this.reconnectMinMs;
    this.rateLimitRetries = options.rateLimitRetries ?? 3;
    this.resumeOverlapMs = options.resumeOverlapMs ?? 30_000;
    this.log = options.logger ?? createLogger('remote-storage', { url: this.url });
  }

  // ---- HTTP

  private async call<T>(method: MethodName, args: unknown[]): Promise<T> {
    if (this.closed) throw new StorageClosedError(method);
    // Encoded here, so content that cannot be stored is refused before anything is sent.
    const body = encode({ args });
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send<T>(method, body);
      } catch (error) {
        if (
          !(error instanceof StorageUnavailableError) ||
          error.status !== 429 ||
          attempt >= this.rateLimitRetries ||
          this.closed
        )
          throw error;
        const waitMs = (error as StorageUnavailableError & { retryAfterMs?: number }).retryAfterMs ?? 1000;
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  private async send<T>(method: MethodName, body: string): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${API_PREFIX}${method}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      const status = (error as Error).name === 'TimeoutError' ? 'TIMEOUT' : (cause?.code ?? (error as Error).name);
      throw new StorageUnavailableError(
        `${method} through the gateway at ${this.url} failed: ${(error as Error).message}${cause?.code ? ` (${cause.code})` : ''}`,
        { key: method, status, attempts: 1, cause: error },
      );
    }
    const text = await response.text();
    if (response.ok) return decode<{ result: T }>(text).result;
    let wire: WireError | undefined;
    try {
      wire = (JSON.parse(text) as { error?: WireError }).error;
    } catch {
      wire = undefined;
    }
    const error = errorFromWire(response.status, wire, `${method} through the gateway`);
    if (response.status === 429) {
      const retryAfterMs =
        typeof wire?.details?.retryAfterMs === 'number'
          ? wire.details.retryAfterMs
          : Number(response.headers.get('retry-after') ?? 1) * 1000;
      Object.assign(error, { retryAfterMs });
    }
    throw error;
  }

  async initialize(): Promise<void> {
    if (this.closed) throw new StorageClosedError('initialize');
  }

  saveContactContent(
    networkId: string,
    groupId: string,
    contactId: string,
    content: unknown,
    options?: ContactWriteOptions,
  ): Promise<void> {
    return this.call(
      'saveContactContent',
      options === undefined
        ? [networkId, groupId, contactId, content]
        : [networkId, groupId, contactId, content, options],
    );
  }

  loadContactContent(networkId: string, groupId: string, contactId: string): Promise<unknown | null> {
    return this.call('loadContactContent', [networkId, groupId, contactId]);
  }

  saveGroupState(networkId: string, groupId: string, state: GroupState): Promise<void> {
    return this.call('saveGroupState', [networkId, groupId, state]);
  }

  loadGroupState(networkId: string, groupId: string): Promise<GroupState | null> {
    return this.call('loadGroupState', [networkId, groupId]);
  }

  deleteGroup(networkId: string, groupId: string): Promise<void> {
    return this.call('deleteGroup', [networkId, groupId]);
  }

  saveNetworkState(networkId: string, state: NetworkState): Promise<void> {
    return this.call('saveNetworkState', [networkId, state]);
  }

  loadNetworkState(networkId: string): Promise<NetworkState | null> {
    return this.call('loadNetworkState', [networkId]);
  }

  /** The networks the key may read. */
  listNetworks(): Promise<string[]> {
    return this.call('listNetworks', []);
  }

  deleteNetwork(networkId: string): Promise<void> {
    return this.call('deleteNetwork', [networkId]);
  }

  exists(networkId: string): Promise<boolean> {
    return this.call('exists', [networkId]);
  }

  queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]> {
    return this.call('queryGroups', [networkId, query]);
  }

  saveSnapshot(networkId: string, label?: string): Promise<string> {
    return this.call('saveSnapshot', label === undefined ? [networkId] : [networkId, label]);
  }

  loadSnapshot(networkId: string, snapshotId: string): Promise<NetworkState> {
    return this.call('loadSnapshot', [networkId, snapshotId]);
  }

  listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    return this.call('listSnapshots', [networkId]);
  }

  deleteSnapshot(networkId: string, snapshotId: string): Promise<void> {
    return this.call('deleteSnapshot', [networkId, snapshotId]);
  }

  /**
   * The history of a network, group or contact from the mesh's event archive (see
   * `SpineStorage.history`), refused (`PermissionDeniedError`) unless the key may read the network.
   */
  history(networkId: string, groupId?: string, contactId?: string, options: HistoryOptions = {}): Promise<HistoryPage> {
    return this.call('history', [networkId, groupId, contactId, options]);
  }

  /** Resolves once every write the gateway took so far is readable (the mesh materialized it). */
  flush(): Promise<void> {
    return this.call('flush', []);
  }

  /**
   * Copies every network of `remote` into the gateway, one `saveNetworkState` each, after the
   * gateway confirmed the key may write every one of them: a refusal writes nothing.
   */
  async sync(remote: NetworkStorage): Promise<SyncResult> {
    if (this.closed) throw new StorageClosedError('sync');
    const networkIds = await remote.listNetworks();
    if (networkIds.length > 0) await this.call('checkAccess', [networkIds, 'write']);
    return copyNetworks(remote, this, networkIds);
  }

  // ---- subscriptions over the WebSocket

  /**
   * See `NetworkStorage.subscribe`; with `{ since }` a catch-up subscription (`SpineStorage.subscribe`)
   * behind the gateway, refused with `InvalidArgumentError` where the gateway's storage keeps no archive.
   */
  async subscribe(path: string, callback: SubscriptionCallback, options: SubscribeOptions = {}): Promise<Unsubscribe> {
    const parsed = parsePath(path);
    if (typeof callback !== 'function') throw new InvalidArgumentError('subscribe needs a callback function');
    if (options === null || typeof options !== 'object')
      throw new InvalidArgumentError('subscribe: options must be an object');
    const since = options.since === undefined ? undefined : parseSince(options.since);
    if (this.closed) throw new StorageClosedError('subscribe');
    const subscription: RemoteSubscription = {
      sub: randomUUID(),
      path,
      parsed,
      callback,
      seen: new Map(),
      activeSince: Date.now(),
      delivered: new Map(),
      chain: Promise.resolve(),
    };
    this.subs.set(subscription.sub, subscription);
    try {
      const socket = await this.openSocket();
      await this.confirm(socket, subscription, since);
      subscription.activeSince = Date.now();
      // What "seen" means from now on: the groups as they are once the subscription is active.
      const current = await this.groupsUnder(parsed);
      for (const [groupId, state] of current)
        if (!subscription.seen.has(groupId)) subscription.seen.set(groupId, digest(state));
    } catch (error) {
      this.subs.delete(subscription.sub);
      this.closeSocketWhenIdle();
      throw error;
    }
    return async () => {
      if (!this.subs.delete(subscription.sub)) return;
      // A resume waiting for this subscription's confirmation goes on without it.
      subscription.confirm?.resolve();
      this.sendMessage({ type: 'unsubscribe', sub: subscription.sub });
      await subscription.chain;
      this.closeSocketWhenIdle();
    };
  }

  /** Closes the socket; in-flight requests finish on their own. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const chains = [...this.subs.values()].map((s) => s.chain);
    for (const s of this.subs.values()) s.confirm?.reject(new StorageClosedError('subscribe'));
    this.subs.clear();
    this.socket?.close(1000, 'client closed');
    this.socket = undefined;
    await Promise.all(chains);
  }

  private openSocket(): Promise<WebSocket> {
    if (this.socket?.readyState === WebSocket.OPEN) return Promise.resolve(this.socket);
    this.socketOpen ??= new Promise<WebSocket>((resolve, reject) => {
      const url = `${this.url.replace(/^http/, 'ws')}${SUBSCRIBE_PATH}`;
      const socket = new WebSocket(url, {
        headers: { authorization: `Bearer ${this.apiKey}` },
        handshakeTimeout: this.timeoutMs,
      });
      this.socket = socket;
      let opened = false;
      let failed = false;
      const fail = (error: Error) => {
        if (opened || failed) return;
        failed = true;
        if (this.socketOpen === pending) this.socketOpen = undefined;
        reject(error);
      };
      socket.once('open', () => {
        opened = true;
        if (this.socketOpen === pending) this.socketOpen = undefined;
        this.reconnectDelay = this.reconnectMinMs;
        resolve(socket);
      });
      socket.once('unexpected-response', (_request, response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => {
          let wire: WireError | undefined;
          try {
            wire = (JSON.parse(text) as { error?: WireError }).error;
          } catch {
            wire = undefined;
          }
          fail(errorFromWire(response.statusCode ?? 500, wire, 'subscribe through the gateway'));
          socket.terminate();
        });
      });
      socket.on('message', (data) => this.onMessage(data.toString()));
      socket.on('error', (error) => {
        fail(
          new StorageUnavailableError(`connecting to the gateway at ${url} failed: ${error.message}`, {
            key: 'subscribe',
            status: (error as NodeJS.ErrnoException).code,
            attempts: 1,
            cause: error,
          }),
        );
      });
      socket.once('close', (code, reason) => {
        // A socket that never opened is the business of whoever waits for it (subscribe, or resume's own retry).
        if (!opened) {
          if (this.socket === socket) this.socket = undefined;
          fail(
            new StorageUnavailableError(`the gateway closed the connection before it opened (${code})`, {
              key: 'subscribe',
              status: code,
              attempts: 1,
            }),
          );
          return;
        }
        this.onSocketClosed(socket, code, reason.toString());
      });
    });
    const pending = this.socketOpen;
    return pending;
  }

  /** Sends the subscribe message (a catch-up one with `since`) and waits for the gateway's answer on this socket. */
  private confirm(socket: WebSocket, subscription: RemoteSubscription, since?: Date): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const confirmed = new Promise<void>((resolve, reject) => {
      subscription.confirm = { resolve, reject };
      timer = setTimeout(
        () =>
          reject(
            new StorageUnavailableError(
              `the gateway did not confirm the subscription to ${subscription.path} within ${this.timeoutMs} ms`,
              { key: 'subscribe', status: 'TIMEOUT', attempts: 1 },
            ),
          ),
        this.timeoutMs,
      );
    });
    socket.send(
      JSON.stringify({
        type: 'subscribe',
        sub: subscription.sub,
        path: subscription.path,
        ...(since ? { since: since.toISOString() } : {}),
      } satisfies ClientMessage),
    );
    return confirmed.finally(() => {
      clearTimeout(timer);
      subscription.confirm = undefined;
    });
  }

  private sendMessage(message: ClientMessage): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private onMessage(text: string): void {
    let message: ServerMessage;
    try {
      message = decode<ServerMessage>(text);
    } catch (error) {
      return this.log.error('unreadable message from the gateway', { error });
    }
    const subscription = 'sub' in message && message.sub !== undefined ? this.subs.get(message.sub) : undefined;
    if (message.type === 'subscribed') return subscription?.confirm?.resolve();
    if (message.type === 'error') {
      const error = errorFromWire(0, message.error, 'subscribe through the gateway');
      if (subscription?.confirm) return subscription.confirm.reject(error);
      return this.log.error('the gateway reported an error', { sub: message.sub, error });
    }
    if (message.type === 'change' && subscription) {
      const { state, change } = message;
      void this.enqueue(subscription, () => this.deliver(subscription, change.groupId, state, change, false)).catch(
        () => undefined,
      );
    }
  }

  /** Runs `work` after the subscription's earlier deliveries; its failure rejects the answer, never the chain. */
  private enqueue(subscription: RemoteSubscription, work: () => Promise<void>): Promise<void> {
    const run = subscription.chain.then(work);
    subscription.chain = run.catch((error: unknown) =>
      this.log.error('delivering a change failed', { path: subscription.path, error }),
    );
    return run;
  }

  /** Calls back unless the subscription is gone or (when `skipSame`) the state is the one last delivered. */
  private async deliver(
    subscription: RemoteSubscription,
    groupId: string,
    state: GroupState | null,
    change: GroupChange,
    skipSame: boolean,
  ): Promise<void> {
    if (!this.subs.has(subscription.sub)) return;
    if (!skipSame) {
      if (change.eventIds) {
        const fresh = change.eventIds.filter((id) => !subscription.delivered.has(deliveredKey(groupId, id)));
        // Every write it covers was delivered before the disconnect: a resume's replay of it.
        if (fresh.length === 0) return;
        change = { ...change, eventIds: fresh };
      }
      this.remember(subscription, groupId, change);
    }
    if (state === null) subscription.seen.delete(groupId);
    else {
      const hash = digest(state);
      if (skipSame && subscription.seen.get(groupId) === hash) return;
      subscription.seen.set(groupId, hash);
    }
    try {
      await subscription.callback(state, change);
    } catch (error) {
      this.log.error('subscriber callback failed', { path: subscription.path, groupId, error });
    }
  }

  /** Records a delivered change's writes; forgets those too old for any resume to replay. */
  private remember(subscription: RemoteSubscription, groupId: string, change: GroupChange): void {
    const time = new Date(change.time).getTime();
    for (const id of change.eventIds ?? []) subscription.delivered.set(deliveredKey(groupId, id), time);
    if (!(time <= (subscription.lastChangeTime ?? -Infinity))) {
      const previous = subscription.lastChangeTime;
      subscription.lastChangeTime = time;
      // Pruned once per overlap, not per change.
      if (
        previous === undefined ||
        Math.floor(previous / this.resumeOverlapMs) !== Math.floor(time / this.resumeOverlapMs)
      ) {
        const keepFrom = time - 2 * this.resumeOverlapMs;
        for (const [key, at] of subscription.delivered) if (at < keepFrom) subscription.delivered.delete(key);
      }
    }
  }

  /** Where a resumed subscription starts: the overlap before the last change it delivered (or before it began). */
  private resumePoint(subscription: RemoteSubscription): Date {
    const last = Math.max(subscription.activeSince, subscription.lastChangeTime ?? -Infinity);
    return new Date(Math.min(last, Date.now()) - this.resumeOverlapMs);
  }

  private onSocketClosed(socket: WebSocket, code: number, reason: string): void {
    // An old socket closing after a newer one opened has nothing pending.
    if (this.socket !== undefined && this.socket !== socket) return;
    this.socket = undefined;
    for (const s of this.subs.values())
      s.confirm?.reject(
        new StorageUnavailableError(`the gateway closed the connection (${code} ${reason})`, {
          key: 'subscribe',
          status: code,
          attempts: 1,
        }),
      );
    if (this.closed || this.subs.size === 0) return;
    this.log.warn('subscription socket closed; reconnecting', {
      code,
      reason,
      slowConsumer: code === CLOSE_CODES.slowConsumer,
      retryInMs: this.reconnectDelay,
    });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    clearTimeout(this.reconnectTimer);
    const delay = this.reconnectDelay * (0.75 + Math.random() * 0.5);
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.reconnectMaxMs);
    this.reconnectTimer = setTimeout(() => void this.resume(), delay);
  }

  /** A new socket, every subscription again, then whatever changed while the old one was down. */
  private async resume(): Promise<void> {
    if (this.closed || this.subs.size === 0) return;
    try {
      const socket = await this.openSocket();
      this.reconnects += 1;
      await Promise.all([...this.subs.values()].map((s) => this.resubscribe(socket, s)));
      this.log.info('subscriptions resumed', { subscriptions: this.subs.size, ...this.resumes });
    } catch (error) {
      if (this.closed) return;
      if (error instanceof AuthenticationError) {
        // A revoked key does not come back: trying again would only knock on the door forever.
        this.log.error('the gateway refuses the API key; subscriptions stopped', {
          error,
          subscriptions: this.subs.size,
        });
        return;
      }
      this.log.warn('resuming subscriptions failed; trying again', { error, retryInMs: this.reconnectDelay });
      this.socket?.terminate();
      this.scheduleReconnect();
    }
  }

  /**
   * Subscribes again from the archive (`since`); the gateway sends the replayed changes before it
   * confirms. Refused `since` (no archive there, or it does not reach back so far): subscribes
   * live and re-reads the subscription's groups instead.
   */
  private async resubscribe(socket: WebSocket, subscription: RemoteSubscription): Promise<void> {
    const since = this.resumePoint(subscription);
    const sentAt = Date.now();
    try {
      await this.confirm(socket, subscription, since);
      // Everything up to this was delivered (or is on its way) by now: the next resume needs no earlier start.
      subscription.activeSince = sentAt;
      this.resumes.fromArchive += 1;
      return;
    } catch (error) {
      if (!(error instanceof InvalidArgumentError)) throw error;
      this.log.warn('the gateway cannot resume from the archive; re-reading the subscribed groups', {
        path: subscription.path,
        since: since.toISOString(),
        error,
      });
    }
    await this.confirm(socket, subscription);
    this.resumes.reread += 1;
    await this.catchUp(subscription);
  }

  /** Delivers each group under the path whose state differs from the last one delivered, and each that is gone. */
  private async catchUp(subscription: RemoteSubscription): Promise<void> {
    const { networkId } = subscription.parsed;
    // Read inside the delivery chain: changes queued before are delivered first, so nothing older follows them.
    await this.enqueue(subscription, async () => {
      const current = await this.groupsUnder(subscription.parsed);
      const time = new Date();
      for (const [groupId, state] of current) {
        await this.deliver(
          subscription,
          groupId,
          state,
          { networkId, groupId, path: changePath(networkId, groupId), kind: 'updated', time },
          true,
        );
      }
      for (const groupId of [...subscription.seen.keys()]) {
        if (!current.has(groupId))
          await this.deliver(
            subscription,
            groupId,
            null,
            { networkId, groupId, path: changePath(networkId, groupId), kind: 'deleted', time },
            true,
          );
      }
    });
  }

  private async groupsUnder(parsed: ParsedPath): Promise<Map<string, GroupState>> {
    const network = await this.loadNetworkState(validateNetworkId(parsed.networkId));
    const groups = new Map<string, GroupState>();
    for (const [groupId, state] of network?.groups ?? [])
      if (pathMatches(parsed, parsed.networkId, groupId)) groups.set(groupId, state);
    return groups;
  }

  private closeSocketWhenIdle(): void {
    if (this.subs.size > 0 || !this.socket) return;
    clearTimeout(this.reconnectTimer);
    const socket = this.socket;
    this.socket = undefined;
    socket.close(1000, 'no subscriptions');
  }
}
