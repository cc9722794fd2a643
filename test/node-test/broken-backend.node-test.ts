/**
 * A backend that answers a wrong value for every contact read: the suite must fail under
 * `node:test` too, or a passing run would prove nothing. Run by
 * test/unit/conformance-node-test.test.ts, which expects this run to fail.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MemoryStorage } from 'super-spine/memory';
import { runNetworkStorageConformance } from 'super-spine/testing';

class WrongContentStorage extends MemoryStorage {
  override async loadContactContent(networkId: string, groupId: string, contactId: string): Promise<unknown> {
    const content = await super.loadContactContent(networkId, groupId, contactId);
    return content === null ? null : { wrong: content };
  }
}

runNetworkStorageConformance(
  'MemoryStorage answering wrong content',
  async () => ({ storage: new WrongContentStorage() }),
  { describe, it, beforeEach, afterEach },
);
