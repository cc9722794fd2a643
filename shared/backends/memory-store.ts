import { copyValue, decode, encode } from '../codec';
import type { SnapshotInfo, StoredContact as Contact } from '../model';
import { measured, SnapshotDigest } from './snapshot-stream';
import type {
  AtomicUnit,
  ContactUpdate,
  GroupRecord,
  GroupUpdate,
  NetworkRecord,
  NetworkUpdate,
  SnapshotWrite,
  StateStore,
} from './state-store';

interface StoredNetwork {
  record: NetworkRecord;
  groups: Map<string, { record?: GroupRecord; contacts: Map<string, Contact> }>;
  snapshots: Map<string, { info: SnapshotInfo; payload: string }>;
}

/**
 * Keeps its own copies (`copyValue`: made by walking the value, with no encoding), taken on the
 * way in and handed out on the way out, so nothing a caller holds aliases stored state. Updates
 * are atomic by having no await between their read and their write; `atomically` runs its work as it is.
 */
export class MemoryStateStore implements StateStore {
  private readonly networks = new Map<string, StoredNetwork>();
  /** Per network, when anything but its snapshots was last written (see `lastChanged`). */
  private readonly changedAt = new Map<string, number>();

  async init(): Promise<void> {}
  async close(): Promise<void> {}

  atomically<T>(_unit: AtomicUnit, work: () => Promise<T>): Promise<T> {
    return work();
  }

  async getNetwork(networkId: string): Promise<NetworkRecord | null> {
    const stored = this.networks.get(networkId);
    return stored ? copyValue(stored.record) : null;
  }

  async putNetwork(record: NetworkRecord): Promise<void> {
    this.touch(record.id);
    const stored = this.networks.get(record.id);
    if (stored) stored.record = copyValue(record);
    else this.networks.set(record.id, { record: copyValue(record), groups: new Map(), snapshots: new Map() });
  }

  /** Atomic by being synchronous between the read and the write. */
  async updateNetwork(networkId: string, update: NetworkUpdate): Promise<void> {
    const stored = this.networks.get(networkId);
    const next = update(stored ? copyValue(stored.record) : null);
    if (!next) return;
    this.touch(networkId);
    if (stored) stored.record = copyValue(next);
    else this.networks.set(networkId, { record: copyValue(next), groups: new Map(), snapshots: new Map() });
  }

  async listNetworkIds(): Promise<string[]> {
    return [...this.networks.keys()];
  }

  async deleteNetwork(networkId: string): Promise<void> {
    this.networks.delete(networkId);
    this.changedAt.delete(networkId);
  }

  async getGroup(networkId: string, groupId: string): Promise<GroupRecord | null> {
    const record = this.networks.get(networkId)?.groups.get(groupId)?.record;
    return record ? copyValue(record) : null;
  }

  async putGroup(networkId: string, record: GroupRecord): Promise<void> {
    this.groupSlot(networkId, record.group.id).record = copyValue(record);
    this.touch(networkId);
  }

  async listGroupIds(networkId: string): Promise<string[]> {
    const groups = this.networks.get(networkId)?.groups;
    return groups ? [...groups].filter(([, g]) => g.record !== undefined).map(([id]) => id) : [];
  }

  async deleteGroup(networkId: string, groupId: string): Promise<void> {
    if (this.networks.get(networkId)?.groups.delete(groupId)) this.touch(networkId);
  }

  async getContact(networkId: string, groupId: string, contactId: string): Promise<Contact | null> {
    const stored = this.networks.get(networkId)?.groups.get(groupId)?.contacts.get(contactId);
    return stored ? copyValue(stored) : null;
  }

  async listContacts(networkId: string, groupId: string): Promise<Contact[]> {
    const contacts = this.networks.get(networkId)?.groups.get(groupId)?.contacts;
    return contacts ? [...contacts.values()].map((c) => copyValue(c)) : [];
  }

