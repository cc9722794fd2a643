/**
 * `subscribe` over WebSocket: the upgrade (key and rate checked first, refusals answered as
 * HTTP), each socket's subscribe/unsubscribe messages, slow consumers and dead peers dropped,
 * and revoked keys losing their open sockets.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { decode } from '../shared/codec';
import { InvalidArgumentError } from '../shared/errors';
import { parsePath, type ParsedPath } from '../shared/ids';
import { parseSince } from '../shared/history/catch-up';
import type { Logger } from '../shared/log';
import {
  CLOSE_CODES,
  errorToWire,
  SUBSCRIBE_PATH,
  type ClientMessage,
  type WireError,
} from '../shared/remote/protocol';
import { bearerKey, checkScope, type Authenticator } from './authentication';
import type { ApiKeyRecord } from './keys';
import { RequestError, type GatewayCounters } from './request-error';
import type { Listener, SubscriptionHub } from './subscription-hub';

const MAX_WS_MESSAGE_BYTES = 64 * 1024;

const STATUS_TEXT: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export interface SocketServerOptions {
  auth: Authenticator;
  hub: SubscriptionHub;
  counters: GatewayCounters;
  log: Logger;
  /** Bytes queued for one socket before it is closed as a slow consumer. */
  maxBufferedBytes: number;
  /** How often a socket's key is checked again (a revoked key loses its sockets). */
  keyCacheMs: number;
  /** How often each socket is pinged; one that has not answered the last ping is dropped. */
  pingIntervalMs: number;
}

