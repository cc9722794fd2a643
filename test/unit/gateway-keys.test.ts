import { loadGatewaySettings } from '../../gateway/from-env';
import { ApiKeys, allows, hashKey, keyIdOf, MemoryKeyRecords } from '../../gateway/keys';
import { RateLimiter } from '../../gateway/rate-limiter';
import { InvalidArgumentError, InvalidIdError } from '../../shared/errors';

describe('API keys', () => {
  it('stores only the hash, and verifies the whole key', async () => {
    const records = new MemoryKeyRecords();
    const keys = new ApiKeys(records);
    const { key, record } = await keys.create({ name: 'agent', scopes: { net: 'read-write' } });
    expect(keyIdOf(key)).toBe(record.id);
    const stored = await records.read(record.id);
    expect(stored?.hash).toBe(hashKey(key));
    expect(JSON.stringify(stored)).not.toContain(key.slice(-43));
    expect((await keys.verify(key))?.id).toBe(record.id);
    // Same id, another secret: refused.
    const forged = `${key.slice(0, key.length - 1)}${key.endsWith('A') ? 'B' : 'A'}`;
    expect(await keys.verify(forged)).toBeUndefined();
    expect(await keys.verify('ssk_000000000000_' + 'A'.repeat(43))).toBeUndefined();
    expect(await keys.verify('Bearer nonsense')).toBeUndefined();
  });

  it('refuses a revoked key and keeps its record', async () => {
    const keys = new ApiKeys(new MemoryKeyRecords());
    const { key, record } = await keys.create({ scopes: { '*': 'read' } });
    const revoked = await keys.revoke(record.id, new Date('2026-12-06T00:00:00Z'));
    expect(revoked?.revokedAt).toBe('2026-12-06T00:00:00.000Z');
    expect(await keys.verify(key)).toBeUndefined();
    expect((await keys.list()).map((r) => r.id)).toEqual([record.id]);
    expect(await keys.revoke('0123456789ab')).toBeUndefined();
    await expect(keys.revoke('../x')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('checks scopes: a network of its own, else *; read-write includes read', () => {
    const record = { scopes: { a: 'read-write', b: 'read', '*': 'read' } as const };
    expect(allows(record, 'a', 'write')).toBe(true);
    expect(allows(record, 'b', 'read')).toBe(true);
    expect(allows(record, 'b', 'write')).toBe(false);
    expect(allows(record, 'other', 'read')).toBe(true);
    expect(allows(record, 'other', 'write')).toBe(false);
    expect(allows({ scopes: { a: 'read' } }, 'constructor', 'read')).toBe(false);
    expect(allows({ scopes: { a: 'read' } }, 'toString', 'read')).toBe(false);
  });

  it('refuses keys without scopes, with bad network ids or bad rates', async () => {
    const keys = new ApiKeys(new MemoryKeyRecords());
    await expect(keys.create({ scopes: {} })).rejects.toThrow(/at least one network scope/);
    await expect(keys.create({ scopes: { 'a/b': 'read' } })).rejects.toBeInstanceOf(InvalidIdError);
    await expect(keys.create({ scopes: { a: 'write' as 'read' } })).rejects.toThrow(/read or read-write/);
    await expect(keys.create({ scopes: { a: 'read' }, rateLimit: 0 })).rejects.toThrow(/rate limit/);
  });
});

describe('the rate limiter', () => {
  it('allows a burst of `rate`, then one request per 1/rate seconds, per key', () => {
    let clock = 0;
    const limiter = new RateLimiter(() => clock);
    for (let i = 0; i < 4; i++) expect(limiter.take('k', 4)).toBe(0);
    expect(limiter.take('k', 4)).toBe(250);
    expect(limiter.take('other', 4)).toBe(0);
    clock += 249;
    expect(limiter.take('k', 4)).toBeGreaterThan(0);
    clock += 2;
    expect(limiter.take('k', 4)).toBe(0);
    // A long pause refills to the burst, no further.
    clock += 60_000;
    for (let i = 0; i < 4; i++) expect(limiter.take('k', 4)).toBe(0);
    expect(limiter.take('k', 4)).toBeGreaterThan(0);
  });

  it('lets a rate below one a second make one request, then waits', () => {
    let clock = 0;
    const limiter = new RateLimiter(() => clock);
    expect(limiter.take('k', 0.5)).toBe(0);
    expect(limiter.take('k', 0.5)).toBe(2000);
    clock += 2000;
    expect(limiter.take('k', 0.5)).toBe(0);
  });
});

describe('gateway settings', () => {
  it('reads PORT and the SPINE_GATEWAY_* settings with their defaults, and refuses a bad value naming it', () => {
    expect(loadGatewaySettings({})).toEqual({
      port: 8080,
      host: '127.0.0.1',
      maxBodyBytes: 1024 * 1024,
      keyCacheMs: 5_000,
      maxBufferedBytes: 1024 * 1024,
    });
    expect(
      loadGatewaySettings({ PORT: '9000', SPINE_GATEWAY_HOST: '0.0.0.0', SPINE_GATEWAY_KEY_CACHE_MS: '250' }),
    ).toMatchObject({ port: 9000, host: '0.0.0.0', keyCacheMs: 250 });
    expect(() => loadGatewaySettings({ PORT: 'x' })).toThrow(InvalidArgumentError);
    expect(() => loadGatewaySettings({ PORT: '70000' })).toThrow(
      'setting PORT="70000" is invalid: expected a whole number from 0 to 65535',
    );
    expect(() => loadGatewaySettings({ SPINE_GATEWAY_MAX_BODY_BYTES: '5' })).toThrow(
      'setting SPINE_GATEWAY_MAX_BODY_BYTES="5" is invalid: expected a whole number of bytes from 1024 to 33554432',
    );
  });
});
