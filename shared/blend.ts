import type { AppliedLog, BlendMode, ContactVersion, LoggedMerge, StoredContact as Contact } from './model';
import { clone } from './codec';
import { compareStamps, parseStamp, type Stamp } from './hlc';
import { mergeValues } from './mergeable';

/**
 * What a contact write means. `accept-last`: the newest stamp wins, whatever the arrival order.
 * `merge`: the content is merged by the mergeable rules; a contradiction keeps the old content
 * and records `lastContradiction`. Every write is applied at most once: `(writerId, seq)` pairs
 * already applied are skipped, which makes redelivery harmless even for grow arrays.
 */
export interface ContactWrite {
  content: unknown;
  stamp: Stamp;
  writerId: string;
  /** The writer's sequence number for this write: unique per writer and contact, from 1 (numbered per contact, see ContactSequences). */
  seq: number;
  /** Used when the contact does not exist yet. */
  blendMode?: BlendMode;
}

export interface BlendOutcome {
  contact: Contact;
  /** False when the write was a duplicate or lost to a newer `accept-last` write. */
  contentChanged: boolean;
  duplicate: boolean;
  contradiction: boolean;
  /** True when a newer whole-group save had already removed the contact. */
  superseded?: boolean;
}

/** The writer's entry, read as an own property: writer ids such as `constructor` or `__proto__` are valid. */
function entryOf(log: AppliedLog | undefined, writerId: string): AppliedLog[string] | undefined {
  return log !== undefined && Object.prototype.hasOwnProperty.call(log, writerId) ? log[writerId] : undefined;
}

export function hasApplied(log: AppliedLog | undefined, writerId: string, seq: number): boolean {
  const entry = entryOf(log, writerId);
  if (!entry) return false;
  return seq <= entry.upTo || entry.beyond.includes(seq);
}

/**
 * How long a writer's entry stays in a contact's applied log after its newest write there: past
 * Pub/Sub's longest retention (7 days) no event of that writer can be redelivered, so the entry
 * can no longer catch a duplicate. Without it the log would keep one entry per writer session
 * that ever wrote the contact. Same horizon as group tombstones.
 */
export const APPLIED_LOG_HORIZON_MS = 8 * 24 * 60 * 60 * 1000;

/**
 * Records `(writerId, seq)` applied at `now`, folding contiguous numbers into `upTo` so the log
 * stays small, and drops the entries of writers idle for longer than `APPLIED_LOG_HORIZON_MS`.
 */
export function recordApplied(
  log: AppliedLog | undefined,
  writerId: string,
  seq: number,
  now: number = Date.now(),
): AppliedLog {
  const next: AppliedLog = {};
  for (const [id, entry] of Object.entries(log ?? {})) {
    // Entries written before `at` existed carry none and are kept.
    if (id === writerId || entry.at === undefined || now - entry.at <= APPLIED_LOG_HORIZON_MS)
      setEntry(next, id, entry);
  }
  const entry = entryOf(log, writerId) ?? { upTo: 0, beyond: [] };
  let upTo = entry.upTo;
  const beyond = new Set(entry.beyond);
  if (seq > upTo) beyond.add(seq);
  while (beyond.has(upTo + 1)) {
    beyond.delete(upTo + 1);
    upTo += 1;
  }
  setEntry(next, writerId, { upTo, beyond: [...beyond].sort((a, b) => a - b), at: Math.max(now, entry.at ?? now) });
  return next;
}

/** defineProperty, not assignment, so a writer named `__proto__` gets an own entry. */
function setEntry(log: AppliedLog, writerId: string, entry: AppliedLog[string]): void {
  Object.defineProperty(log, writerId, { value: entry, enumerable: true, writable: true, configurable: true });
}

/**
 * `now`: the applying process's clock, for the applied log's horizon. A merge write is also kept
 * in `version.merges` (see `ContactVersion`): one arriving after a newer one is merged in stamp
 * order by replaying the kept writes from `version.base`, and a whole-group operation delivered
 * late can put them back on top of what it sets (`rebaseContact`).
 */
