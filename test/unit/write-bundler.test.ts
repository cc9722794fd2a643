/**
 * WriteBundler on its own: what goes out alone, what is gathered, the bounds, order per group,
 * failures. `send` here is a recording publisher whose publishes finish when the test says so,
 * which is how "a publish is in flight" is made exact; the mesh tests cover the real Pub/Sub path.
 */
import { InvalidArgumentError } from '../../shared/errors';
import type { BundledContactWrite } from '../../shared/events/types';
import { DEFAULT_BUNDLING, resolveBundling, WriteBundler, type BundlingLimits } from '../../shared/mesh/write-bundler';
import { loadSettings } from '../../shared/settings';

interface Sent {
  path: string;
  ids: string[];
  finish(): void;
  fail(error: Error): void;
}

function recordingPublisher() {
  const sent: Sent[] = [];
  const send = (networkId: string, groupId: string, writes: BundledContactWrite[]) =>
    new Promise<void>((resolve, reject) => {
      sent.push({ path: `${networkId}/${groupId}`, ids: writes.map((w) => w.id), finish: resolve, fail: reject });
    });
  return { sent, send };
}

let seq = 0;
function write(id: string): BundledContactWrite {
  seq += 1;
  return { id, contactId: `c-${id}`, content: id, seq, stamp: `0000000000001:00000:${seq}` };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A write to `group` that is sent (and left in flight) before the test goes on. */
async function inFlight(bundler: WriteBundler, sent: Sent[], group = 'g'): Promise<void> {
  const before = sent.length;
  void bundler.add('n', group, write('lone'), 10);
  await Promise.resolve();
  expect(sent.length).toBe(before + 1);
}

const made: Array<{ sent: Sent[]; bundler: WriteBundler }> = [];

function bundlerWith(limits: Partial<BundlingLimits> = {}) {
  const publisher = recordingPublisher();
  const bundler = new WriteBundler({ ...DEFAULT_BUNDLING, lingerMs: 60_000, ...limits }, publisher.send);
  made.push({ sent: publisher.sent, bundler });
  return { ...publisher, bundler };
}

// What a test left gathered goes out and every publish finishes, so no linger timer outlives it.
afterEach(async () => {
  for (const { sent, bundler } of made.splice(0)) {
    const draining = bundler.drain();
    for (const s of sent) s.finish();
    await draining;
  }
});

describe('WriteBundler', () => {
  it('sends a lone write at once, and gathers the writes made while it is in flight into one bundle', async () => {
    const { sent, bundler } = bundlerWith();
    const first = bundler.add('n', 'g', write('a'), 100);
    // Out at the end of the turn it was made in: no timer to wait for.
    await Promise.resolve();
    expect(sent.map((s) => s.ids)).toEqual([['a']]);
    const rest = ['b', 'c', 'd'].map((id) => bundler.add('n', 'g', write(id), 100));
    expect(sent).toHaveLength(1);
    expect(bundler.gathered()).toBe(3);
    sent[0]!.finish();
    await first;
    await tick();
    expect(sent.map((s) => s.ids)).toEqual([['a'], ['b', 'c', 'd']]);
    sent[1]!.finish();
    await Promise.all(rest);
    expect(bundler.gathered()).toBe(0);
  });

  it('sends the writes made in one turn to an idle group together', async () => {
    const { sent, bundler } = bundlerWith();
    for (const id of ['a', 'b', 'c']) void bundler.add('n', 'g', write(id), 100);
    expect(sent).toHaveLength(0);
    await Promise.resolve();
    expect(sent.map((s) => s.ids)).toEqual([['a', 'b', 'c']]);
  });

  it('keeps groups apart: a publish in flight for one group does not hold another', async () => {
    const { sent, bundler } = bundlerWith();
    await inFlight(bundler, sent, 'g1');
    void bundler.add('n', 'g1', write('a'), 100);
    void bundler.add('n', 'g2', write('b'), 100);
    void bundler.add('m', 'g1', write('c'), 100);
    await tick();
    expect(sent.map((s) => `${s.path}:${s.ids.join(',')}`)).toEqual(['n/g1:lone', 'n/g2:b', 'm/g1:c']);
  });

  it('closes a bundle at maxWrites and at maxBytes, keeping the order of the writes', async () => {
    const { sent, bundler } = bundlerWith({ maxWrites: 3, maxBytes: 1000 });
    await inFlight(bundler, sent);
    for (const id of ['a', 'b', 'c', 'd']) void bundler.add('n', 'g', write(id), 10);
    // The fourth write found a full bundle: the three went out, it waits in the next.
    expect(sent.map((s) => s.ids)).toEqual([['lone'], ['a', 'b', 'c']]);
    void bundler.add('n', 'g', write('e'), 600);
    void bundler.add('n', 'g', write('f'), 600);
    expect(sent.map((s) => s.ids)).toEqual([['lone'], ['a', 'b', 'c'], ['d', 'e']]);
    expect(bundler.gathered()).toBe(1);
  });

  it('sends a write as large as maxBytes alone, after what was gathered before it', async () => {
    const { sent, bundler } = bundlerWith({ maxBytes: 1000 });
    await inFlight(bundler, sent);
    void bundler.add('n', 'g', write('small'), 10);
    void bundler.add('n', 'g', write('big'), 1000);
    void bundler.add('n', 'g', write('after'), 10);
    expect(sent.map((s) => s.ids)).toEqual([['lone'], ['small'], ['big']]);
    expect(bundler.gathered()).toBe(1);
  });

  it('sends a gathered bundle after lingerMs even while the earlier publish is still in flight', async () => {
    const { sent, bundler } = bundlerWith({ lingerMs: 20 });
    await inFlight(bundler, sent);
    void bundler.add('n', 'g', write('a'), 10);
    await tick();
    expect(sent).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(sent.map((s) => s.ids)).toEqual([['lone'], ['a']]);
  });

  it('cut() sends the open bundle of a group now; drain() sends all and waits for them', async () => {
    const { sent, bundler } = bundlerWith();
    await inFlight(bundler, sent);
    void bundler.add('n', 'g', write('a'), 10);
    bundler.cut('n', 'g');
    expect(sent.map((s) => s.ids)).toEqual([['lone'], ['a']]);
    void bundler.add('n', 'g', write('b'), 10);
    let drained = false;
    const draining = bundler.drain().then(() => (drained = true));
    expect(sent.map((s) => s.ids)).toEqual([['lone'], ['a'], ['b']]);
    await tick();
    expect(drained).toBe(false);
    for (const s of sent) s.finish();
    await draining;
    expect(drained).toBe(true);
  });

  it('rejects every write of a bundle whose publish failed, and nothing else', async () => {
    const { sent, bundler } = bundlerWith();
    const lone = bundler.add('n', 'g', write('lone'), 10);
    await Promise.resolve();
    const bundled = ['a', 'b'].map((id) => bundler.add('n', 'g', write(id), 10));
    sent[0]!.finish();
    await lone;
    await tick();
    sent[1]!.fail(new Error('publish refused'));
    for (const promise of bundled) await expect(promise).rejects.toThrow('publish refused');
    // The group is idle again: the next write goes out at once.
    void bundler.add('n', 'g', write('next'), 10);
    await Promise.resolve();
    expect(sent[2]!.ids).toEqual(['next']);
  });
});

describe('bundling settings', () => {
  it('fills in defaults and refuses bounds out of range, naming them', () => {
    expect(resolveBundling(undefined)).toEqual(DEFAULT_BUNDLING);
    expect(resolveBundling({ maxWrites: 5 })).toEqual({ ...DEFAULT_BUNDLING, maxWrites: 5 });
    expect(resolveBundling(false)).toBe(false);
    expect(() => resolveBundling({ maxWrites: 0 })).toThrow(InvalidArgumentError);
    expect(() => resolveBundling({ maxWrites: 0 })).toThrow(
      /bundling\.maxWrites must be a whole number from 1 to 10000/,
    );
    expect(() => resolveBundling({ maxBytes: 10 * 1024 * 1024 })).toThrow(/bundling\.maxBytes/);
    expect(() => resolveBundling({ lingerMs: -1 })).toThrow(/bundling\.lingerMs/);
    expect(() => resolveBundling('fast' as never)).toThrow(/must be an object or false/);
  });

  it('reads SPINE_BUNDLE_MAX_WRITES, SPINE_BUNDLE_MAX_BYTES and SPINE_BUNDLE_LINGER_MS', () => {
    expect(loadSettings({}).bundling).toEqual(DEFAULT_BUNDLING);
    expect(
      loadSettings({ SPINE_BUNDLE_MAX_WRITES: '1', SPINE_BUNDLE_MAX_BYTES: '65536', SPINE_BUNDLE_LINGER_MS: '0' })
        .bundling,
    ).toEqual({ maxWrites: 1, maxBytes: 65536, lingerMs: 0 });
    expect(() => loadSettings({ SPINE_BUNDLE_MAX_WRITES: 'many' })).toThrow(
      /SPINE_BUNDLE_MAX_WRITES="many" is invalid/,
    );
    expect(() => loadSettings({ SPINE_BUNDLE_MAX_BYTES: '999999999' })).toThrow(/SPINE_BUNDLE_MAX_BYTES/);
  });
});
