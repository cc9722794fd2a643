import type { AppliedLog, BlendMode, StoredContact as Contact } from './model';
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
export function recordApplied(log: AppliedLog | undefined, writerId: string, seq: number, now: number = Date.now()): AppliedLog {
  const next: AppliedLog = {};
  for (const [id, entry] of Object.entries(log ?? {})) {
    // Entries written before `at` existed carry none and are kept.
    if (id === writerId || entry.at === undefined || now - entry.at <= APPLIED_LOG_HORIZON_MS) setEntry(next, id, entry);
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

/** `now`: the applying process's clock, for the applied log's horizon. */
export function applyContactWrite(current: Contact | null, ids: { contactId: string; groupId: string }, write: ContactWrite, now: number = Date.now()): BlendOutcome {
  const base: Contact = current ?? { id: ids.contactId, groupId: ids.groupId, blendMode: write.blendMode ?? 'accept-last' };
  if (hasApplied(base.version?.applied, write.writerId, write.seq)) {
    return { contact: base, contentChanged: false, duplicate: true, contradiction: false };
  }
  const applied = recordApplied(base.version?.applied, write.writerId, write.seq, now);
  const currentStamp = base.version?.stamp;
  const newestStamp = currentStamp !== undefined && compareStamps(currentStamp, write.stamp) > 0 ? currentStamp : write.stamp;

  if (base.blendMode === 'accept-last') {
    const wins = currentStamp === undefined || compareStamps(write.stamp, currentStamp) > 0;
    const contact: Contact = { ...base, version: { stamp: newestStamp, applied } };
    if (wins) contact.content = write.content;
    return { contact, contentChanged: wins, duplicate: false, contradiction: false };
  }

  const merged = mergeValues(base.content, write.content);
  if (!merged.ok) {
    const contact: Contact = {
      ...base,
      version: { stamp: newestStamp, applied },
      lastContradiction: { message: merged.message, values: [base.content, write.content], timestamp: parseStamp(write.stamp).wallTime },
    };
    return { contact, contentChanged: false, duplicate: false, contradiction: true };
  }
  const contact: Contact = { ...base, content: merged.value, version: { stamp: newestStamp, applied } };
  return { contact, contentChanged: true, duplicate: false, contradiction: false };
}
