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

/** Records `(writerId, seq)`, folding contiguous numbers into `upTo` so the log stays small. */
export function recordApplied(log: AppliedLog | undefined, writerId: string, seq: number): AppliedLog {
  const next: AppliedLog = { ...log };
  const entry = entryOf(log, writerId) ?? { upTo: 0, beyond: [] };
  let upTo = entry.upTo;
  const beyond = new Set(entry.beyond);
  if (seq > upTo) beyond.add(seq);
  while (beyond.has(upTo + 1)) {
    beyond.delete(upTo + 1);
    upTo += 1;
  }
  // defineProperty, not assignment, so a writer named `__proto__` gets an own entry.
  Object.defineProperty(next, writerId, { value: { upTo, beyond: [...beyond].sort((a, b) => a - b) }, enumerable: true, writable: true, configurable: true });
  return next;
}

export function applyContactWrite(current: Contact | null, ids: { contactId: string; groupId: string }, write: ContactWrite): BlendOutcome {
  const base: Contact = current ?? { id: ids.contactId, groupId: ids.groupId, blendMode: write.blendMode ?? 'accept-last' };
  if (hasApplied(base.version?.applied, write.writerId, write.seq)) {
    return { contact: base, contentChanged: false, duplicate: true, contradiction: false };
  }
  const applied = recordApplied(base.version?.applied, write.writerId, write.seq);
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
