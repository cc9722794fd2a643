/**
 * API keys of the gateway. A key is `ssk_<id>_<secret>`: the id finds its record, the secret
 * (32 random bytes) proves it. Records keep only the SHA-256 of the whole key, so a leaked
 * record (or bucket listing) gives no usable key; `list` shows ids and prefixes, never secrets.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Storage } from '@google-cloud/storage';
import { InvalidArgumentError } from '../shared/errors';
import { SYSTEM_NETWORKS } from '../shared/health';
import { validateNetworkId } from '../shared/ids';

export type KeyAccess = 'read' | 'read-write';
/** Network id (or `*`: every network) to what the key may do there. */
export type KeyScopes = Record<string, KeyAccess>;

export interface ApiKeyRecord {
  id: string;
  name: string;
  /** SHA-256 of the whole key, hex. */
  hash: string;
  scopes: KeyScopes;
  /** Requests per second the key may make on average; bursts up to this many at once. */
  rateLimit: number;
  createdAt: string;
  revokedAt?: string;
}

/** Where key records live: one JSON object per key. */
export interface KeyRecordStore {
  read(id: string): Promise<ApiKeyRecord | undefined>;
  /** `create: true` refuses to replace an existing record. */
  write(record: ApiKeyRecord, options?: { create?: boolean }): Promise<void>;
  list(): Promise<ApiKeyRecord[]>;
}

export const KEY_PREFIX = 'ssk_';
export const DEFAULT_RATE_LIMIT = 50;
/** Object name prefix of key records in the mesh's bucket, beside the state and dead letters. */
export const KEYS_OBJECT_PREFIX = 'gateway-keys/';
const KEY_ID_PATTERN = /^[0-9a-f]{12}$/;
const KEY_PATTERN = /^ssk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function validateKeyId(id: string): string {
  if (!KEY_ID_PATTERN.test(id))
    throw new InvalidArgumentError(
      `key id ${JSON.stringify(id)} is not 12 lowercase hex digits (spine keys list shows the ids)`,
    );
  return id;
}

/** The key's id, or undefined when the text is not shaped like a key at all. */
export function keyIdOf(key: string): string | undefined {
  return KEY_PATTERN.exec(key)?.[1];
}

export function validateScopes(scopes: KeyScopes): KeyScopes {
  if (Object.keys(scopes).length === 0)
    throw new InvalidArgumentError(
      `a key needs at least one network scope (--read NETWORK or --write NETWORK; * for every network but the mesh's own, ${SYSTEM_NETWORKS.join(' and ')}, which must be named)`,
    );
  for (const [network, access] of Object.entries(scopes)) {
    if (network !== '*') validateNetworkId(network);
    if (access !== 'read' && access !== 'read-write')
      throw new InvalidArgumentError(`scope of ${network} must be read or read-write, not ${JSON.stringify(access)}`);
  }
  return scopes;
}

/**
 * What the key may do on the network: its own scope, else the `*` scope. The mesh's own networks
 * (registry, canary) are never reached through `*`: a heartbeat or a canary is forged or deleted
 * only by a key that names the network.
 */
export function accessTo(record: Pick<ApiKeyRecord, 'scopes'>, networkId: string): KeyAccess | undefined {
  const own = Object.hasOwn(record.scopes, networkId) ? record.scopes[networkId] : undefined;
  if (own !== undefined || SYSTEM_NETWORKS.includes(networkId)) return own;
  return record.scopes['*'];
}

/** True when the key may write at least one network (what `flush` asks for). */
export function writesSomewhere(record: Pick<ApiKeyRecord, 'scopes'>): boolean {
  return Object.values(record.scopes).includes('read-write');
}

/** Why a key was accepted or not: `unknown` means no record has its id, so any key with that id is refused too. */
export type KeyLookup =
  { record: ApiKeyRecord } | { record?: undefined; refused: 'malformed' | 'unknown' | 'revoked' | 'mismatch' };

export function allows(record: Pick<ApiKeyRecord, 'scopes'>, networkId: string, access: 'read' | 'write'): boolean {
  const granted = accessTo(record, networkId);
  return granted === 'read-write' || (granted === 'read' && access === 'read');
}

export class ApiKeys {
  constructor(readonly records: KeyRecordStore) {}

