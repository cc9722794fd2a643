/**
 * Whole-group writes and deletes travel under different ordering keys (one per group), so they
 * may be applied in any order. Whatever the order, the outcome must be the one their clock
 * stamps say.
 */
import { HybridLogicalClock } from '../../shared/hlc';
import { MemoryStorage, type GroupState, type WriteOrigin } from 'super-spine';

function groupState(id: string, parentId?: string, contacts: Record<string, unknown> = {}): GroupState {
  return {
    group: {
      id,
      name: id,
      contactIds: Object.keys(contacts),
      wireIds: [],
      subgroupIds: [],
      boundaryContactIds: [],
      ...(parentId ? { parentId } : {}),
    },
    contacts: new Map(
      Object.entries(contacts).map(([cid, content]) => [
        cid,
        { id: cid, groupId: id, content, blendMode: 'accept-last' as const },
      ]),
    ),
    wires: new Map(),
  };
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

describe('structural writes converge in any order', () => {
  const clock = new HybridLogicalClock('writer');
  let seq = 0;
  const origin = (): WriteOrigin => ({ stamp: clock.tick(), writerId: 'writer', seq: ++seq });

  const saveParent = origin();
  const saveChild = origin();
  const saveGrandchild = origin();
  const writeToGrandchild = origin();
  const deleteParent = origin();
  const saveOther = origin();

  type Step = { name: string; run: (storage: MemoryStorage) => Promise<unknown> };
  const steps: Step[] = [
    {
      name: 'save parent',
      run: (s) => s.applyGroupSave('net', 'parent', groupState('parent', undefined, { p: 1 }), saveParent),
    },
    {
      name: 'save child',
      run: (s) => s.applyGroupSave('net', 'child', groupState('child', 'parent', { c: 2 }), saveChild),
    },
    {
      name: 'save grandchild',
      run: (s) => s.applyGroupSave('net', 'grandchild', groupState('grandchild', 'child'), saveGrandchild),
    },
    {
      name: 'write to grandchild',
      run: (s) => s.applyContactWrite('net', 'grandchild', 'late', { content: 'x', ...writeToGrandchild }),
    },
    { name: 'delete parent', run: (s) => s.applyGroupDelete('net', 'parent', deleteParent) },
    {
      name: 'save other',
      run: (s) => s.applyGroupSave('net', 'other', groupState('other', undefined, { o: 3 }), saveOther),
    },
  ];

  it.each(permutations(steps.slice(0, 5)).map((order) => [order.map((s) => s.name).join(' → '), order] as const))(
    'a delete of the parent removes the whole tree: %s',
    async (_name, order) => {
      const storage = new MemoryStorage();
      for (const step of [...order, steps[5]!]) await step.run(storage);
      expect(await storage.loadGroupState('net', 'parent')).toBeNull();
      expect(await storage.loadGroupState('net', 'child')).toBeNull();
      expect(await storage.loadGroupState('net', 'grandchild')).toBeNull();
      expect(await storage.loadContactContent('net', 'grandchild', 'late')).toBeNull();
      expect(await storage.loadContactContent('net', 'other', 'o')).toBe(3);
    },
  );

  it('a save newer than the delete brings the group back', async () => {
    const storage = new MemoryStorage();
    await storage.applyGroupDelete('net', 'parent', deleteParent);
    await storage.applyGroupSave('net', 'parent', groupState('parent', undefined, { p: 1 }), saveParent);
    await storage.applyGroupSave('net', 'parent', groupState('parent', undefined, { p: 'again' }), origin());
    expect(await storage.loadContactContent('net', 'parent', 'p')).toBe('again');
  });
});