export class SocketServer {
  private readonly sockets = new Set<WebSocket>();
  private readonly alive = new WeakMap<WebSocket, boolean>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES });
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly options: SocketServerOptions) {
    // Half-open connections (a client that vanished) hold subscriptions until something notices.
    this.heartbeat = setInterval(() => {
      for (const ws of this.sockets) {
        if (this.alive.get(ws) === false) {
          options.counters.deadSocketsDropped += 1;
          ws.terminate();
          continue;
        }
        this.alive.set(ws, false);
        ws.ping();
      }
    }, options.pingIntervalMs);
    this.heartbeat.unref();
  }

  /** Open sockets. */
  get size(): number {
    return this.sockets.size;
  }

  /** An HTTP upgrade to `SUBSCRIBE_PATH`: a socket once its key and rate pass, else an HTTP refusal. */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { auth, counters, log } = this.options;
    const refuse = (status: number, wire: WireError, headers: Record<string, string> = {}) => {
      counters.refused += 1;
      const body = JSON.stringify({ error: wire });
      const lines = [
        `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`,
        'content-type: application/json',
        `content-length: ${Buffer.byteLength(body)}`,
        'connection: close',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
    };
    try {
      const { pathname } = new URL(req.url ?? '/', 'http://gateway');
      if (pathname !== SUBSCRIBE_PATH)
        throw new RequestError(404, 'UNKNOWN_METHOD', `WebSocket connections go to ${SUBSCRIBE_PATH}`);
      const record = await auth.authenticate(req);
      auth.limit(record);
      const key = bearerKey(req)!;
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, record, key));
    } catch (error) {
      if (error instanceof RequestError) return refuse(error.status, error.toWire(), error.headers);
      log.error('upgrade failed', { error });
      const { status, error: wire } = errorToWire(error);
      refuse(status, wire);
    }
  }

  /** Stops pinging and asks every socket to close (1001, so clients reconnect elsewhere). */
  closeAll(code: number, reason: string): void {
    clearInterval(this.heartbeat);
    for (const ws of this.sockets) ws.close(code, reason);
  }

  /** Drops every socket still open and the WebSocket server. */
  terminateAll(): void {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
  }

  private onConnection(ws: WebSocket, record: ApiKeyRecord, key: string): void {
    const { auth, hub, counters, log, maxBufferedBytes } = this.options;
    this.sockets.add(ws);
    this.alive.set(ws, true);
    ws.on('pong', () => this.alive.set(ws, true));
    const subs = new Map<string, Listener>();
    const send = (text: string) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (ws.bufferedAmount + text.length > maxBufferedBytes) {
        counters.slowConsumersDropped += 1;
        log.warn('closing a slow consumer', { keyId: record.id, bufferedBytes: ws.bufferedAmount });
        ws.close(CLOSE_CODES.slowConsumer, 'slow consumer: send buffer full');
        // A client that reads nothing never answers the close either.
        setTimeout(() => ws.terminate(), 1_000).unref();
        return;
      }
      ws.send(text);
    };
    const sendError = (error: unknown, sub?: string) => {
      const wire = error instanceof RequestError ? error.toWire() : errorToWire(error).error;
      send(JSON.stringify({ type: 'error', ...(sub !== undefined ? { sub } : {}), error: wire }));
    };
    // A revoked key loses its open sockets too, once the cache stops vouching for it.
    const recheck = setInterval(
      () => {
        auth
          .verifyKey(key)
          .then((still) => {
            if (!still) ws.close(CLOSE_CODES.unauthenticated, 'API key revoked');
          })
          .catch((error: unknown) => log.warn('rechecking a socket key failed', { keyId: record.id, error }));
      },
      Math.max(1_000, this.options.keyCacheMs),
    );
    recheck.unref();

    ws.on('message', (data: RawData, isBinary: boolean) => {
      let message: ClientMessage;
      try {
        if (isBinary) throw new RequestError(400, 'MALFORMED_REQUEST', 'messages must be text');
        const parsed = decode<ClientMessage>(data.toString());
        if (
          !parsed ||
          typeof parsed !== 'object' ||
          typeof parsed.sub !== 'string' ||
          parsed.sub.length === 0 ||
          parsed.sub.length > 100
        ) {
          throw new RequestError(
            400,
            'MALFORMED_REQUEST',
            'a message is { type: "subscribe", sub, path, since? } or { type: "unsubscribe", sub } with sub a string of 1-100 characters',
          );
        }
        message = parsed;
        auth.limit(record);
      } catch (error) {
        return sendError(
          error instanceof RequestError
            ? error
            : new RequestError(400, 'MALFORMED_REQUEST', `unreadable message: ${(error as Error).message}`),
        );
      }
      const { sub } = message;
      if (message.type === 'unsubscribe') {
        const held = subs.get(sub);
        if (held) {
          subs.delete(sub);
          hub.remove(held);
        }
        return;
      }
      if (message.type !== 'subscribe')
        return sendError(
          new RequestError(
            400,
            'MALFORMED_REQUEST',
            `unknown message type ${JSON.stringify((message as { type: unknown }).type)}`,
          ),
          sub,
        );
      let path: ParsedPath;
      let since: Date | undefined;
      try {
        path = parsePath(message.path);
        since = message.since === undefined ? undefined : parseSince(message.since);
        checkScope(record, path.networkId, 'read');
        if (subs.has(sub))
          throw new InvalidArgumentError(`subscription ${JSON.stringify(sub)} exists already on this socket`);
        hub.checkBounds(record, subs.size, path.networkId, since !== undefined);
      } catch (error) {
        return sendError(error, sub);
      }
      const listener: Listener = { sub, path, keyId: record.id, send, ...(since ? { since } : {}) };
      subs.set(sub, listener);
      hub.add(listener).then(
        () => send(JSON.stringify({ type: 'subscribed', sub })),
        (error: unknown) => {
          if (subs.get(sub) === listener) subs.delete(sub);
          hub.remove(listener);
          log.error('subscribing failed', { path: message.path, error });
          sendError(error, sub);
        },
      );
    });
    ws.on('close', () => {
      clearInterval(recheck);
      this.sockets.delete(ws);
      for (const listener of subs.values()) hub.remove(listener);
      subs.clear();
    });
    ws.on('error', (error) => log.warn('socket error', { keyId: record.id, error }));
  }
}