  /** Makes a key; the key itself is in the answer only, never stored. */
  async create(options: {
    name?: string;
    scopes: KeyScopes;
    rateLimit?: number;
    now?: Date;
  }): Promise<{ key: string; record: ApiKeyRecord }> {
    const scopes = validateScopes({ ...options.scopes });
    const rateLimit = options.rateLimit ?? DEFAULT_RATE_LIMIT;
    if (!Number.isFinite(rateLimit) || rateLimit <= 0 || rateLimit > 100_000)
      throw new InvalidArgumentError(`rate limit must be from above 0 to 100000 requests per second, not ${rateLimit}`);
    const name = options.name ?? '';
    if (name.length > 200) throw new InvalidArgumentError('key name must be at most 200 characters');
    const id = randomBytes(6).toString('hex');
    const key = `${KEY_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
    const record: ApiKeyRecord = {
      id,
      name,
      hash: hashKey(key),
      scopes,
      rateLimit,
      createdAt: (options.now ?? new Date()).toISOString(),
    };
    await this.records.write(record, { create: true });
    return { key, record };
  }

  async list(): Promise<ApiKeyRecord[]> {
    return (await this.records.list()).sort(
      (a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id),
    );
  }

  /** Marks the key revoked (the record stays, for the audit trail); false when no such key. */
  async revoke(id: string, now = new Date()): Promise<ApiKeyRecord | undefined> {
    const record = await this.records.read(validateKeyId(id));
    if (!record) return undefined;
    if (record.revokedAt) return record;
    const revoked = { ...record, revokedAt: now.toISOString() };
    await this.records.write(revoked);
    return revoked;
  }

  /** The live record the key proves, or undefined for a malformed, unknown, wrong or revoked key. */
  async verify(key: string): Promise<ApiKeyRecord | undefined> {
    return (await this.lookup(key)).record;
  }

  /** As `verify`, saying why a key is refused; a malformed key costs no read. */
  async lookup(key: string): Promise<KeyLookup> {
    const id = keyIdOf(key);
    if (!id) return { refused: 'malformed' };
    const record = await this.records.read(id);
    if (!record) return { refused: 'unknown' };
    if (record.revokedAt) return { refused: 'revoked' };
    const given = Buffer.from(hashKey(key), 'hex');
    const stored = Buffer.from(record.hash, 'hex');
    return given.length === stored.length && timingSafeEqual(given, stored) ? { record } : { refused: 'mismatch' };
  }
}

/** The first characters of a key, enough to tell keys apart in a list. */
export function keyPrefix(record: Pick<ApiKeyRecord, 'id'>): string {
  return `${KEY_PREFIX}${record.id}_…`;
}

export class MemoryKeyRecords implements KeyRecordStore {
  private readonly records = new Map<string, string>();

  async read(id: string): Promise<ApiKeyRecord | undefined> {
    const text = this.records.get(id);
    return text === undefined ? undefined : (JSON.parse(text) as ApiKeyRecord);
  }

  async write(record: ApiKeyRecord, { create = false } = {}): Promise<void> {
    if (create && this.records.has(record.id)) throw new InvalidArgumentError(`key ${record.id} exists already`);
    this.records.set(record.id, JSON.stringify(record));
  }

  async list(): Promise<ApiKeyRecord[]> {
    return [...this.records.values()].map((text) => JSON.parse(text) as ApiKeyRecord);
  }
}

/** Key records as objects `<prefix><id>.json` in a Cloud Storage bucket (the Storage emulator locally). */
export class GcsKeyRecords implements KeyRecordStore {
  constructor(
    private readonly storage: Storage,
    private readonly bucket: string,
    private readonly prefix = KEYS_OBJECT_PREFIX,
  ) {}

  private file(id: string) {
    return this.storage.bucket(this.bucket).file(`${this.prefix}${id}.json`);
  }

  async read(id: string): Promise<ApiKeyRecord | undefined> {
    try {
      const [bytes] = await this.file(id).download();
      return JSON.parse(bytes.toString('utf8')) as ApiKeyRecord;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  }

  async write(record: ApiKeyRecord, { create = false } = {}): Promise<void> {
    await this.file(record.id).save(JSON.stringify(record), {
      contentType: 'application/json',
      resumable: false,
      ...(create ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
    });
  }

  async list(): Promise<ApiKeyRecord[]> {
    const [files] = await this.storage.bucket(this.bucket).getFiles({ prefix: this.prefix });
    const records = await Promise.all(
      files
        .filter((f) => f.name.endsWith('.json'))
        .map(async (f) => JSON.parse((await f.download())[0].toString('utf8')) as ApiKeyRecord),
    );
    return records;
  }
}
