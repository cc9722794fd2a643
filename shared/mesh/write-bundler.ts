import { InvalidArgumentError } from '../errors';
import { MAX_BUNDLED_WRITES, type BundledContactWrite } from '../events/types';
import { changePath } from '../ids';

/**
 * How `SpineStorage` gathers contact writes to one group into one `contacts.written` event while
 * an earlier publish for that group is in flight. A write to a group with nothing in flight goes
 * out at once (in the same turn of the event loop, together with any other writes to the group
 * made in that turn), so an idle writer's latency does not grow.
 */
export interface BundlingOptions {
  /** Most writes in one bundle (default 1000, at most 10,000). */
  maxWrites?: number;
  /**
   * Most bytes of encoded writes in one bundle (default 192 KiB): well under the 256 KB an event
   * carries by value, and under the 512 KB a function receives once Pub/Sub has base64-encoded it.
   */
  maxBytes?: number;
  /** Longest a write waits in an open bundle for others to join, in ms (default 10). */
  lingerMs?: number;
}

export type BundlingLimits = Required<BundlingOptions>;

export const DEFAULT_BUNDLING: Readonly<BundlingLimits> = { maxWrites: 1000, maxBytes: 192 * 1024, lingerMs: 10 };
/** A bundle must fit an event carried by value (content larger than this travels by reference). */
export const MAX_BUNDLE_BYTES = 256 * 1024;
export const MAX_LINGER_MS = 60_000;

/** Fills in the defaults and checks each bound; `false` turns bundling off (every write its own event). */
export function resolveBundling(
  options: BundlingOptions | false | undefined,
  where = 'SpineStorage option bundling',
): BundlingLimits | false {
  if (options === false) return false;
  if (options !== undefined && (options === null || typeof options !== 'object'))
    throw new InvalidArgumentError(`${where} must be an object or false`);
  const limits = { ...DEFAULT_BUNDLING, ...stripUndefined(options ?? {}) };
  const whole = (name: keyof BundlingLimits, min: number, max: number) => {
    const value = limits[name];
    if (!Number.isSafeInteger(value) || value < min || value > max)
      throw new InvalidArgumentError(
        `${where}.${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`,
      );
  };
  whole('maxWrites', 1, MAX_BUNDLED_WRITES);
  whole('maxBytes', 1024, MAX_BUNDLE_BYTES);
  whole('lingerMs', 0, MAX_LINGER_MS);
  return limits;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Publishes the writes of one group as one event; resolves once Pub/Sub accepted it. */
export type SendBundle = (networkId: string, groupId: string, writes: BundledContactWrite[]) => Promise<void>;

interface Waiting {
  write: BundledContactWrite;
  resolve(): void;
  reject(error: unknown): void;
}

interface OpenBundle {
  waiting: Waiting[];
  bytes: number;
  timer: NodeJS.Timeout | undefined;
}

/** One group's publishing state: how many of its events are in flight, and the bundle being gathered. */
interface Lane {
  networkId: string;
  groupId: string;
  inFlight: number;
  open?: OpenBundle;
  sent: Set<Promise<void>>;
}

/**
 * Gathers contact writes per group (the ordering key) while a publish for the group is in flight,
 * bounded by count, bytes and a linger time. Bundles of a group are handed to `send` in the order
 * their writes were added, so Pub/Sub's ordering key keeps them in that order.
 */
export class WriteBundler {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    private readonly limits: BundlingLimits,
    private readonly send: SendBundle,
  ) {}

  /** Queues one write (`bytes`: its encoded size); resolves once the event carrying it was accepted. */
  add(networkId: string, groupId: string, write: BundledContactWrite, bytes: number): Promise<void> {
    const lane = this.laneOf(networkId, groupId);
    return new Promise<void>((resolve, reject) => {
      const waiting: Waiting = { write, resolve, reject };
      if (bytes >= this.limits.maxBytes) {
        // Too large to share an event: it goes alone, after what was gathered before it.
        this.cutLane(lane);
        this.dispatch(lane, [waiting]);
        return;
      }
      if (
        lane.open &&
        (lane.open.waiting.length >= this.limits.maxWrites || lane.open.bytes + bytes > this.limits.maxBytes)
      )
        this.cutLane(lane);
      if (!lane.open) {
        const open: OpenBundle = { waiting: [], bytes: 0, timer: undefined };
        lane.open = open;
        // Nothing in flight: out at the end of this turn, with whatever else this turn writes to
        // the group; otherwise when the publish in flight is done, or after the linger time.
        if (lane.inFlight === 0) queueMicrotask(() => lane.open === open && this.cutLane(lane));
        else open.timer = setTimeout(() => this.cutLane(lane), this.limits.lingerMs);
      }
      lane.open.waiting.push(waiting);
      lane.open.bytes += bytes;
      if (lane.open.waiting.length >= this.limits.maxWrites) this.cutLane(lane);
    });
  }

  /** Sends the group's open bundle now: before another event about the group, so order holds. */
  cut(networkId: string, groupId: string): void {
    const lane = this.lanes.get(changePath(networkId, groupId));
    if (lane) this.cutLane(lane);
  }

  /** Sends every open bundle and waits until every event handed out so far was accepted or failed. */
  async drain(): Promise<void> {
    for (const lane of this.lanes.values()) this.cutLane(lane);
    const sent = [...this.lanes.values()].flatMap((lane) => [...lane.sent]);
    await Promise.allSettled(sent);
  }

  /** Writes gathered and not yet handed to Pub/Sub; for tests and metrics. */
  gathered(): number {
    let count = 0;
    for (const lane of this.lanes.values()) count += lane.open?.waiting.length ?? 0;
    return count;
  }

  private laneOf(networkId: string, groupId: string): Lane {
    const key = changePath(networkId, groupId);
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = { networkId, groupId, inFlight: 0, sent: new Set() }));
    return lane;
  }

  private cutLane(lane: Lane): void {
    const open = lane.open;
    if (!open) return;
    lane.open = undefined;
    clearTimeout(open.timer);
    this.dispatch(lane, open.waiting);
  }

  private dispatch(lane: Lane, waiting: Waiting[]): void {
    lane.inFlight++;
    const sending = this.send(
      lane.networkId,
      lane.groupId,
      waiting.map((w) => w.write),
    ).then(
      () => {
        for (const w of waiting) w.resolve();
      },
      (error: unknown) => {
        for (const w of waiting) w.reject(error);
      },
    );
    lane.sent.add(sending);
    void sending.finally(() => {
      lane.sent.delete(sending);
      lane.inFlight--;
      // Nothing in flight any more: what gathered meanwhile need not wait out its linger.
      if (lane.inFlight === 0) this.cutLane(lane);
      if (lane.inFlight === 0 && !lane.open) this.lanes.delete(changePath(lane.networkId, lane.groupId));
    });
  }
}
