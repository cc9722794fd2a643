import type { HistoryEntry } from '../shared/history/history';
import type { GroupState, NetworkState, SnapshotInfo } from '../shared/model';
import { previewValue } from './value-preview';

/** The most groups, and contacts per group, one network view carries; the totals say what was left out. */
export const MAX_GROUPS = 200;
export const MAX_CONTACTS_PER_GROUP = 200;

export interface ContactView {
  id: string;
  name?: string;
  blendMode: string;
  value: string;
  contradiction?: string;
}

export interface GroupView {
  id: string;
  name: string;
  parentId?: string;
  contactCount: number;
  wireCount: number;
  contacts: ContactView[];
}

export interface NetworkView {
  networkId: string;
  rootGroupId: string;
  currentGroupId: string;
  groupCount: number;
  groups: GroupView[];
}

export function groupView(state: GroupState): GroupView {
  const contacts: ContactView[] = [];
  for (const contact of state.contacts.values()) {
    if (contacts.length === MAX_CONTACTS_PER_GROUP) break;
    contacts.push({
      id: contact.id,
      ...(contact.name ? { name: contact.name } : {}),
      blendMode: contact.blendMode,
      value: previewValue(contact.content),
      ...(contact.lastContradiction ? { contradiction: contact.lastContradiction.message } : {}),
    });
  }
  contacts.sort((a, b) => compare(a.id, b.id));
  return {
    id: state.group.id,
    name: state.group.name,
    ...(state.group.parentId ? { parentId: state.group.parentId } : {}),
    contactCount: state.contacts.size,
    wireCount: state.wires.size,
    contacts,
  };
}

/** Groups in id order, so parents come before their children (`a` before `a/b`). */
export function networkView(networkId: string, state: NetworkState): NetworkView {
  const ids = [...state.groups.keys()].sort(compare).slice(0, MAX_GROUPS);
  return {
    networkId,
    rootGroupId: state.rootGroupId,
    currentGroupId: state.currentGroupId,
    groupCount: state.groups.size,
    groups: ids.map((id) => groupView(state.groups.get(id)!)),
  };
}

export function snapshotView(info: SnapshotInfo): { id: string; label?: string; createdAt: string; size?: number } {
  return {
    id: info.id,
    ...(info.label !== undefined ? { label: info.label } : {}),
    createdAt: info.createdAt.toISOString(),
    ...(info.size !== undefined ? { size: info.size } : {}),
  };
}

export interface HistoryEntryView {
  kind: HistoryEntry['kind'];
  eventId: string;
  /** When the write was made (ISO 8601): what "restore to here" restores to. */
  time: string;
  writerId: string;
  groupId?: string;
  contactId?: string;
  /** Contact writes: the content written, as a one-line preview. */
  value?: string;
  blendMode?: string;
  outcome: HistoryEntry['outcome'];
}

export function historyEntryView(entry: HistoryEntry): HistoryEntryView {
  return {
    kind: entry.kind,
    eventId: entry.eventId,
    time: entry.time.toISOString(),
    writerId: entry.writerId,
    ...(entry.groupId !== undefined ? { groupId: entry.groupId } : {}),
    ...(entry.contactId !== undefined ? { contactId: entry.contactId } : {}),
    ...(entry.kind === 'contact-write' ? { value: previewValue(entry.content) } : {}),
    ...(entry.blendMode ? { blendMode: entry.blendMode } : {}),
    outcome: entry.outcome,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
