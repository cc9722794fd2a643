import { invalid, notModified, preconditionFailed } from './errors';

/** Generation / metageneration preconditions of one request (absent = not asked). */
export interface Preconditions {
  ifGenerationMatch?: number;
  ifGenerationNotMatch?: number;
  ifMetagenerationMatch?: number;
  ifMetagenerationNotMatch?: number;
}

/** The state a precondition is evaluated against; a missing object counts as generation 0. */
export interface Versioned {
  generation: number;
  metageneration: number;
}

export const ABSENT: Versioned = { generation: 0, metageneration: 0 };

type Query = Record<string, unknown>;

const NAMES = {
  target: ['ifGenerationMatch', 'ifGenerationNotMatch', 'ifMetagenerationMatch', 'ifMetagenerationNotMatch'],
  source: [
    'ifSourceGenerationMatch',
    'ifSourceGenerationNotMatch',
    'ifSourceMetagenerationMatch',
    'ifSourceMetagenerationNotMatch',
  ],
} as const;

/** Reads the target's (or, for copies, the source's) preconditions from the query string. */
export function parsePreconditions(query: Query, of: 'target' | 'source' = 'target'): Preconditions {
  const [generationMatch, generationNotMatch, metagenerationMatch, metagenerationNotMatch] = NAMES[of];
  return dropUndefined({
    ifGenerationMatch: parseInteger(query, generationMatch),
    ifGenerationNotMatch: parseInteger(query, generationNotMatch),
    ifMetagenerationMatch: parseInteger(query, metagenerationMatch),
    ifMetagenerationNotMatch: parseInteger(query, metagenerationNotMatch),
  });
}

/** Parses an optional integer query parameter (generations are int64 on the wire). */
export function parseInteger(query: Query, name: string): number | undefined {
  const raw = query[name];
  if (raw === undefined || raw === '') return undefined;
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (typeof text !== 'string' && typeof text !== 'number') throw invalid(`Invalid value for ${name}: ${String(text)}`);
  if (!/^-?\d+$/.test(String(text))) throw invalid(`Invalid value for ${name}: ${String(text)}`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw invalid(`Invalid value for ${name}: ${String(text)}`);
  return value;
}

/** For mutations: any failed precondition is 412 conditionNotMet. */
export function checkWritePreconditions(preconditions: Preconditions, current: Versioned | undefined): void {
  if (failedMatch(preconditions, current ?? ABSENT) || hitNotMatch(preconditions, current ?? ABSENT)) {
    throw preconditionFailed();
  }
}

/** For reads of an existing resource: a failed "match" is 412, a hit "not match" is 304 as in the service. */
export function checkReadPreconditions(preconditions: Preconditions, current: Versioned): void {
  if (failedMatch(preconditions, current)) throw preconditionFailed();
  if (hitNotMatch(preconditions, current)) throw notModified();
}

export function hasPreconditions(preconditions: Preconditions): boolean {
  return Object.keys(preconditions).length > 0;
}

function failedMatch(p: Preconditions, current: Versioned): boolean {
  return (
    (p.ifGenerationMatch !== undefined && p.ifGenerationMatch !== current.generation) ||
    (p.ifMetagenerationMatch !== undefined && p.ifMetagenerationMatch !== current.metageneration)
  );
}

function hitNotMatch(p: Preconditions, current: Versioned): boolean {
  return (
    (p.ifGenerationNotMatch !== undefined && p.ifGenerationNotMatch === current.generation) ||
    (p.ifMetagenerationNotMatch !== undefined && p.ifMetagenerationNotMatch === current.metageneration)
  );
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