export function applyContactWrite(
  current: Contact | null,
  ids: { contactId: string; groupId: string },
  write: ContactWrite,
  now: number = Date.now(),
): BlendOutcome {
  const base: Contact = current ?? {
    id: ids.contactId,
    groupId: ids.groupId,
    blendMode: write.blendMode ?? 'accept-last',
  };
  if (hasApplied(base.version?.applied, write.writerId, write.seq)) {
    return { contact: base, contentChanged: false, duplicate: true, contradiction: false };
  }
  const applied = recordApplied(base.version?.applied, write.writerId, write.seq, now);
  const currentStamp = base.version?.stamp;
  const newestStamp =
    currentStamp !== undefined && compareStamps(currentStamp, write.stamp) > 0 ? currentStamp : write.stamp;

  if (base.blendMode === 'accept-last') {
    const wins = currentStamp === undefined || compareStamps(write.stamp, currentStamp) > 0;
    const contact: Contact = { ...withoutVersion(base), version: { stamp: newestStamp, applied } };
    if (wins) contact.content = write.content;
    return { contact, contentChanged: wins, duplicate: false, contradiction: false };
  }

  const logged = base.version?.merges ?? [];
  const entry: LoggedMerge = { stamp: write.stamp, writerId: write.writerId, seq: write.seq, content: write.content };
  const last = logged[logged.length - 1];
  let blended: MergeStep;
  let merges: LoggedMerge[];
  let logBase: Contact | null;
  if (last === undefined || compareStamps(write.stamp, last.stamp) > 0) {
    // In stamp order, the usual case: merged into the current content, no replay.
    blended = mergeStep(withoutVersion(base), write.content, write.stamp);
    merges = [...logged, entry];
    logBase = last === undefined ? (current ? withoutVersion(current) : null) : (base.version?.base ?? null);
  } else {
    const at = logged.findIndex((m) => compareStamps(m.stamp, write.stamp) > 0);
    merges = [...logged.slice(0, at), entry, ...logged.slice(at)];
    logBase = base.version?.base ?? null;
    blended = replayMerges(logBase, merges, ids, entry);
  }
  const version = foldExpiredMerges({ stamp: newestStamp, applied, merges, base: logBase }, ids, now);
  return {
    contact: { ...blended.contact, version },
    contentChanged: blended.ok,
    duplicate: false,
    contradiction: !blended.ok,
  };
}

/**
 * The contact after a whole-group operation stamped `stamp` that sets it to `replacement`
 * (`null`: the operation removes it), given the stored contact: what was written after the
 * operation stays on top of it. An accept-last contact written later is kept as it is; the merge
 * writes stamped later are merged again onto `replacement`, in stamp order. `null` when nothing
 * of the contact remains.
 */
export function rebaseContact(
  current: Contact | null,
  replacement: Contact | null,
  stamp: Stamp,
  ids: { contactId: string; groupId: string },
): Contact | null {
  const applied = current?.version?.applied ?? {};
  const replaced: Contact | null = replacement ? { ...withoutVersion(replacement), version: { stamp, applied } } : null;
  if (!current?.version || compareStamps(current.version.stamp, stamp) <= 0) return replaced;
  const logged = current.version.merges;
  // Written after the operation with nothing to replay (accept-last, or merges from before logs were kept).
  if (!logged?.length) return current;
  const later = logged.filter((m) => compareStamps(m.stamp, stamp) > 0);
  if (later.length === 0) return replaced;
  const base = replacement ? withoutVersion(replacement) : null;
  const { contact } = replayMerges(base, later, ids);
  return { ...contact, version: { stamp: current.version.stamp, applied, merges: later, base } };
}

interface MergeStep {
  contact: Contact;
  /** False when the content contradicted and was not merged. */
  ok: boolean;
}

function mergeStep(contact: Contact, content: unknown, stamp: Stamp): MergeStep {
  const merged = mergeValues(contact.content, content);
  if (!merged.ok) {
    return {
      contact: {
        ...contact,
        lastContradiction: {
          message: merged.message,
          values: [contact.content, content],
          timestamp: parseStamp(stamp).wallTime,
        },
      },
      ok: false,
    };
  }
  return { contact: { ...contact, content: merged.value }, ok: true };
}

/** `base` with `merges` applied in order; `ok` is the outcome of `target`'s step (the last step without one). */
function replayMerges(
  base: Contact | null,
  merges: readonly LoggedMerge[],
  ids: { contactId: string; groupId: string },
  target?: LoggedMerge,
): MergeStep {
  // A copy: the kept base must not share values with the content merged onto it.
  let contact: Contact = base ? clone(base) : { id: ids.contactId, groupId: ids.groupId, blendMode: 'merge' };
  let ok = true;
  for (const merge of merges) {
    const step: MergeStep =
      contact.blendMode === 'accept-last'
        ? { contact: { ...contact, content: merge.content }, ok: true }
        : mergeStep(contact, merge.content, merge.stamp);
    contact = step.contact;
    if (target === undefined || merge === target) ok = step.ok;
  }
  return { contact, ok };
}

/**
 * Merges older than the reorder window are folded into the base: no whole-group operation that
 * old can still arrive. Only the oldest is looked at when nothing has expired.
 */
function foldExpiredMerges(
  version: ContactVersion,
  ids: { contactId: string; groupId: string },
  now: number,
): ContactVersion {
  const merges = version.merges ?? [];
  const horizon = now - APPLIED_LOG_HORIZON_MS;
  if (merges.length === 0 || parseStamp(merges[0]!.stamp).wallTime > horizon) return version;
  const kept = merges.findIndex((m) => parseStamp(m.stamp).wallTime > horizon);
  const { stamp, applied } = version;
  if (kept === -1) return { stamp, applied };
  const { contact } = replayMerges(version.base ?? null, merges.slice(0, kept), ids);
  return { stamp, applied, merges: merges.slice(kept), base: contact };
}

function withoutVersion(contact: Contact): Contact {
  const { version: _bookkeeping, ...rest } = contact;
  return rest;
}
