import { createHash, type Hash } from 'node:crypto';
import { encode } from '../codec';
import type { GroupState, NetworkState } from '../model';

/**
 * The codec encoding of a `NetworkState`, produced one group at a time: byte for byte what
 * `encode({ groups, rootGroupId, currentGroupId })` gives for the same groups in the same order
 * (the key order `loadNetworkState` builds), so `decode` reads it back as a whole. Only the
 * group being encoded is held; `groups` is pulled one entry at a time.
 */
export async function* encodeNetworkStateChunks(
  frame: Pick<NetworkState, 'rootGroupId' | 'currentGroupId'>,
  groups: AsyncIterable<readonly [string, GroupState]>,
): AsyncGenerator<string> {
  // The frame is the codec's own encoding of the state without groups, split where the entries
  // go, so no tag of the codec is written a second time here.
  const shell = encode({ groups: new Map(), rootGroupId: frame.rootGroupId, currentGroupId: frame.currentGroupId });
  const split = shell.indexOf('[]') + 1;
  if (split === 0)
    throw new Error('snapshot encoding: the codec no longer encodes an empty Map as an empty entries array');
  let head = shell.slice(0, split);
  for await (const [groupId, state] of groups) {
    yield `${head}[${encode(groupId)},${encode(state)}]`;
    head = ',';
  }
  yield `${head === ',' ? '' : head}${shell.slice(split)}`;
}

/**
 * Groups read ahead of the one being encoded into a snapshot, so that reads from a remote store
 * overlap; memory holds at most this many groups more.
 */
export const SNAPSHOT_READ_AHEAD = 4;

/** Size and SHA-256 of bytes as they pass, for a snapshot's info. */
export class SnapshotDigest {
  size = 0;
  private readonly hash: Hash = createHash('sha256');

  add(bytes: Buffer): Buffer {
    this.size += bytes.length;
    this.hash.update(bytes);
    return bytes;
  }

  /** Hex; ends the digest. */
  sha256(): string {
    return this.hash.digest('hex');
  }
}

/** `chunks` as UTF-8 buffers, each counted into `digest` as it is pulled. */
export async function* measured(chunks: AsyncIterable<string>, digest: SnapshotDigest): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    if (chunk.length > 0) yield digest.add(Buffer.from(chunk, 'utf8'));
  }
}

/** Size and SHA-256 of a complete body read as a stream (for adopting a body left without its info). */
export async function digestOf(bytes: AsyncIterable<Buffer | string>): Promise<{ size: number; sha256: string }> {
  const digest = new SnapshotDigest();
  for await (const chunk of bytes) digest.add(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
  return { size: digest.size, sha256: digest.sha256() };
}

/**
 * How far the store's clock may run behind this process's when deciding whether a network
 * changed since its newest snapshot: file times come from a coarse kernel clock, object times
 * from the storage service's. A write within this much before a snapshot is counted as after it,
 * which costs at most one extra snapshot instead of a missed change.
 */
export const DEFAULT_CHANGE_TOLERANCE_MS = 1000;

export interface SaveSnapshotOptions {
  /**
   * The snapshot's id (a single id segment); the snapshot of an id is made at most once, so a
   * request repeated with the same id makes one snapshot. Default: a new unique id.
   */
  snapshotId?: string;
}

export interface SnapshotIfChangedOptions extends SaveSnapshotOptions {
  /** See `DEFAULT_CHANGE_TOLERANCE_MS`. */
  changeToleranceMs?: number;
}
