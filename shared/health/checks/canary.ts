import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { GroupState, SubscriptionCallback, Unsubscribe } from '../../model';
import { CANARY_GROUP, CANARY_NETWORK } from '../../system';
import { CANARY_CONTACT, type CanaryCheck, type CanaryClient, describeError } from '../report';

const CLEANUP_WAIT_MS = 5_000;

/**
 * Writes a unique value to the canary contact and measures how long until materialize
 * acknowledges it and until a subscriber on its path sees it. A newer canary (a run that
 * overlaps this one) counts as seeing this one: it travelled the same ordered path behind it.
 */
export async function checkCanary(client: CanaryClient, deadlineMs: number): Promise<CanaryCheck> {
  const began = performance.now();
  const id = randomUUID();
  let sentAt = '';
  let published = Number.POSITIVE_INFINITY;
  let materializedMs: number | null = null;
  let announcedMs: number | null = null;
  let watching: Promise<Unsubscribe> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let markAnnounced!: () => void;
  const announced = new Promise<void>((resolve) => (markAnnounced = resolve));
  const onChange: SubscriptionCallback = (state: GroupState | null) => {
    if (announcedMs !== null || published === Number.POSITIVE_INFINITY) return;
    const content = state?.contacts.get(CANARY_CONTACT)?.content as { id?: unknown; sentAt?: unknown } | undefined;
    if (!content || typeof content !== 'object') return;
    if (content.id === id || (typeof content.sentAt === 'string' && content.sentAt > sentAt)) {
      announcedMs = Math.round(performance.now() - published);
      markAnnounced();
    }
  };
  let expired = false;
  const deadline = new Promise<'deadline'>(
    (resolve) => (timer = setTimeout(() => ((expired = true), resolve('deadline')), deadlineMs)),
  );
  const run = (async () => {
    await client.initialize?.();
    if (expired) return 'deadline' as const;
    watching = client.subscribe(`${CANARY_NETWORK}/${CANARY_GROUP}`, onChange);
    await watching;
    // Too late: a canary published now would only be waited for by nobody.
    if (expired) return 'deadline' as const;
    sentAt = new Date().toISOString();
    published = performance.now();
    const remaining = Math.max(1, deadlineMs - (published - began));
    await Promise.all([
      // The client's own timeout a little after ours, so the deadline below is what decides.
      client
        .saveContactContent(
          CANARY_NETWORK,
          CANARY_GROUP,
          CANARY_CONTACT,
          { id, sentAt },
          { wait: 'materialized', timeoutMs: remaining + 1_000 },
        )
        .then(() => {
          materializedMs = Math.round(performance.now() - published);
        }),
      announced,
    ]);
    return 'done' as const;
  })();
  // Whatever is still under way at the deadline finishes (or fails) unobserved.
  run.catch(() => undefined);
  let error: string | undefined;
  try {
    if ((await Promise.race([run, deadline])) === 'deadline') {
      if (published === Number.POSITIVE_INFINITY)
        error = `canary not published within ${deadlineMs} ms (setting up the client and its watch took too long)`;
      else if (materializedMs === null) error = `canary not materialized within ${deadlineMs} ms`;
      else error = `canary materialized after ${materializedMs} ms but not announced within ${deadlineMs} ms`;
    }
  } catch (failure) {
    error = `canary ${published === Number.POSITIVE_INFINITY ? 'could not be set up' : 'write failed'}: ${describeError(failure)}`;
  } finally {
    clearTimeout(timer);
    // A watch still being set up at the deadline is removed once it exists; the run waits a little for that, not forever.
    const cleanup = watching?.then((unsubscribe) => unsubscribe()).catch(() => undefined);
    if (cleanup) await Promise.race([cleanup, new Promise((resolve) => setTimeout(resolve, CLEANUP_WAIT_MS).unref())]);
  }
  return { ok: error === undefined, materializedMs, announcedMs, ...(error !== undefined && { error }) };
}
