/**
 * Who may call the gateway, and how often: API keys verified against their records (cached,
 * with unknown ids remembered and refused lookups limited per client address), the per-key
 * request rate, and the key's network scopes.
 */
import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import { allows, hashKey, keyIdOf, type ApiKeyRecord, type ApiKeys } from './keys';
import { RateLimiter } from './rate-limiter';
import { RequestError, type GatewayCounters } from './request-error';

export interface AuthenticatorOptions {
  keys: ApiKeys;
  /** How long a verified (or refused) key is believed before its record is read again. */
  keyCacheMs: number;
  /** How long an id no key record has is believed unknown. */
  unknownKeyCacheMs: number;
  /** Lookups of refused keys one client address may cause per second. */
  keyLookupsPerSecond: number;
  counters: GatewayCounters;
}

/** The key of an `Authorization: Bearer <key>` header. */
export function bearerKey(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return (header ? /^Bearer\s+(\S+)$/i.exec(header) : null)?.[1];
}

export class Authenticator {
  private readonly limiter = new RateLimiter();
  private readonly lookupLimiter = new RateLimiter();
  // Keyed by the key's hash: the cache holds no usable key. Refusals are cached too, so a flood of bad keys costs no reads.
  private readonly verified: LRUCache<string, { record: ApiKeyRecord | null }>;
  // Ids no record has: every key with such an id is refused without a read, however its secret varies.
  private readonly unknownIds: LRUCache<string, true>;
  private readonly lookups = new Map<string, Promise<ApiKeyRecord | null>>();

  constructor(private readonly options: AuthenticatorOptions) {
    this.verified = new LRUCache({ max: 10_000, ttl: Math.max(1, options.keyCacheMs) });
    this.unknownIds = new LRUCache({ max: 100_000, ttl: Math.max(1, options.unknownKeyCacheMs) });
  }

  /**
   * The key's live record, read at most once per `keyCacheMs` however many requests and sockets
   * use it. A read the caches cannot spare takes a token of the client address's lookup budget
   * first (`address` is absent for rechecks of keys already accepted).
   */
  async verifyKey(key: string, address?: string): Promise<ApiKeyRecord | null> {
    const { counters, keyLookupsPerSecond } = this.options;
    const hash = hashKey(key);
    const cached = this.verified.get(hash);
    if (cached) return cached.record;
    const id = keyIdOf(key);
    if (!id) return null;
    if (this.unknownIds.has(id)) {
      counters.keyLookupsSkipped += 1;
      return null;
    }
    if (address !== undefined) {
      const waitMs = this.lookupLimiter.take(address, keyLookupsPerSecond);
      if (waitMs > 0) {
        counters.keyLookupsSkipped += 1;
        throw new RequestError(
          429,
          'RATE_LIMITED',
          `too many unknown API keys from ${address}: at most ${keyLookupsPerSecond} key lookups/s; retry in ${waitMs} ms`,
          { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) },
          { retryAfterMs: waitMs },
        );
      }
    }
    let pending = this.lookups.get(hash);
    if (!pending) {
      counters.keyLookups += 1;
      pending = this.options.keys.lookup(key).then((result) => {
        if (result.record === undefined && result.refused === 'unknown') this.unknownIds.set(id, true);
        else this.verified.set(hash, { record: result.record ?? null });
        // Only refused keys spend the address's lookup budget: new good keys are never held back by it.
        if (result.record && address !== undefined) this.lookupLimiter.giveBack(address, keyLookupsPerSecond);
        return result.record ?? null;
      });
      const settled = pending.finally(() => this.lookups.delete(hash));
      settled.catch(() => undefined);
      this.lookups.set(hash, pending);
    }
    return pending;
  }

  /** The record of the request's bearer key, or a 401. */
  async authenticate(req: IncomingMessage): Promise<ApiKeyRecord> {
    const key = bearerKey(req);
    if (!key)
      throw new RequestError(
        401,
        'UNAUTHENTICATED',
        'an API key is required: Authorization: Bearer <key> (spine keys create makes one)',
        { 'www-authenticate': 'Bearer' },
      );
    const record = await this.verifyKey(key, req.socket.remoteAddress ?? 'unknown');
    if (!record)
      throw new RequestError(401, 'UNAUTHENTICATED', 'the API key is unknown or revoked', {
        'www-authenticate': 'Bearer error="invalid_token"',
      });
    return record;
  }

  /** Takes one request of the key's rate, or a 429 saying when to retry. */
  limit(record: ApiKeyRecord): void {
    const waitMs = this.limiter.take(record.id, record.rateLimit);
    if (waitMs > 0) {
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      throw new RequestError(
        429,
        'RATE_LIMITED',
        `key ${record.id} is over its rate limit of ${record.rateLimit} requests/s; retry in ${waitMs} ms`,
        { 'retry-after': String(seconds) },
        { retryAfterMs: waitMs },
      );
    }
  }
}

/** A 403 unless the key may do `access` on the network. */
export function checkScope(record: ApiKeyRecord, networkId: string, access: 'read' | 'write'): void {
  if (!allows(record, networkId, access)) {
    throw new RequestError(
      403,
      'PERMISSION_DENIED',
      `key ${record.id} may not ${access} network ${JSON.stringify(networkId)}`,
    );
  }
}
