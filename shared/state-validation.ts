import { encode, encodeWithCopy } from './codec';
import { InvalidArgumentError } from './errors';
import { validateContactId, validateGroupId } from './ids';
import type { Contact, GroupQuery, GroupState, NetworkState } from './model';

/** Content of one contact, encoded, may not exceed this (the Pub/Sub message limit). */
export const DEFAULT_MAX_CONTENT_BYTES = 10 * 1024 * 1024;

/**
 * How deep content may nest (arrays, objects, Maps, Sets); deeper content is refused where it
 * enters, with room left under the codec's own limit for the state and events around it.
 */
export const MAX_CONTENT_DEPTH = 256;

/**
 * Throws a typed error when `content` cannot be stored; returns its encoded size. `undefined`
 * is refused (`InvalidArgumentError`): a contact written with nothing would read back as
 * something else; `null` is the value for "no value". Group states may hold contacts without
 * content (`allowUndefined`).
 */
export function checkContent(
  content: unknown,
  maxBytes: number,
  what: string,
  options: { allowUndefined?: boolean } = {},
): number {
  return Buffer.byteLength(encodeContent(content, maxBytes, what, options), 'utf8');
}

/** `checkContent` that returns the content's encoding, for a caller that needs it too (a copy is `decode` of it). */
export function encodeContent(
  content: unknown,
  maxBytes: number,
  what: string,
  options: { allowUndefined?: boolean } = {},
): string {
  if (content === undefined && !options.allowUndefined)
    throw new InvalidArgumentError(`${what} is undefined: give a value (null for none)`);
  return encode(content, { maxBytes, what, maxDepth: MAX_CONTENT_DEPTH });
}

/** `checkContent` that returns a copy of the content (as `decode` of its encoding gives it), made in the same pass. */
export function copyContent<T>(content: T, maxBytes: number, what: string): T {
  if (content === undefined) throw new InvalidArgumentError(`${what} is undefined: give a value (null for none)`);
  return encodeWithCopy(content, { maxBytes, what, maxDepth: MAX_CONTENT_DEPTH }).copy;
}

const BLEND_MODES = new Set(['accept-last', 'merge']);

/** A blend mode given for a write, when one is given. */
export function checkBlendMode(mode: unknown): void {
  if (mode !== undefined && !BLEND_MODES.has(mode as string))
    throw new InvalidArgumentError(`blendMode must be accept-last or merge, not ${JSON.stringify(mode)}`);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** Checks the shape of a `GroupState` for `groupId` before anything is written. */
export function validateGroupState(groupId: string, state: GroupState, maxContentBytes: number): void {
  const where = `group state for ${JSON.stringify(groupId)}`;
  if (!state || typeof state !== 'object') throw new InvalidArgumentError(`${where} must be an object`);
  const { group, contacts, wires } = state;
  if (!group || typeof group !== 'object') throw new InvalidArgumentError(`${where}: group is missing`);
  if (group.id !== groupId)
    throw new InvalidArgumentError(`${where}: group.id ${JSON.stringify(group.id)} does not match the group id`);
  if (typeof group.name !== 'string') throw new InvalidArgumentError(`${where}: group.name must be a string`);
  if (group.parentId !== undefined) validateGroupId(group.parentId);
  for (const key of ['contactIds', 'wireIds', 'subgroupIds', 'boundaryContactIds'] as const) {
    if (!isStringArray(group[key]))
      throw new InvalidArgumentError(`${where}: group.${key} must be an array of strings`);
  }
  if (!(contacts instanceof Map)) throw new InvalidArgumentError(`${where}: contacts must be a Map`);
  if (!(wires instanceof Map)) throw new InvalidArgumentError(`${where}: wires must be a Map`);
  for (const [id, contact] of contacts) validateContact(where, groupId, id, contact, maxContentBytes);
  for (const [id, wire] of wires) {
    if (!wire || wire.id !== id)
      throw new InvalidArgumentError(
        `${where}: wire under key ${JSON.stringify(id)} has id ${JSON.stringify(wire?.id)}`,
      );
    if (typeof wire.fromId !== 'string' || typeof wire.toId !== 'string')
      throw new InvalidArgumentError(`${where}: wire ${JSON.stringify(id)} needs fromId and toId`);
  }
  // Proves attributes and wires can be stored, with a typed error naming the bad value if not.
  encode({ attributes: group.attributes, wires });
}

function validateContact(where: string, groupId: string, id: string, contact: Contact, maxContentBytes: number): void {
  validateContactId(id);
  if (!contact || typeof contact !== 'object')
    throw new InvalidArgumentError(`${where}: contact ${JSON.stringify(id)} must be an object`);
  if (contact.id !== id)
    throw new InvalidArgumentError(
      `${where}: contact under key ${JSON.stringify(id)} has id ${JSON.stringify(contact.id)}`,
    );
  if (contact.groupId !== groupId)
    throw new InvalidArgumentError(
      `${where}: contact ${JSON.stringify(id)} belongs to group ${JSON.stringify(contact.groupId)}`,
    );
  if (!BLEND_MODES.has(contact.blendMode))
    throw new InvalidArgumentError(
      `${where}: contact ${JSON.stringify(id)} has blend mode ${JSON.stringify(contact.blendMode)}, expected accept-last or merge`,
    );
  checkContent(contact.content, maxContentBytes, `content of contact ${JSON.stringify(id)}`, { allowUndefined: true });
  encode({ attributes: contact.attributes, lastContradiction: contact.lastContradiction });
}

export function validateNetworkState(state: NetworkState, maxContentBytes: number): void {
  if (!state || typeof state !== 'object') throw new InvalidArgumentError('network state must be an object');
  if (!(state.groups instanceof Map)) throw new InvalidArgumentError('network state: groups must be a Map');
  if (typeof state.rootGroupId !== 'string' || typeof state.currentGroupId !== 'string') {
    throw new InvalidArgumentError('network state: rootGroupId and currentGroupId must be strings');
  }
  validateGroupId(state.rootGroupId);
  validateGroupId(state.currentGroupId);
  for (const [groupId, groupState] of state.groups) {
    validateGroupId(groupId);
    validateGroupState(groupId, groupState, maxContentBytes);
  }
}

export function validateQuery(query: GroupQuery): void {
  if (!query || typeof query !== 'object') throw new InvalidArgumentError('query must be an object');
  if (query.author !== undefined && typeof query.author !== 'string')
    throw new InvalidArgumentError('query.author must be a string');
  if (query.type !== undefined && typeof query.type !== 'string')
    throw new InvalidArgumentError('query.type must be a string');
  if (query.tags !== undefined && !isStringArray(query.tags))
    throw new InvalidArgumentError('query.tags must be an array of strings');
  if (query.attributes !== undefined && (typeof query.attributes !== 'object' || query.attributes === null)) {
    throw new InvalidArgumentError('query.attributes must be an object');
  }
}