  async getContacts(networkId: string, groupId: string, contactIds: readonly string[]): Promise<Contact[]> {
    const contacts = this.networks.get(networkId)?.groups.get(groupId)?.contacts;
    if (!contacts) return [];
    return [...new Set(contactIds)].flatMap((id) => {
      const stored = contacts.get(id);
      return stored === undefined ? [] : [copyValue(stored)];
    });
  }

  /** Atomic by being synchronous between the read and the write. */
  async updateGroup(networkId: string, groupId: string, update: GroupUpdate): Promise<void> {
    const stored = this.networks.get(networkId)?.groups.get(groupId)?.record;
    const next = update(stored ? copyValue(stored) : null);
    if (next) await this.putGroup(networkId, next);
  }

  /** Atomic by being synchronous between the read and the write. */
  async updateContact(networkId: string, groupId: string, contactId: string, update: ContactUpdate): Promise<void> {
    const stored = this.networks.get(networkId)?.groups.get(groupId)?.contacts.get(contactId);
    const next = update(stored ? copyValue(stored) : null);
    if (next) await this.putContact(networkId, groupId, next);
  }

  async putContact(networkId: string, groupId: string, contact: Contact): Promise<void> {
    this.groupSlot(networkId, groupId).contacts.set(contact.id, copyValue(contact));
    this.touch(networkId);
  }

  async deleteContact(networkId: string, groupId: string, contactId: string): Promise<void> {
    if (this.networks.get(networkId)?.groups.get(groupId)?.contacts.delete(contactId)) this.touch(networkId);
  }

  async putSnapshot(networkId: string, info: SnapshotInfo, payload: string): Promise<void> {
    const stored = this.networks.get(networkId);
    if (!stored) throw new Error(`network ${networkId} vanished while its snapshot was written`);
    stored.snapshots.set(info.id, { info: decode<SnapshotInfo>(encode(info)), payload });
  }

  async putSnapshotStream(
    networkId: string,
    info: SnapshotInfo,
    chunks: AsyncIterable<string>,
  ): Promise<SnapshotWrite> {
    const existing = await this.getSnapshotInfo(networkId, info.id);
    if (existing) return { created: false, info: existing };
    const digest = new SnapshotDigest();
    const parts: Buffer[] = [];
    for await (const bytes of measured(chunks, digest)) parts.push(bytes);
    // Taken meanwhile by another writer of this store: the first one stays.
    const raced = await this.getSnapshotInfo(networkId, info.id);
    if (raced) return { created: false, info: raced };
    const stored: SnapshotInfo = { ...info, size: digest.size, sha256: digest.sha256() };
    await this.putSnapshot(networkId, stored, Buffer.concat(parts).toString('utf8'));
    return { created: true, info: stored };
  }

  async getSnapshot(networkId: string, snapshotId: string): Promise<string | null> {
    return this.networks.get(networkId)?.snapshots.get(snapshotId)?.payload ?? null;
  }

  async getSnapshotInfo(networkId: string, snapshotId: string): Promise<SnapshotInfo | null> {
    const stored = this.networks.get(networkId)?.snapshots.get(snapshotId);
    return stored ? { ...stored.info, createdAt: new Date(stored.info.createdAt) } : null;
  }

  async lastChanged(networkId: string): Promise<Date | null> {
    const at = this.changedAt.get(networkId);
    return at === undefined ? null : new Date(at);
  }

  private touch(networkId: string): void {
    this.changedAt.set(networkId, Date.now());
  }

  async listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    const snapshots = this.networks.get(networkId)?.snapshots;
    return snapshots ? [...snapshots.values()].map((s) => ({ ...s.info, createdAt: new Date(s.info.createdAt) })) : [];
  }

  async deleteSnapshot(networkId: string, snapshotId: string): Promise<boolean> {
    return this.networks.get(networkId)?.snapshots.delete(snapshotId) ?? false;
  }

  private groupSlot(networkId: string, groupId: string) {
    const network = this.networks.get(networkId);
    if (!network) throw new Error(`network ${networkId} must be stored before its groups`);
    let slot = network.groups.get(groupId);
    if (!slot) {
      slot = { contacts: new Map() };
      network.groups.set(groupId, slot);
    }
    return slot;
  }
}
