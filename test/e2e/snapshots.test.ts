/**
 * Snapshots through the whole local mesh: `saveSnapshot` asks the snapshot function through
 * Pub/Sub and Cloud Tasks; the scheduler runner fires the snapshot job (an hour every 5 s here,
 * each slot delivered twice as Cloud Scheduler may); `restoreSnapshot` goes back through the mesh.
 */
import { randomUUID } from 'node:crypto';
import { canonicalize } from '../../shared/codec';
import { NetworkNotFoundError, type NetworkState } from 'super-spine';
import { eventually } from 'super-spine/testing';
import { useLocalMesh } from '../helpers/mesh';

jest.setTimeout(180_000);

const MAX_SNAPSHOTS = 3;
const mesh = useLocalMesh({
  functionsEnv: { SPINE_MAX_SNAPSHOTS: String(MAX_SNAPSHOTS) },
  schedulerJobs: ['snapshots'],
  // The hourly job every 5 s of real time.
  schedulerSpeedUp: 720,
  schedulerDuplicateSlots: true,
});

/** What a network holds, without clock bookkeeping (a restore writes with new stamps). */
function contentsOf(state: NetworkState | null): string {
  if (!state) return 'null';
  const groups = [...state.groups].map(([id, group]) => [
    id,
    { ...group.group, contactIds: [...group.group.contactIds].sort() },
    [...group.contacts].map(([contactId, contact]) => [contactId, contact.content, contact.blendMode]).sort(),
    [...group.wires],
  ]);
  return canonicalize({ groups: groups.sort(), root: state.rootGroupId, current: state.currentGroupId });
}

it('saveSnapshot resolves with the id once the snapshot exists, and refuses an unknown network', async () => {
  const network = `snap-${randomUUID().slice(0, 8)}`;
  const spine = mesh.client();
  await spine.saveContactContent(network, 'g', 'v', 'first');
  const id = await spine.saveSnapshot(network, 'by request');
  const listed = await spine.listSnapshots(network);
  expect(listed.map((s) => s.id)).toContain(id);
  expect(listed.find((s) => s.id === id)?.label).toBe('by request');
  expect((await spine.loadSnapshot(network, id)).groups.get('g')?.contacts.get('v')?.content).toBe('first');
  await expect(spine.saveSnapshot(`missing-${randomUUID().slice(0, 8)}`)).rejects.toBeInstanceOf(NetworkNotFoundError);
});

it('restores a snapshot into the live network: the network equals what it was at the snapshot', async () => {
  const network = `restore-${randomUUID().slice(0, 8)}`;
  const spine = mesh.client();
  await spine.saveContactContent(network, 'kept', 'value', { version: 1 });
  await spine.saveContactContent(network, 'kept', 'tags', new Set(['a']), { blendMode: 'merge' });
  await spine.saveContactContent(network, 'removed-later', 'x', 1);
  await spine.flush();
  const before = await spine.loadNetworkState(network);
  const id = await spine.saveSnapshot(network, 'image');

  await spine.saveContactContent(network, 'kept', 'value', { version: 2 });
  await spine.saveContactContent(network, 'kept', 'tags', new Set(['b']));
  await spine.deleteGroup(network, 'removed-later');
  await spine.saveContactContent(network, 'added-later', 'y', 2);
  await spine.flush();
  expect(contentsOf(await spine.loadNetworkState(network))).not.toBe(contentsOf(before));

  await spine.restoreSnapshot(network, id);
  expect(contentsOf(await spine.loadNetworkState(network))).toBe(contentsOf(before));
  expect(await spine.loadGroupState(network, 'added-later')).toBeNull();
});

it('the scheduled job snapshots changed networks, a doubled slot makes one snapshot, and retention keeps the newest', async () => {
  const network = `scheduled-${randomUUID().slice(0, 8)}`;
  const spine = mesh.client();
  const snapshotJob = () => mesh.mesh.scheduler!.fired().filter((slot) => slot.job.endsWith('snapshots'));
  const seenIds: string[] = [];
  for (let round = 1; round <= MAX_SNAPSHOTS + 2; round++) {
    await spine.saveContactContent(network, 'g', 'round', round, { wait: 'materialized' });
    // A slot after this write snapshots the network with this round's value.
    await eventually(
      async () => {
        const [newest] = await spine.listSnapshots(network);
        expect(newest).toBeDefined();
        expect((await spine.loadSnapshot(network, newest!.id)).groups.get('g')?.contacts.get('round')?.content).toBe(
          round,
        );
        if (!seenIds.includes(newest!.id)) seenIds.push(newest!.id);
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }
  expect(seenIds.length).toBe(MAX_SNAPSHOTS + 2);
  expect(seenIds.every((id) => id.startsWith('slot-'))).toBe(true);

  // Retention: only the newest are left.
  await eventually(
    async () =>
      expect((await spine.listSnapshots(network)).map((s) => s.id)).toEqual(
        [...seenIds].reverse().slice(0, MAX_SNAPSHOTS),
      ),
    { timeoutMs: 30_000 },
  );

  // Every slot was delivered twice; each kept snapshot's body was written once (the pruned
  // ones were written once and deleted once: the emulator counts a delete as a write).
  expect(snapshotJob().some((slot) => slot.delivery === 2)).toBe(true);
  const writes = mesh.mesh.emulators.storage!.stats().writesByObject;
  const kept = new Set([...seenIds].reverse().slice(0, MAX_SNAPSHOTS));
  for (const id of seenIds) {
    const bodies = Object.entries(writes).filter(
      ([object]) => object.includes(network) && object.endsWith(`/snapshots/${id}.json`),
    );
    expect(bodies).toHaveLength(1);
    expect(bodies[0]![1]).toBe(kept.has(id) ? 1 : 2);
  }
});
